"""Gating of steps on ``required_to_start`` (engine.md §4, Q3, Q9; ours.md A10)."""

from __future__ import annotations

from typing import Any

from stepflow.engine.graph import StepGraph, parent_ids, required_to_start, steps_to_start
from stepflow.engine.status import StepCounts


def S(step_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": "job_test", "parameters": [], **extra}


def ids(steps: list[Any], counts: dict[int, StepCounts]) -> list[int]:
    return [step["id"] for step in steps_to_start(StepGraph(steps), counts)]


def test_required_to_start_defaults_to_the_parents_q9() -> None:
    assert required_to_start(S(1, parent_ids=[0, 2])) == [0, 2]
    assert required_to_start(S(1)) == []
    assert required_to_start(S(1, parent_ids=None)) == []
    assert required_to_start(S(1, parent_ids=[0], required_to_start=[3])) == [3]
    assert required_to_start(S(1, parent_ids=[0], required_to_start=[])) == []
    assert parent_ids(S(1)) == []


def test_roots_start_at_once_in_definition_order() -> None:
    steps = [S(5), S(1, parent_ids=[5]), S(0)]
    assert ids(steps, {}) == [5, 0]


def test_x4_child_without_required_to_start_waits_for_its_parent() -> None:
    steps = [S(0), S(1, parent_ids=[0])]
    assert ids(steps, {}) == [0]
    assert ids(steps, {0: StepCounts(queued=1)}) == []
    assert ids(steps, {0: StepCounts(processing=1)}) == []
    assert ids(steps, {0: StepCounts(completed=1)}) == [1]


def test_explicit_empty_required_to_start_starts_a_child_at_once() -> None:
    steps = [S(0), S(1, parent_ids=[0], required_to_start=[])]
    assert ids(steps, {}) == [0, 1]


def test_required_to_start_is_not_the_parents_when_given() -> None:
    steps = [S(0), S(1), S(2, parent_ids=[0], required_to_start=[1])]
    assert ids(steps, {0: StepCounts(queued=1), 1: StepCounts(completed=1)}) == [2]
    assert ids(steps, {0: StepCounts(completed=1), 1: StepCounts(queued=1)}) == []


def test_every_required_step_must_be_satisfied() -> None:
    steps = [S(0), S(1), S(2, required_to_start=[0, 1])]
    started = {0: StepCounts(completed=1)}
    assert ids(steps, started) == [1]
    assert ids(steps, {**started, 1: StepCounts(completed=1, queued=1)}) == []
    assert ids(steps, {**started, 1: StepCounts(completed=2)}) == [2]


def test_skipped_counts_as_satisfied() -> None:
    steps = [S(0), S(1, parent_ids=[0]), S(2, parent_ids=[0, 1])]
    assert ids(steps, {0: StepCounts(skipped=1)}) == [1]
    assert ids(steps, {0: StepCounts(completed=1), 1: StepCounts(skipped=1)}) == [2]


def test_unknown_required_ids_count_as_satisfied() -> None:
    steps = [S(0, required_to_start=[99]), S(1, parent_ids=[42])]
    assert ids(steps, {}) == [0, 1]


def test_started_steps_are_not_returned_again() -> None:
    steps = [S(0), S(1)]
    assert ids(steps, {0: StepCounts(completed=1)}) == [1]
    assert ids(steps, {0: StepCounts(skipped=1), 1: StepCounts(errors=1)}) == []


def test_stopped_step_is_not_relaunched_and_blocks_its_children_q3() -> None:
    steps = [S(0), S(1, parent_ids=[0])]
    assert ids(steps, {0: StepCounts(stopped=1)}) == []


def test_failed_parent_blocks_its_children() -> None:
    steps = [S(0), S(1, parent_ids=[0])]
    assert ids(steps, {0: StepCounts(errors=1, completed=1)}) == []


def test_allow_failure_parent_releases_its_children_once_all_jobs_are_final() -> None:
    steps = [S(0, allow_failure=True), S(1, parent_ids=[0])]
    assert ids(steps, {0: StepCounts(errors=1, processing=1)}) == []
    assert ids(steps, {0: StepCounts(errors=1, completed=1)}) == [1]
    assert ids(steps, {0: StepCounts(stopped=1)}) == [1]


def test_counts_with_zero_total_mean_not_started() -> None:
    steps = [S(0), S(1, parent_ids=[0])]
    assert ids(steps, {0: StepCounts(), 1: StepCounts()}) == [0]


def test_the_graph_knows_which_steps_require_a_step_in_definition_order() -> None:
    steps = [S(0), S(3, parent_ids=[0, 1]), S(1), S(2, parent_ids=[0], required_to_start=[1]), S(4, parent_ids=[0, 0])]
    graph = StepGraph(steps)
    assert [step["id"] for step in graph.requiring([0])] == [3, 4]
    assert [step["id"] for step in graph.requiring([1])] == [3, 2]
    assert [step["id"] for step in graph.requiring([1, 0])] == [3, 2, 4], "once each, in definition order"
    assert graph.requiring([2, 99]) == []


def test_among_limits_the_candidates_but_not_what_satisfies_them() -> None:
    steps = [S(0), S(1), S(2, required_to_start=[0, 1]), S(3, parent_ids=[0])]
    graph = StepGraph(steps)
    counts = {0: StepCounts(completed=1), 1: StepCounts(queued=1)}
    assert [step["id"] for step in steps_to_start(graph, counts)] == [3]
    assert steps_to_start(graph, counts, among=graph.requiring([0]))[0]["id"] == 3
    assert [step["id"] for step in steps_to_start(graph, counts, among=[steps[2]])] == [], "1 is not satisfied"
    done = {**counts, 1: StepCounts(completed=1)}
    assert [step["id"] for step in steps_to_start(graph, done, among=graph.requiring([1]))] == [2]
