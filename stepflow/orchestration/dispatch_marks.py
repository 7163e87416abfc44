"""Marking confirmed job orders dispatched, off the senders' threads.

``dispatched_at`` is what the clock reads to find orders a crash or an outage left unsent
(``stepflow.orchestration.outbox.undispatched``); writing it in the transaction of every worker
message would cost a second transaction per message, so a process's senders hand their
confirmed orders to its :class:`DispatchMarks` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.models import Job
from stepflow.models.base import utcnow
from stepflow.orchestration.backlog import Backlog

log = structlog.get_logger(__name__)

_JOBS = Job.__table__
_MARK = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        _JOBS.c.dispatched_at.is_(None),
        _JOBS.c.send_after.is_not_distinct_from(bindparam("sent_after", type_=_JOBS.c.send_after.type)),
    )
    .values(dispatched_at=bindparam("now"), send_after=None, updated_at=bindparam("now"))
)


class DispatchMarks:
    """Marks jobs ``dispatched_at`` once their order (or notification hand-over) is confirmed,
    off the sender's thread.

    ``add`` returns at once; one background thread (a :class:`Backlog`) writes all the marks
    waiting in one transaction (one ``UPDATE`` executed for all rows), so under load many
    senders' marks share a transaction and a lone mark is written at once. A mark that is never
    written (a crash, the database down) only means the clock sends that order again after
    ``dispatch_resend_after``: a duplicate order is harmless, since every answer is idempotent.

    A mark names the job and the ``send_after`` it had when its order was sent, and applies
    only if the job still has it and is still unmarked: a job told to send its order again
    meanwhile (the SDK's busy answer sets a new ``send_after``) keeps waiting for the clock,
    however late the old order's mark is written.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._backlog: Backlog[tuple[int, datetime | None]] = Backlog(self._write, "stepflow-dispatch-marks")

    def add(self, sent: Iterable[tuple[int, datetime | None]]) -> None:
        """Mark these ``(job id, send_after when sent)`` dispatched soon (never blocks on the
        database); once closing, the clock sends these orders again instead."""
        self._backlog.add(sent)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every mark added so far is written (or given up); False on timeout."""
        return self._backlog.flush(timeout)

    def close(self) -> None:
        """Write what waits, then stop the thread."""
        self._backlog.close()

    def _write(self, marks: list[tuple[int, datetime | None]]) -> None:
        now = utcnow()
        try:
            with self._sessions() as session, session.begin():
                rows = [{"job_id": job_id, "sent_after": after, "now": now} for job_id, after in marks]
                session.connection().execute(_MARK, rows)
        except Exception as error:  # the clock sends these orders again later
            log.warning("dispatch marks not written", count=len(marks), error=str(error))
