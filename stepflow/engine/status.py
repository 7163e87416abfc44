"""Job buckets, step status and workflow status, derived from per-step counters.

Each job is in exactly one bucket of ``queued`` (incl. ``retrying``), ``processing``,
``completed``, ``errors``, ``skipped``, ``stopped`` (ours.md §3.4). Everything else here is
derived from those six numbers, so a worker message never needs to look at other jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


def _started(counts: StepCounts) -> bool:
    """Whether a step's counters show a job beyond skipped ones."""
    return counts.total - counts.skipped > 0


@dataclass(slots=True)
class StepTally:
    """What a workflow's step counters show (:class:`Progress`), kept as its counters move
    rather than recomputed over every step: how many steps are not satisfied, how many are
    failing (``is_failing``), and how many counter rows show a job beyond skipped ones."""

    unsatisfied: int = 0
    failing: int = 0
    started: int = 0

    @classmethod
    def of(cls, steps: Iterable[Mapping[str, Any]], counts: Mapping[int, StepCounts]) -> StepTally:
        """The tally of ``counts`` over ``steps`` (one pass over every step)."""
        tally, empty = cls(), StepCounts()
        for step in steps:
            step_counts, allow = counts.get(step["id"], empty), allows_failure(step)
            tally.unsatisfied += not is_satisfied(step_counts, allow)
            tally.failing += is_failing(step_counts, allow)
        tally.started = sum(_started(c) for c in counts.values())
        return tally

    def moved(self, step: Mapping[str, Any] | None, before: StepCounts, after: StepCounts) -> None:
        """One step's counters went from ``before`` (``StepCounts()`` for a step without a row)
        to ``after``; ``step`` is None for an id that names no step (it counts only as a row)."""
        if step is not None:
            allow = allows_failure(step)
            self.unsatisfied += is_satisfied(before, allow) - is_satisfied(after, allow)
            self.failing += is_failing(after, allow) - is_failing(before, allow)
        self.started += _started(after) - _started(before)

    def progress(self) -> Progress:
        """The first that holds: every step satisfied, a job that may not fail in error or
        stopped, a job beyond skipped ones, else nothing started."""
        if not self.unsatisfied:
            return Progress.DONE
        if self.failing:
            return Progress.FAILING
        return Progress.STARTED if self.started else Progress.IDLE


def progress(steps: Iterable[Mapping[str, Any]], counts: Mapping[int, StepCounts]) -> Progress:
    """What the counters show (:meth:`StepTally.progress`)."""
    return StepTally.of(steps, counts).progress()


def workflow_status(
    current: str,
    steps: Iterable[Mapping[str, Any]],
    counts: Mapping[int, StepCounts],
) -> WorkflowState:
    """The workflow status the counters imply, given the current one (``next_status``)."""
    return next_status(current, progress(steps, counts))


def next_status(current: str, shown: Progress) -> WorkflowState:
    """The workflow status from ``current`` when its counters show ``shown``
    (``stepflow.engine.transitions.STATUS_RULES``)."""
    return STATUS_RULES[WorkflowState(current)][shown]
