"""The allowed transitions of jobs and workflows, written once as data (ours.md §3.4–3.5).

**Jobs.** ``TRANSITIONS[event][state]`` is the ``Rule`` for a job in ``state`` when ``event``
happens to it: a worker's answer, the clock giving up on its worker, a notification run, a live
worker's report. A rule holds two outcomes, one in a running workflow and one in an aborted
workflow. Every event has exactly one rule for every ``JobState``. What the table says:

- ``completed`` absorbs everything: a later message is a duplicate, or history only;
- a completion wins over ``error`` and ``stopped`` (the job did run), unless the workflow is
  aborted;
- an error for a finished job is history only, and so is a progression (its own row);
- ``stopped`` is final (Q3): only a completion in a running workflow moves it;
- in an aborted workflow a job still running takes its final state (nothing new starts after
  it); every other job only gets history;
- a live job's reports move it forward along ``LIVE_STAGES``, never back.

**Workflows.** ``WORKFLOW_EVENTS[event][status]`` says whether an API event applies to a
workflow in ``status``, has nothing to do, or is refused (409); ``STATUS_RULES[status][progress]``
is the status a workflow moves to from ``status`` when its step counters show ``progress``.

Nothing here does I/O: ``stepflow.orchestration`` looks the outcome up and writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from stepflow.engine.states import (
    ACTIVE_STATES,
    FINAL_JOB_STATES,
    LIVE_STAGES,
    QUEUED_STATES,
    TERMINAL_WORKFLOW_STATES,
    JobState,
    WorkflowState,
)


class Event(StrEnum):
    """What happens to a job besides StepFlow's own orders and the API's events: a worker's
    answer, the clock's verdict on a silent worker, a notification run, a live worker's report."""

    COMPLETED = "completed"
    """``job_completed`` (a live worker manager's report of the worker it created aside)."""
    ERROR = "error"
    """``job_error``, or the job's order came back from ``job_queue_not_found``."""
    BUSY = "busy"
    """``job_error`` "another job is already in progress": SDK 2.2.1's race, the job never ran."""
    OTHER_JOB = "other_job"
    """``job_error`` "The Job ID is not the same as the current job.": the answer of a worker that
    got a ``stop_process`` sent by queue for a job it does not run."""
    STOPPED = "stopped"
    """``job_stopped``."""
    PROGRESSION = "progression"
    """A ``job_progression`` not heard before."""
    GIVEN_UP = "given_up"
    """The clock: the job's lease ran out, or its worker moved on and the re-sends are spent."""
    MOVED_ON = "moved_on"
    """The clock: the worker that took the job reported, since, a status without it."""
    NOTIFICATION_SENT = "notification_sent"
    """The notification job's request was delivered."""
    NOTIFICATION_FAILED = "notification_failed"
    """The notification job's request failed for good."""
    WORKER_CREATED = "worker_created"
    """A live job's worker announced itself: it is ``ready_to_init``."""
    WORKER_INITIALIZED = "worker_initialized"
    """A live job's worker was initialised: it is ``ready_to_start``."""
    WORKER_STARTED = "worker_started"
    """A live job's worker was started or updated (``worker_started``, ``worker_updated``): it is
    ``processing``."""


class Action(StrEnum):
    """What an outcome does to the job."""

    MOVE = "move"
    """The job moves to the outcome's ``state`` (its counters, its column, a history row)."""
    RECORD = "record"
    """History only: a row of the outcome's ``state`` marked ``"ignored": true``; the job stays."""
    DUPLICATE = "duplicate"
    """The job is already where the message would put it: nothing is written."""
    IGNORE = "ignore"
    """The message means nothing for a job in this state: nothing is written."""
    RESEND = "resend"
    """The job's order is sent again (an automatic ``retrying`` row) while re-sends remain;
    once they are spent, the event ``otherwise`` decides."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome: the action, the state it moves to or records (``MOVE``, ``RECORD``), and the
    event that decides instead once the re-sends are spent (``RESEND``)."""

    action: Action
    state: JobState | None = None
    otherwise: Event | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """The outcomes of one event for one job state, in a running and in an aborted workflow."""

    running: Outcome
    aborted: Outcome


def _move(state: JobState) -> Outcome:
    return Outcome(Action.MOVE, state)


def _record(state: JobState) -> Outcome:
    return Outcome(Action.RECORD, state)


def _resend(otherwise: Event) -> Outcome:
    return Outcome(Action.RESEND, otherwise=otherwise)


def _same(outcome: Outcome) -> Rule:
    return Rule(outcome, outcome)


_DUPLICATE = Outcome(Action.DUPLICATE)
_IGNORED = Outcome(Action.IGNORE)

_LIVE_ONLY = frozenset(JobState) - ACTIVE_STATES - FINAL_JOB_STATES
"""The states only a live job takes (``ready_to_init`` … ``updating``)."""


def _before(stage: JobState) -> frozenset[JobState]:
    """The live stages a live job goes through before ``stage``."""
    return frozenset(LIVE_STAGES[: LIVE_STAGES.index(stage)])


def _live_report(stage: JobState) -> Rule:
    """A live job reaching ``stage``: it moves there, or in an aborted workflow it is history."""
    return Rule(_move(stage), _record(stage))


_K = TypeVar("_K", bound=StrEnum)
_V = TypeVar("_V")


def _cover(keys: type[_K], groups: Iterable[tuple[Iterable[_K], _V]], rest: _V | None) -> dict[_K, _V]:
    """Each group's keys get its value, every other key of ``keys`` gets ``rest``. A key in two
    groups, or in none without ``rest``, is a mistake in a table: it raises ``ValueError``."""
    covered: dict[_K, _V] = {}
    for members, value in groups:
        for key in members:
            if key in covered:
                raise ValueError(f"{key} has two entries")
            covered[key] = value
    table: dict[_K, _V] = {}
    for key in keys:  # in the enum's order
        value = covered.get(key, rest)
        if value is None:
            raise ValueError(f"{key} has no entry")
        table[key] = value
    return table


def _row(*groups: tuple[Iterable[JobState], Rule], rest: Rule | None = None) -> dict[JobState, Rule]:
    """One event's rule for every job state."""
    return _cover(JobState, groups, rest)


TRANSITIONS: Mapping[Event, Mapping[JobState, Rule]] = {
    Event.COMPLETED: _row(
        (ACTIVE_STATES, _same(_move(JobState.COMPLETED))),
        ({JobState.COMPLETED}, _same(_DUPLICATE)),
        (
            {JobState.ERROR, JobState.STOPPED, *_LIVE_ONLY},
            Rule(_move(JobState.COMPLETED), _record(JobState.COMPLETED)),
        ),
        ({JobState.SKIPPED}, _same(_record(JobState.COMPLETED))),
    ),
    Event.ERROR: _row(
        (ACTIVE_STATES, _same(_move(JobState.ERROR))),
        ({JobState.ERROR}, _same(_DUPLICATE)),
        ({JobState.COMPLETED, JobState.STOPPED, JobState.SKIPPED, *_LIVE_ONLY}, _same(_record(JobState.ERROR))),
    ),
    Event.BUSY: _row(
        (ACTIVE_STATES, Rule(_resend(Event.ERROR), _move(JobState.ERROR))),
        ({JobState.ERROR}, _same(_DUPLICATE)),
        ({JobState.COMPLETED, JobState.STOPPED, JobState.SKIPPED, *_LIVE_ONLY}, _same(_record(JobState.ERROR))),
    ),
    Event.OTHER_JOB: _row(rest=_same(_IGNORED)),
    Event.STOPPED: _row(
        ({*ACTIVE_STATES, *_LIVE_ONLY}, _same(_move(JobState.STOPPED))),
        ({JobState.STOPPED}, _same(_DUPLICATE)),
        ({JobState.COMPLETED, JobState.ERROR, JobState.SKIPPED}, _same(_record(JobState.STOPPED))),
    ),
    Event.PROGRESSION: _row((QUEUED_STATES, Rule(_move(JobState.PROCESSING), _IGNORED)), rest=_same(_IGNORED)),
    Event.GIVEN_UP: _row(
        (ACTIVE_STATES, Rule(_move(JobState.ERROR), _move(JobState.STOPPED))),
        rest=_same(_IGNORED),
    ),
    Event.MOVED_ON: _row(
        (ACTIVE_STATES, Rule(_resend(Event.GIVEN_UP), _move(JobState.STOPPED))),
        rest=_same(_IGNORED),
    ),
    Event.NOTIFICATION_SENT: _row((QUEUED_STATES, _same(_move(JobState.COMPLETED))), rest=_same(_IGNORED)),
    Event.NOTIFICATION_FAILED: _row((QUEUED_STATES, _same(_move(JobState.ERROR))), rest=_same(_IGNORED)),
    Event.WORKER_CREATED: _row(
        (_before(JobState.READY_TO_INIT), _live_report(JobState.READY_TO_INIT)),
        rest=_same(_IGNORED),
    ),
    Event.WORKER_INITIALIZED: _row(
        (_before(JobState.READY_TO_START), _live_report(JobState.READY_TO_START)),
        rest=_same(_IGNORED),
    ),
    Event.WORKER_STARTED: _row(
        ({*_before(JobState.PROCESSING), JobState.UPDATING}, _live_report(JobState.PROCESSING)),
        rest=_same(_IGNORED),
    ),
}
"""Each event → each job state → its rule."""

LIVE_REPORTS: Mapping[JobState, Event] = {
    JobState.READY_TO_INIT: Event.WORKER_CREATED,
    JobState.READY_TO_START: Event.WORKER_INITIALIZED,
    JobState.PROCESSING: Event.WORKER_STARTED,
}
"""The event a live worker's report of a stage is."""


def decide(event: Event, state: str, aborted: bool) -> Outcome:
    """The outcome of ``event`` for a job in ``state`` (a ``JobState`` value; anything else
    raises ``ValueError``), in an ``aborted`` workflow or a running one."""
    rule = TRANSITIONS[event][JobState(state)]
    return rule.aborted if aborted else rule.running


class WorkflowEvent(StrEnum):
    """The API events whose effect depends on the workflow's status (ours.md §3.5). ``stop`` is
    ``abort``; ``delete`` aborts first when ``abort`` applies; ``update`` depends on the job only."""

    RETRY = "retry"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"


class Verdict(StrEnum):
    """What an API event does to a workflow in a status."""

    APPLY = "apply"
    NOTHING = "nothing"
    """Nothing to do: answered 200 all the same."""
    CONFLICT = "conflict"
    """Refused: answered 409."""


def _statuses(
    *groups: tuple[Iterable[WorkflowState], Verdict], rest: Verdict | None = None
) -> dict[WorkflowState, Verdict]:
    """One API event's verdict for every workflow status."""
    return _cover(WorkflowState, groups, rest)


WORKFLOW_EVENTS: Mapping[WorkflowEvent, Mapping[WorkflowState, Verdict]] = {
    WorkflowEvent.RETRY: _statuses((TERMINAL_WORKFLOW_STATES, Verdict.CONFLICT), rest=Verdict.APPLY),
    WorkflowEvent.ABORT: _statuses(
        ({WorkflowState.ABORTED}, Verdict.NOTHING),
        ({WorkflowState.COMPLETED}, Verdict.CONFLICT),
        rest=Verdict.APPLY,
    ),
    WorkflowEvent.PAUSE: _statuses(
        ({WorkflowState.PAUSED}, Verdict.NOTHING),
        (TERMINAL_WORKFLOW_STATES, Verdict.CONFLICT),
        rest=Verdict.APPLY,
    ),
    WorkflowEvent.RESUME: _statuses(({WorkflowState.PAUSED}, Verdict.APPLY), rest=Verdict.NOTHING),
}
"""Each API event → each workflow status → its verdict."""


def verdict(event: WorkflowEvent, status: str) -> Verdict:
    """What ``event`` does to a workflow in ``status`` (a ``WorkflowState`` value)."""
    return WORKFLOW_EVENTS[event][WorkflowState(status)]


class Progress(StrEnum):
    """What a workflow's step counters show: the first of these that holds."""

    DONE = "done"
    """Every step is satisfied (``stepflow.engine.status.is_satisfied``)."""
    FAILING = "failing"
    """A job of a step that may not fail is in error or stopped, not retried."""
    STARTED = "started"
    """A job beyond skipped ones exists."""
    IDLE = "idle"
    """Nothing has started."""


def _progressing(failing: WorkflowState, started: WorkflowState, idle: WorkflowState) -> dict[Progress, WorkflowState]:
    """The status of a workflow that is not finished: ``completed`` once done, else as given."""
    return {
        Progress.DONE: WorkflowState.COMPLETED,
        Progress.FAILING: failing,
        Progress.STARTED: started,
        Progress.IDLE: idle,
    }


STATUS_RULES: Mapping[WorkflowState, Mapping[Progress, WorkflowState]] = {
    WorkflowState.PENDING: _progressing(
        failing=WorkflowState.ERROR, started=WorkflowState.PROCESSING, idle=WorkflowState.PENDING
    ),
    WorkflowState.PROCESSING: _progressing(
        failing=WorkflowState.ERROR, started=WorkflowState.PROCESSING, idle=WorkflowState.PROCESSING
    ),
    WorkflowState.PAUSED: _progressing(
        failing=WorkflowState.PAUSED, started=WorkflowState.PAUSED, idle=WorkflowState.PAUSED
    ),
    WorkflowState.ERROR: _progressing(
        failing=WorkflowState.ERROR, started=WorkflowState.PROCESSING, idle=WorkflowState.PENDING
    ),
    WorkflowState.COMPLETED: dict.fromkeys(Progress, WorkflowState.COMPLETED),
    WorkflowState.ABORTED: dict.fromkeys(Progress, WorkflowState.ABORTED),
}
"""Each workflow status → what its counters show → its new status: ``completed`` and
``aborted`` are terminal (completion happens once, Q10); ``paused`` stays until resumed, though
a completion is still detected; otherwise ``error`` while a job that may not fail is in error or
stopped, ``completed`` once every step is satisfied, ``processing`` once a job beyond skipped
ones exists, else ``pending``."""
