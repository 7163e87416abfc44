"""The clock: periodic sweeps, run by exactly one process at a time.

Singleton through a PostgreSQL advisory lock held on a dedicated connection: extra clocks
idle until the holder dies. Each tick re-sends what a crash or a broker outage left behind:
launch messages owed by the web and announcements (outbox), direct messages to workers (outbox), and job
orders or notification runs never confirmed; then it runs the periodic tasks that are due
(the workers' status broadcast).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.outbox import DIRECT_MESSAGE, Owed, undispatched
from stepflow.models import Outbox
from stepflow.models.base import utcnow

log = structlog.get_logger(__name__)

ADVISORY_LOCK_KEY = 0x5731_F10C  # "stepflow clock"

Relay = Callable[[Outbox], Any]
"""Hands one outbox row to its actor again (``launch_workflow``, ``announce``)."""
OwedSender = Callable[[Owed], int]


@dataclass
class Periodic:
    """Something the clock does every ``every`` seconds (checked at each tick), such as asking
    every worker for its status."""

    name: str
    every: float
    run: Callable[[], Any]
    due: float = 0.0


def try_singleton(connection: Connection) -> bool:
    """Take the clock's advisory lock on ``connection`` (held until it closes)."""
    return bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}))


def _stale(older_than: float) -> Any:
    return func.coalesce(Outbox.sent_at, Outbox.inserted_at) < utcnow() - timedelta(seconds=older_than)


def relay_outbox(session: Session, relays: Mapping[str, Relay], older_than: float, limit: int = 500) -> int:
    """Hand over again the outbox rows of ``relays``' actors still there ``older_than`` seconds
    after they were written or last handed over.

    Each actor deletes its row once done (a launch in the transaction that launches, an
    announcement once delivered); until then the row is handed over once per period. An actor
    may push ``sent_at`` into the future while it works on a row, to keep it for itself.
    """
    rows = session.scalars(
        select(Outbox)
        .where(Outbox.actor.in_(list(relays)), _stale(older_than))
        .order_by(Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for row in rows:
        try:
            relays[row.actor](row)
        except Exception as error:  # broker down: keep the row for the next tick
            log.warning("outbox relay failed", actor=row.actor, error=str(error))
            break
        row.sent_at = utcnow()
        sent += 1
    return sent


def stale_direct_messages(session: Session, older_than: float, limit: int = 500) -> list[int]:
    return list(
        session.scalars(
            select(Outbox.id).where(Outbox.actor == DIRECT_MESSAGE, _stale(older_than)).order_by(Outbox.id).limit(limit)
        )
    )


class Clock:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        relays: Mapping[str, Relay],
        send: OwedSender,
        *,
        interval: float,
        outbox_resend_after: float,
        dispatch_resend_after: float,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        self._sessions = sessions
        self._periodic = list(periodic)
        self._relays = relays
        self._send = send
        self._interval = interval
        self._outbox_resend_after = outbox_resend_after
        self._dispatch_resend_after = dispatch_resend_after
        self._stop = threading.Event()

    def tick(self) -> tuple[int, int]:
        """One sweep: (outbox rows handed over again, other messages re-sent)."""
        with self._sessions() as session, session.begin():
            relayed = relay_outbox(session, self._relays, self._outbox_resend_after)
        with self._sessions() as session:
            owed = undispatched(session, self._dispatch_resend_after)
            owed.direct_messages = stale_direct_messages(session, self._dispatch_resend_after)
        resent = self._send(owed)
        if relayed or resent:
            log.info("clock re-sent", launches=relayed, messages=resent)
        self._run_due(time.monotonic())
        return relayed, resent

    def _run_due(self, now: float) -> None:
        for task in self._periodic:
            if now < task.due:
                continue
            task.due = now + task.every
            try:
                task.run()
            except Exception as error:  # the broker is down: try again next period
                log.warning("periodic task failed", task=task.name, error=str(error))

    def run(self) -> None:
        """Tick every interval while holding the singleton lock; idle while another clock does."""
        engine = self._sessions.kw["bind"]
        while not self._stop.is_set():
            try:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_connection:
                    if not try_singleton(lock_connection):
                        self._stop.wait(self._interval)
                        continue
                    log.info("clock is the singleton")
                    while not self._stop.is_set():
                        lock_connection.execute(text("SELECT 1"))  # the lock dies with this connection
                        try:
                            self.tick()
                        except Exception:
                            log.exception("clock tick failed")
                        self._stop.wait(self._interval)
            except Exception:
                log.exception("clock lost its database connection")
                self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
