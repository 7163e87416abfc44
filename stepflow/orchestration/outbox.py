"""What a committed transaction owes the broker, sent after commit.

The jobs table is the outbox of job orders and notification runs: a job is inserted with
``dispatched_at`` NULL; after commit its order is published (a worker job) or the
``run_notification`` actor is sent its id (a notification job), and the confirmed ids are
marked off the hot path (``DispatchMarks``: one background thread writes every waiting mark
in one ``UPDATE``; the sender never waits for a second transaction). ``dispatched_at`` is
therefore "confirmed, as far as StepFlow knows": an order may wait in a worker queue before
its mark is written, which is why an abort black-lists every queued worker job, marked or
not (ours.md §3.9, §3.12). Direct messages to workers (black list, stop, live process orders)
and the live worker manager's create/delete messages are outbox rows, deleted once
confirmed. A crash in between delays a message (the clock re-sends it), never loses it;
duplicates are harmless because every handler is idempotent.

Because what a committed transaction owes is in the database until confirmed, the bridge
need not wait for the broker before it acks a batch and decides the next one: its
:class:`Courier` sends what each batch owes from a thread of its own (with its own broker
connection), what several batches owe in one pipelined publish with one confirm wait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.engine.launch import JobPlan
from stepflow.engine.states import QUEUED_STATES, JobState
from stepflow.models import Job, Outbox
from stepflow.models.base import utcnow
from stepflow.orchestration.backlog import Backlog
from stepflow.orchestration.dispatch_marks import DispatchMarks
from stepflow.wire.direct_messaging import publish_direct_message
from stepflow.wire.orders import JobOrder, Submission
from stepflow.wire.publisher import PUBLISH_ERRORS, ConfirmingPublisher, publish_orders

log = structlog.get_logger(__name__)

DIRECT_MESSAGE = "direct_message"

NotificationSender = Callable[[int], Any]
"""Hands a notification job to the notifier actor (waits for the broker's confirm)."""


@dataclass
class Owed:
    """Messages a transaction made necessary: send them once it has committed."""

    orders: list[Submission] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)
    direct_messages: list[int] = field(default_factory=list)
    scheduled: dict[int, datetime] = field(default_factory=dict)
    """The ``send_after`` of jobs sent because it came (the clock's re-sends): their mark
    applies only while the job still has that ``send_after`` (see ``DispatchMarks``)."""

    def start(self, job_id: int, step: Mapping[str, Any], plan: JobPlan) -> None:
        """Owe what runs a newly planned job: its order, or its notification run."""
        if plan.state != JobState.QUEUED:
            return
        if plan.kind == "notification":
            self.notifications.append(job_id)
        else:
            self.orders.append(Submission(step["name"], step["id"], JobOrder(job_id, plan.parameters)))

    def add(self, other: Owed) -> Owed:
        self.orders += other.orders
        self.notifications += other.notifications
        self.direct_messages += other.direct_messages
        self.scheduled.update(other.scheduled)
        return self

    def __bool__(self) -> bool:
        return bool(self.orders or self.notifications or self.direct_messages)


def owe_direct_message(session: Session, message: dict[str, Any]) -> int:
    """Store a direct message in the outbox (same transaction); its id goes in ``Owed``."""
    row = Outbox(actor=DIRECT_MESSAGE, payload=message)
    session.add(row)
    session.flush()
    return row.id


def _send_notifications(notify: NotificationSender, job_ids: Sequence[int]) -> list[int]:
    sent = []
    for job_id in job_ids:
        try:
            notify(job_id)
        except Exception as error:  # the broker is down: the clock sends it later
            log.warning("notification not handed over", job_id=job_id, error=str(error))
            break
        sent.append(job_id)
    return sent


def send_direct_messages(
    sessions: sessionmaker[Session], publisher: ConfirmingPublisher, outbox_ids: Sequence[int]
) -> int:
    """Publish the direct messages of these outbox rows; delete the confirmed ones."""
    if not outbox_ids:
        return 0
    with sessions() as session:
        rows = session.execute(select(Outbox.id, Outbox.payload).where(Outbox.id.in_(outbox_ids)).order_by(Outbox.id))
        messages = list(rows)
    confirmed = []
    for outbox_id, message in messages:
        try:
            publish_direct_message(publisher, message)
        except PUBLISH_ERRORS as error:
            log.warning("direct message not confirmed", error=str(error))
            break
        confirmed.append(outbox_id)
    if confirmed:
        with sessions() as session, session.begin():
            session.execute(delete(Outbox).where(Outbox.id.in_(confirmed)))
    return len(confirmed)


def dispatch(
    sessions: sessionmaker[Session],
    publisher: ConfirmingPublisher,
    notify: NotificationSender,
    marks: DispatchMarks,
    owed: Owed,
) -> int:
    """Send everything ``owed``; returns how many messages the broker confirmed. The confirmed
    jobs are handed to ``marks``; direct messages confirmed are deleted from the outbox."""
    if not owed:
        return 0
    confirmed = publish_orders(publisher, owed.orders) if owed.orders else []
    notified = _send_notifications(notify, owed.notifications)
    marks.add((job_id, owed.scheduled.get(job_id)) for job_id in [*confirmed, *notified])
    return len(confirmed) + len(notified) + send_direct_messages(sessions, publisher, owed.direct_messages)


def undispatched(session: Session, older_than: float, limit: int = 500) -> Owed:
    """Jobs still waiting for their order or notification ``older_than`` seconds after they
    were created or retried, or whose ``send_after`` has come. Live jobs have no order: their
    worker manager's messages are outbox rows, re-sent with the direct messages."""
    now = utcnow()
    due = or_(
        and_(Job.send_after.is_(None), Job.updated_at < now - timedelta(seconds=older_than)),
        Job.send_after <= now,
    )
    rows = session.execute(
        select(Job.id, Job.kind, Job.name, Job.step_id, Job.parameters, Job.send_after)
        .where(Job.dispatched_at.is_(None), Job.state.in_(QUEUED_STATES), due, Job.is_live.is_(False))
        .order_by(Job.id)
        .limit(limit)
    )
    owed = Owed()
    for job_id, kind, name, step_id, parameters, send_after in rows:
        if send_after is not None:
            owed.scheduled[job_id] = send_after
        if kind == "notification":
            owed.notifications.append(job_id)
        else:
            owed.orders.append(Submission(name, step_id, JobOrder(job_id, parameters)))
    return owed


class Courier:
    """Hands what committed transactions owe to ``send`` (``Resources.send_owed``) on its own
    thread, in the order it was given: everything waiting is sent together. ``finish`` runs on
    that thread when it stops (it closes the thread's broker connections)."""

    def __init__(self, send: Callable[[Owed], object], finish: Callable[[], object]) -> None:
        self._send = send
        self._backlog: Backlog[Owed] = Backlog(self._send_together, "stepflow-courier", finish)

    def send(self, owed: Owed) -> None:
        """Send ``owed`` soon (returns at once); its transaction must have committed."""
        if owed:
            self._backlog.add([owed])

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything given so far was sent (or given up); False on timeout."""
        return self._backlog.flush(timeout)

    def close(self) -> None:
        """Send what waits, then stop the thread."""
        self._backlog.close()

    def _send_together(self, waiting: list[Owed]) -> None:
        together = Owed()
        for owed in waiting:
            together.add(owed)
        self._send(together)
