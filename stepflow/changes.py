"""What a transaction changed, told to whoever listens when it commits.

Code that changes a workflow, a job or a worker records a :class:`Change` on its session
(:func:`record`). Listeners are small hooks registered once per process:

- :func:`before_commit` listeners run inside the transaction, just before it commits, so what
  they write (a ``pg_notify``, an outbox row) commits or rolls back with the change itself;
  one may return a follow-up, run once the transaction committed (handing its outbox rows
  over, say);
- :func:`after_commit` listeners run once it committed (metrics, best-effort hand-overs); they
  must not raise, and an error is only logged.

A rollback forgets the changes. Nothing here knows who listens: the websocket feed, the
notification hooks, Slack and the metrics each register their own listener. Only sessions of
a :func:`session_class` tell them (``stepflow.db`` gives one to every session factory): the
sync sessions of the actors and the async sessions of the web (whose sync session fires the
same events). Importing this module registers nothing with SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

KEY = "stepflow.changes"

WORKFLOW_CREATED = "workflow_created"
WORKFLOW_STATUS = "workflow_status"
WORKFLOW_DELETED = "workflow_deleted"
JOB_STATE = "job_state"
JOB_RETRIED = "job_retried"
JOB_PROGRESSION = "job_progression"
WORKERS_STATUS = "workers_status"


@dataclass(frozen=True)
class WorkflowRef:
    """What listeners may need of a workflow, copied when the change happened."""

    id: int
    identifier: str
    version: str
    reference: str
    status: str
    view_groups: tuple[str, ...]
    notification_hooks: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, workflow: Any) -> WorkflowRef:
        return cls(
            id=workflow.id,
            identifier=workflow.identifier,
            version=f"{workflow.version_major}.{workflow.version_minor}.{workflow.version_micro}",
            reference=workflow.reference,
            status=workflow.status,
            view_groups=tuple(workflow.view_groups or ()),
            notification_hooks=tuple(workflow.notification_hooks or ()),
        )


@dataclass(frozen=True)
class JobRef:
    """A job as it is after the change; ``message`` is its error or stop message, if any."""

    id: int
    name: str
    step_id: int
    state: str
    message: str | None = None


def job_ref(job: Any, message: str | None = None) -> JobRef:
    """The :class:`JobRef` of a job row as it is now."""
    return JobRef(job.id, job.name, job.step_id, job.state, message)


@dataclass(frozen=True)
class Change:
    """One change: ``event`` is one of the names above; ``previous`` is the status or state
    before it (None for a job just created)."""

    event: str
    workflow: WorkflowRef | None = None
    job: JobRef | None = None
    previous: str | None = None
    progression: int | None = None


FollowUp = Callable[[], object]
BeforeCommit = Callable[[Session, Sequence[Change]], FollowUp | None]
AfterCommit = Callable[[Sequence[Change]], None]
FOLLOW_UPS = "stepflow.changes.follow_ups"

_before: dict[str, BeforeCommit] = {}
_after: dict[str, AfterCommit] = {}


def record(session: Session, change: Change) -> None:
    """Note ``change`` on ``session`` (one of a :func:`session_class`); listeners see it when the
    transaction commits."""
    session.info.setdefault(KEY, []).append(change)


def before_commit(name: str, listener: BeforeCommit) -> None:
    """Register ``listener`` under ``name`` (a second registration of a name replaces the first,
    so a process that installs its listeners again, with other settings, runs each once)."""
    _before[name] = listener


def after_commit(name: str, listener: AfterCommit) -> None:
    """Register ``listener`` under ``name`` (replacing any listener of that name)."""
    _after[name] = listener


def forget_listeners() -> None:
    """Unregister every listener (tests)."""
    _before.clear()
    _after.clear()


def _before_commit(session: Session) -> None:
    changes = session.info.get(KEY)
    if changes:
        for listener in list(_before.values()):
            follow_up = listener(session, tuple(changes))
            if follow_up is not None:
                session.info.setdefault(FOLLOW_UPS, []).append(follow_up)


def _safely(name: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # a listener's failure never undoes or blocks a committed change
        log.exception("after-commit listener failed", listener=name)


def _after_commit(session: Session) -> None:
    changes = session.info.pop(KEY, None)
    follow_ups = session.info.pop(FOLLOW_UPS, ())
    if not changes:
        return
    batch = tuple(changes)
    for follow_up in follow_ups:
        _safely(getattr(follow_up, "__qualname__", "follow-up"), follow_up)
    for name, listener in list(_after.items()):
        _safely(name, lambda: listener(batch))  # noqa: B023 (called at once)


def _after_rollback(session: Session) -> None:
    session.info.pop(KEY, None)
    session.info.pop(FOLLOW_UPS, None)


def session_class() -> type[Session]:
    """A new ``Session`` subclass whose transactions tell the listeners when they commit, and
    forget their changes when they roll back. Each call makes a class of its own and hooks it
    alone, so ``Session`` and the sessions of anyone else stay as they are."""

    class ChangeSession(Session):
        """A session whose committed changes reach the listeners (``stepflow.changes``)."""

    event.listen(ChangeSession, "before_commit", _before_commit)
    event.listen(ChangeSession, "after_commit", _after_commit)
    event.listen(ChangeSession, "after_rollback", _after_rollback)
    return ChangeSession
