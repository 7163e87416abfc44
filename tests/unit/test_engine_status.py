"""Job buckets, step status, satisfaction and workflow status (ours.md §3.4)."""

from __future__ import annotations

import random

import pytest

from stepflow.engine.states import FINAL_JOB_STATES, JOB_STATES
from stepflow.engine.transitions import Progress
from stepflow.engine.status import (
    StepCounts,
    StepTally,
    bucket,
    is_failing,
    is_satisfied,
    step_status,
    workflow_status,
)


def C(**counts: int) -> StepCounts:
    return StepCounts(**counts)


# ---------------------------------------------------------------- buckets and counts


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("queued", "queued"),
        ("retrying", "queued"),
        ("processing", "processing"),
        ("completed", "completed"),
        ("error", "errors"),
        ("skipped", "skipped"),
        ("stopped", "stopped"),
        ("ready_to_init", "processing"),
        ("ready_to_start", "processing"),
        ("initializing", "processing"),
        ("starting", "processing"),
        ("running", "processing"),
    ],
)
def test_bucket(state: str, expected: str) -> None:
    assert bucket(state) == expected


def test_every_job_state_has_one_of_the_six_buckets() -> None:
    buckets = {"queued", "processing", "completed", "errors", "skipped", "stopped"}
    assert all(bucket(state) in buckets for state in JOB_STATES)
    assert {bucket(state) for state in FINAL_JOB_STATES} == {"completed", "errors", "skipped", "stopped"}


def test_moved_counts_each_job_once() -> None:
    counts = StepCounts().moved(None, "queued").moved(None, "queued")
    assert counts == C(queued=2) and counts.total == 2 and counts.running == 2
    counts = counts.moved("queued", "processing")
    assert counts == C(queued=1, processing=1)
    counts = counts.moved("processing", "error")
    assert counts == C(queued=1, errors=1) and counts.running == 1
    counts = counts.moved("error", "retrying")
    assert counts == C(queued=2)
    counts = counts.moved("retrying", "completed").moved("queued", "stopped")
    assert counts == C(completed=1, stopped=1) and counts.total == 2 and counts.running == 0
    assert StepCounts().moved(None, "skipped") == C(skipped=1)


def test_moved_does_not_change_the_original() -> None:
    counts = C(queued=1)
    counts.moved("queued", "completed")
    assert counts == C(queued=1)


def test_as_view() -> None:
    assert C(queued=1, processing=2, completed=3, errors=4, skipped=5, stopped=6).as_view() == {
        "total": 21,
        "completed": 3,
        "errors": 4,
        "processing": 2,
        "queued": 1,
        "skipped": 5,
        "stopped": 6,
    }


# ---------------------------------------------------------------- step status (first match)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (C(), "queued"),
        (C(completed=1), "completed"),
        (C(skipped=1), "skipped"),
        (C(skipped=1, completed=2), "skipped"),
        (C(queued=1, completed=1), "processing"),
        (C(processing=1, skipped=1), "processing"),
        (C(queued=1), "processing"),
        (C(stopped=1, queued=1, completed=1), "stopped"),
        (C(errors=1, stopped=1, processing=1, skipped=1, completed=1), "error"),
        (C(errors=1, completed=3), "error"),
    ],
)
def test_step_status_order(counts: StepCounts, expected: str) -> None:
    assert step_status(counts) == expected


def test_allow_failure_ignores_errors_for_step_status() -> None:
    assert step_status(C(errors=1, processing=1), allow_failure=True) == "processing"
    assert step_status(C(errors=1, completed=1), allow_failure=True) == "completed"
    assert step_status(C(errors=1, stopped=1), allow_failure=True) == "stopped"


# ---------------------------------------------------------------- satisfaction


@pytest.mark.parametrize(
    ("counts", "allow_failure", "expected"),
    [
        (C(), False, False),
        (C(), True, False),
        (C(completed=2), False, True),
        (C(skipped=1), False, True),
        (C(completed=1, skipped=1), False, True),
        (C(completed=1, queued=1), False, False),
        (C(completed=1, processing=1), True, False),
        (C(completed=1, errors=1), False, False),
        (C(completed=1, errors=1), True, True),
        (C(errors=1), True, True),
        (C(stopped=1), False, False),
        (C(stopped=1, completed=1), True, True),
        (C(errors=1, queued=1), True, False),
    ],
)
def test_is_satisfied(counts: StepCounts, allow_failure: bool, expected: bool) -> None:
    assert is_satisfied(counts, allow_failure) is expected


def test_is_failing() -> None:
    assert is_failing(C(errors=1))
    assert is_failing(C(stopped=1, completed=1))
    assert not is_failing(C(errors=1), allow_failure=True)
    assert not is_failing(C(queued=1, completed=1, skipped=1))


# ---------------------------------------------------------------- workflow status


ONE = [{"id": 0}]
TWO = [{"id": 0}, {"id": 1, "parent_ids": [0]}]


def test_empty_workflow_completes() -> None:
    """S2: no steps at all."""
    assert workflow_status("pending", [], {}) == "completed"


def test_pending_until_a_job_exists() -> None:
    assert workflow_status("pending", ONE, {}) == "pending"
    assert workflow_status("pending", TWO, {0: C(queued=1)}) == "processing"


def test_skipped_jobs_alone_do_not_start_the_workflow() -> None:
    steps = [{"id": 0}, {"id": 1}]
    assert workflow_status("pending", steps, {0: C(skipped=1)}) == "pending"


def test_processing_never_goes_back_to_pending() -> None:
    """The original fell back to pending after every completion; ours does not."""
    assert workflow_status("processing", TWO, {0: C(completed=1)}) == "processing"
    assert workflow_status("processing", TWO, {}) == "processing"


def test_error_while_a_job_is_in_error_or_stopped() -> None:
    assert workflow_status("processing", TWO, {0: C(errors=1)}) == "error"
    assert workflow_status("pending", TWO, {0: C(errors=1)}) == "error"
    assert workflow_status("processing", TWO, {0: C(stopped=1)}) == "error"
    assert workflow_status("error", TWO, {0: C(completed=1), 1: C(errors=1, completed=2)}) == "error"


def test_error_goes_back_to_processing_on_retry() -> None:
    assert workflow_status("error", TWO, {0: C(queued=1)}) == "processing"


def test_allow_failure_errors_do_not_fail_the_workflow() -> None:
    steps = [{"id": 0, "allow_failure": True}, {"id": 1}]
    assert workflow_status("processing", steps, {0: C(errors=1), 1: C(queued=1)}) == "processing"
    assert workflow_status("processing", steps, {0: C(errors=1), 1: C(completed=1)}) == "completed"
    assert workflow_status("processing", steps, {0: C(errors=1, processing=1)}) == "processing"


def test_completed_once_every_step_is_satisfied() -> None:
    assert workflow_status("processing", TWO, {0: C(completed=1), 1: C(completed=2)}) == "completed"
    assert workflow_status("processing", TWO, {0: C(completed=1), 1: C(skipped=1)}) == "completed"
    assert workflow_status("pending", TWO, {0: C(skipped=1), 1: C(skipped=1)}) == "completed"
    assert workflow_status("processing", TWO, {0: C(completed=1), 1: C(completed=1, processing=1)}) == "processing"


def test_counts_of_unknown_steps_do_not_matter_for_completion() -> None:
    assert workflow_status("processing", ONE, {0: C(completed=1), 9: C(queued=1)}) == "completed"


@pytest.mark.parametrize("terminal", ["completed", "aborted"])
def test_terminal_states_stay(terminal: str) -> None:
    for counts in ({}, {0: C(errors=1)}, {0: C(queued=1)}, {0: C(completed=1), 1: C(completed=1)}):
        assert workflow_status(terminal, TWO, counts) == terminal


def test_paused_stays_until_resumed_but_completion_is_detected() -> None:
    assert workflow_status("paused", TWO, {0: C(processing=1)}) == "paused"
    assert workflow_status("paused", TWO, {0: C(errors=1)}) == "paused"
    assert workflow_status("paused", TWO, {0: C(completed=1), 1: C(completed=1)}) == "completed"


def test_s23_lifecycle() -> None:
    """S23 under ours.md §4.1: steps 0, then 1 and 2 (children of 0)."""
    steps = [{"id": 0}, {"id": 1, "parent_ids": [0]}, {"id": 2, "parent_ids": [0]}]
    counts: dict[int, StepCounts] = {}
    status = workflow_status("pending", steps, counts)
    history = [status]

    def move(step_id: int, from_state: str | None, to_state: str) -> None:
        nonlocal status
        counts[step_id] = counts.get(step_id, StepCounts()).moved(from_state, to_state)
        status = workflow_status(status, steps, counts)
        history.append(status)

    move(0, None, "queued")  # step 0 dispatched
    move(0, "queued", "processing")  # progression 0
    move(0, "processing", "error")
    move(0, "error", "retrying")
    move(0, "retrying", "completed")
    move(1, None, "queued")
    move(2, None, "queued")  # steps 1 and 2 dispatched
    move(1, "queued", "error")  # queue not found
    move(2, "queued", "error")
    move(1, "error", "retrying")
    move(2, "error", "retrying")
    move(1, "retrying", "completed")
    move(2, "retrying", "completed")
    assert history == [
        "pending",
        "processing",
        "processing",
        "error",
        "processing",
        "processing",
        "processing",
        "processing",
        "error",
        "error",
        "error",
        "processing",
        "processing",
        "completed",
    ]


def test_a_tally_kept_as_jobs_move_is_the_tally_recomputed() -> None:
    steps = [{"id": 0}, {"id": 1, "allow_failure": True}, {"id": 2}]
    by_id = {step["id"]: step for step in steps}
    states = sorted(JOB_STATES)
    shuffle = random.Random(7)
    progresses = set()
    for _ in range(200):
        counts: dict[int, StepCounts] = {}
        jobs: list[tuple[int, str]] = []
        tally = StepTally.of(steps, counts)
        progresses.add(tally.progress())
        for _ in range(30):
            step_id = shuffle.choice([0, 1, 2, 9])  # 9 names no step
            if jobs and shuffle.random() < 0.6:
                index = shuffle.randrange(len(jobs))
                step_id, previous = jobs[index]
                state = shuffle.choice([*states, "completed", "completed", "skipped"])
                jobs[index] = (step_id, state)
            else:
                previous, state = None, shuffle.choice(states)
                jobs.append((step_id, state))
            before = counts.get(step_id, StepCounts())
            counts[step_id] = before.moved(previous, state)
            tally.moved(by_id.get(step_id), before, counts[step_id])
            assert tally == StepTally.of(steps, counts)
            progresses.add(tally.progress())
    assert progresses == set(Progress), "every outcome was met"
