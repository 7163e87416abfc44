"""The names of job states and workflow statuses, and the sets of them the rules speak of
(ours.md §3.4). Every other module names states through this one; what moves a job or a
workflow from one to another is ``stepflow.engine.transitions``.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """The states a job's ``state`` column holds: the lifecycle of every job, then the stages
    of a live job (engine.md §10). A member is its value: it is stored, compared and encoded
    as that string."""

    QUEUED = "queued"
    RETRYING = "retrying"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"
    STOPPED = "stopped"
    SKIPPED = "skipped"
    READY_TO_INIT = "ready_to_init"
    INITIALIZING = "initializing"
    READY_TO_START = "ready_to_start"
    STARTING = "starting"
    UPDATING = "updating"


UPDATE = "update"
"""The state of the history row an ``update`` event writes; never a job's state (Q8)."""

JOB_STATES = (
    "queued",
    "skipped",
    "processing",
    "retrying",
    "error",
    "completed",
    "ready_to_init",
    "ready_to_start",
    "update",
    "stopped",
    "initializing",
    "starting",
    "updating",
    "initialized",
    "running",
    "unknown",
)
"""Every job state the API may show (the original's enum)."""

QUEUED_STATES = frozenset({JobState.QUEUED, JobState.RETRYING})
"""A job waiting for its order (or notification run) to be taken: the ``queued`` bucket."""

ACTIVE_STATES = frozenset({*QUEUED_STATES, JobState.PROCESSING})
"""A job whose order is out or running, not finished (live stages aside)."""

FINAL_JOB_STATES = frozenset({JobState.COMPLETED, JobState.ERROR, JobState.SKIPPED, JobState.STOPPED})
"""A job that ran (or will not run); only a retry or a late completion moves it (§3.4)."""

RETRYABLE_STATES = frozenset({JobState.ERROR, JobState.STOPPED})
"""A job a retry may run again, and whose parameters an update may change (ours.md §1.1, §3.5)."""

LIVE_STAGES = (
    JobState.QUEUED,
    JobState.READY_TO_INIT,
    JobState.INITIALIZING,
    JobState.READY_TO_START,
    JobState.STARTING,
    JobState.PROCESSING,
)
"""The stages a live job goes through, in order; its worker's reports only move it forward."""


class WorkflowState(StrEnum):
    """The values of a workflow's ``status`` column (ours.md §3.4)."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    ERROR = "error"
    COMPLETED = "completed"
    ABORTED = "aborted"


TERMINAL_WORKFLOW_STATES = frozenset({WorkflowState.COMPLETED, WorkflowState.ABORTED})
"""A workflow that never changes status again."""

ADVANCING_WORKFLOW_STATES = frozenset({WorkflowState.PENDING, WorkflowState.PROCESSING, WorkflowState.ERROR})
"""A workflow that starts the steps that may start (neither paused nor finished; a failing
branch does not hold the others back)."""
