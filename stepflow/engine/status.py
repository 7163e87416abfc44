"""Job buckets, step status and workflow status, derived from per-step counters.

Each job is in exactly one bucket of ``queued`` (incl. ``retrying``), ``processing``,
``completed``, ``errors``, ``skipped``, ``stopped`` (ours.md §3.4). Everything else here is
derived from those six numbers, so a worker message never needs to look at other jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from stepflow.engine.states import JobState, WorkflowState
from stepflow.engine.transitions import STATUS_RULES, Progress

_BUCKETS = {
    JobState.QUEUED: "queued",
    JobState.RETRYING: "queued",
    JobState.PROCESSING: "processing",
    JobState.COMPLETED: "completed",
    JobState.ERROR: "errors",
    JobState.SKIPPED: "skipped",
    JobState.STOPPED: "stopped",
}


def bucket(state: str) -> str:
    """The counter a job in ``state`` belongs to (live states count as ``processing``)."""
    return _BUCKETS.get(state, "processing")


class StepCounts(NamedTuple):
    """The jobs of one step, one bucket each (a tuple: a message builds one per step of its
    workflow, so it must be cheap to make)."""

    queued: int = 0
    processing: int = 0
    completed: int = 0
    errors: int = 0
    skipped: int = 0
    stopped: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.processing + self.completed + self.errors + self.skipped + self.stopped

    @property
    def running(self) -> int:
        return self.queued + self.processing

    def moved(self, from_state: str | None, to_state: str) -> StepCounts:
        """The counts after one job moves (``from_state`` None = a new job)."""
        changes: dict[str, int] = {}
        if from_state is not None:
            source = bucket(from_state)
            changes[source] = getattr(self, source) - 1
        target = bucket(to_state)
        changes[target] = changes.get(target, getattr(self, target)) + 1
        return self._replace(**changes)

    def as_view(self) -> dict[str, int]:
        """The ``jobs`` object of the API's step view (with the additive ``stopped`` key)."""
        return {
            "total": self.total,
            "completed": self.completed,
            "errors": self.errors,
            "processing": self.processing,
            "queued": self.queued,
            "skipped": self.skipped,
            "stopped": self.stopped,
        }


def allows_failure(step: Mapping[str, Any]) -> bool:
    return bool(step.get("allow_failure", False))


def step_status(counts: StepCounts, allow_failure: bool = False) -> str:
    """First match of: error, stopped, processing, skipped, completed, else queued (not started)."""
    if counts.errors and not allow_failure:
        return "error"
    if counts.stopped:
        return "stopped"
    if counts.running:
        return "processing"
    if counts.skipped:
        return "skipped"
    if counts.completed:
        return "completed"
    return "queued"


def is_satisfied(counts: StepCounts, allow_failure: bool = False) -> bool:
    """A started step whose jobs all completed or were skipped, or all final when failure is allowed."""
    if counts.total == 0:
        return False
    if counts.completed + counts.skipped == counts.total:
        return True
    return allow_failure and counts.running == 0


def is_failing(counts: StepCounts, allow_failure: bool = False) -> bool:
    """Jobs in error or stopped, not retried, on a step that may not fail."""
    return not allow_failure and (counts.errors + counts.stopped) > 0


def progress(steps: Iterable[Mapping[str, Any]], counts: Mapping[int, StepCounts]) -> Progress:
    """What the counters show, the first that holds: every step satisfied, a job that may not
    fail in error or stopped, a job beyond skipped ones, else nothing started."""
    empty = StepCounts()
    step_list = list(steps)
    if all(is_satisfied(counts.get(step["id"], empty), allows_failure(step)) for step in step_list):
        return Progress.DONE
    if any(is_failing(counts.get(step["id"], empty), allows_failure(step)) for step in step_list):
        return Progress.FAILING
    if any(c.total - c.skipped > 0 for c in counts.values()):
        return Progress.STARTED
    return Progress.IDLE


def workflow_status(
    current: str,
    steps: Iterable[Mapping[str, Any]],
    counts: Mapping[int, StepCounts],
) -> WorkflowState:
    """The workflow status the counters imply, given the current one
    (``stepflow.engine.transitions.STATUS_RULES``)."""
    return STATUS_RULES[WorkflowState(current)][progress(steps, counts)]
