"""The clock: periodic sweeps, run by exactly one process at a time.

Singleton through a PostgreSQL advisory lock held on a dedicated connection: extra clocks
idle until the holder dies. Each tick re-sends what a crash or a broker outage left behind:
outbox entries (actor messages owed after a commit) and job orders never confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from stepflow.actors.dispatch import dispatch, undispatched_orders
from stepflow.models import Outbox
from stepflow.models.base import utcnow
from stepflow.wire.publisher import ConfirmingPublisher

log = structlog.get_logger(__name__)

ADVISORY_LOCK_KEY = 0x5731_F10C  # "stepflow clock"

Sender = Callable[[dict[str, Any]], Any]


def try_singleton(connection: Connection) -> bool:
    """Take the clock's advisory lock on ``connection`` (held until it closes)."""
    return bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}))


def relay_outbox(session: Session, senders: Mapping[str, Sender], older_than: float, limit: int = 500) -> int:
    """Send again the outbox entries not consumed ``older_than`` seconds after their last send."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    rows = session.scalars(
        select(Outbox)
        .where(func.coalesce(Outbox.sent_at, Outbox.inserted_at) < cutoff, Outbox.actor.in_(list(senders)))
        .order_by(Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for row in rows:
        try:
            senders[row.actor](row.payload)
        except Exception as error:  # broker down: keep the entry for the next tick
            log.warning("outbox relay failed", actor=row.actor, error=str(error))
            break
        row.sent_at = utcnow()
        sent += 1
    return sent


class Clock:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: ConfirmingPublisher,
        senders: Mapping[str, Sender],
        *,
        interval: float,
        outbox_resend_after: float,
        dispatch_resend_after: float,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._senders = senders
        self._interval = interval
        self._outbox_resend_after = outbox_resend_after
        self._dispatch_resend_after = dispatch_resend_after
        self._stop = threading.Event()

    def tick(self) -> tuple[int, int]:
        """One sweep: (outbox entries re-sent, job orders re-sent)."""
        with self._sessions() as session, session.begin():
            relayed = relay_outbox(session, self._senders, self._outbox_resend_after)
        with self._sessions() as session:
            orders = undispatched_orders(session, self._dispatch_resend_after)
        redispatched = dispatch(self._sessions, self._publisher, orders)
        if relayed or redispatched:
            log.info("clock re-sent", outbox=relayed, job_orders=redispatched)
        return relayed, redispatched

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
