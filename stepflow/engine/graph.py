"""Which steps may start: the gating of ``required_to_start`` over step counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stepflow.engine.status import StepCounts, allows_failure, is_satisfied


def parent_ids(step: Mapping[str, Any]) -> list[int]:
    return list(step.get("parent_ids") or [])


def required_to_start(step: Mapping[str, Any]) -> list[int]:
    """The steps that must be satisfied first; defaults to the parents (fix Q9)."""
    required = step.get("required_to_start")
    return list(required) if required is not None else parent_ids(step)


class StepGraph:
    """A workflow's steps indexed once (they never change after launch): by id, and for each
    step the steps that require it. Read it, never change it: a process shares one per
    workflow between its threads."""

    def __init__(self, steps: Sequence[Mapping[str, Any]]) -> None:
        self.steps = steps
        self.by_id = {step["id"]: step for step in steps}
        self._requiring: dict[int, list[int]] = {}  # step id -> positions of the steps requiring it
        for position, step in enumerate(steps):
            for required in set(required_to_start(step)):
                self._requiring.setdefault(required, []).append(position)

    def requiring(self, step_ids: Iterable[int]) -> list[Mapping[str, Any]]:
        """The steps that require any of ``step_ids``, once each, in definition order: the only
        steps a change of those steps' counters can make startable."""
        positions = {position for step_id in step_ids for position in self._requiring.get(step_id, ())}
        return [self.steps[position] for position in sorted(positions)]


def steps_to_start(
    graph: StepGraph,
    counts: Mapping[int, StepCounts],
    among: Sequence[Mapping[str, Any]] | None = None,
) -> list[Mapping[str, Any]]:
    """Steps not started yet whose required steps are all satisfied, in definition order: of
    every step, or only of ``among`` (a workflow known to have started all it could before some
    counters changed needs to look only at the steps requiring those: ``graph.requiring``).

    Ids that name no step count as satisfied (the loader warns about them).
    """
    empty = StepCounts()

    def satisfied(step_id: int) -> bool:
        step = graph.by_id.get(step_id)
        if step is None:
            return True
        return is_satisfied(counts.get(step_id, empty), allows_failure(step))

    return [
        step
        for step in (graph.steps if among is None else among)
        if counts.get(step["id"], empty).total == 0 and all(satisfied(r) for r in required_to_start(step))
    ]
