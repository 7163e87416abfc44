"""Which steps may start: the gating of ``required_to_start`` over step counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stepflow.engine.status import StepCounts, allows_failure, is_satisfied


def parent_ids(step: Mapping[str, Any]) -> list[int]:
    return list(step.get("parent_ids") or [])


def required_to_start(step: Mapping[str, Any]) -> list[int]:
    """The steps that must be satisfied first; defaults to the parents (fix Q9)."""
    required = step.get("required_to_start")
    return list(required) if required is not None else parent_ids(step)


def steps_to_start(
    steps: Sequence[Mapping[str, Any]],
    counts: Mapping[int, StepCounts],
) -> list[Mapping[str, Any]]:
    """Steps not started yet whose required steps are all satisfied, in definition order.

    Ids that name no step count as satisfied (the loader warns about them).
    """
    by_id = {step["id"]: step for step in steps}
    empty = StepCounts()

    def satisfied(step_id: int) -> bool:
        step = by_id.get(step_id)
        if step is None:
            return True
        return is_satisfied(counts.get(step_id, empty), allows_failure(step))

    return [
        step
        for step in steps
        if counts.get(step["id"], empty).total == 0 and all(satisfied(r) for r in required_to_start(step))
    ]
