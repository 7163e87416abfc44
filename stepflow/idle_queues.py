"""Queues holding dispatched orders that no worker consumes (ours.md §3.11, the optional check).

An order to a queue nobody ever declared comes back as "queue not found"; an order to a queue
whose workers all stopped just waits. The clock asks the broker, once per status interval,
how many consumers each queue with waiting orders has (a passive ``queue.declare``), and says
so in the logs when a queue starts or stops having none: "no worker consuming job_x (3 jobs
waiting)". Nothing changes in the workflows: the orders wait for a worker to come back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pika
import pika.exceptions
import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.engine.states import QUEUED_STATES
from stepflow.models import Job

log = structlog.get_logger(__name__)

ConsumerCounts = Callable[[Iterable[str]], Mapping[str, int | None]]
"""Consumers of each queue, None for a queue the broker does not have."""


def waiting_orders(session: Session) -> dict[str, int]:
    """Dispatched worker orders not taken yet, by queue (live jobs aside: their worker manager
    decides where they run)."""
    rows = session.execute(
        select(Job.name, func.count())
        .where(
            Job.state.in_(QUEUED_STATES),
            Job.kind == "worker",
            Job.dispatched_at.is_not(None),
            Job.is_live.is_(False),
        )
        .group_by(Job.name)
    )
    return {name: count for name, count in rows}


def broker_consumer_counts(url: str) -> ConsumerCounts:
    """Ask the broker at ``url`` with passive declarations (a missing queue closes the channel,
    so each queue gets its own)."""

    def counts(queues: Iterable[str]) -> dict[str, int | None]:
        found: dict[str, int | None] = {}
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            for queue in queues:
                channel = connection.channel()
                try:
                    found[queue] = channel.queue_declare(queue, passive=True).method.consumer_count
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    found[queue] = None
        finally:
            connection.close()
        return found

    return counts


class IdleQueueWatch:
    """Logs when a queue with waiting orders has no consumer, and when it has one again."""

    def __init__(self, sessions: sessionmaker[Session], consumer_counts: ConsumerCounts) -> None:
        self._sessions = sessions
        self._consumer_counts = consumer_counts
        self.idle: dict[str, int] = {}
        """Queues seen without a consumer at the last check, with their waiting orders."""

    def check(self) -> dict[str, int]:
        """One look; returns the idle queues and their waiting orders."""
        with self._sessions() as session:
            waiting = waiting_orders(session)
        counts = self._consumer_counts(sorted(waiting)) if waiting else {}
        idle = {queue: waiting[queue] for queue, consumers in counts.items() if consumers == 0}
        for queue in sorted(idle.keys() - self.idle.keys()):
            log.warning(f"no worker consuming {queue}", queue=queue, waiting=idle[queue])
        for queue in sorted(self.idle.keys() - idle.keys()):
            log.info(f"{queue} is consumed again, or has no order waiting", queue=queue)
        self.idle = idle
        return idle
