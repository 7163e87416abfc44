"""What a StepFlow process shares between its threads, made once by the process that starts.

``stepflow actors``, ``bridge`` and ``clock`` (and the web, for events) open one
:class:`Resources` from their settings and pass it to what needs it; nothing fetches it from a
module-level cache. The database engine and the publishers are thread-safe (a publisher keeps
one connection per thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from stepflow.db import session_factory, sync_engine
from stepflow.notifier.http import new_client
from stepflow.orchestration.counters_cache import COUNTERS_CACHE, CountersCache
from stepflow.orchestration.steps_cache import STEPS_CACHE, StepsCache
from stepflow.orchestration.dispatch_marks import DispatchMarks
from stepflow.orchestration.outbox import Courier, Owed, dispatch
from stepflow.settings import Settings
from stepflow.wire.dead_letters import declare_dead_letters
from stepflow.wire.handover import RUN_NOTIFICATION, actor_message, declare_actor_queues
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import declare_publishing


def _declare_publishing_and_actor_queues(channel: BlockingChannel) -> None:
    declare_publishing(channel)
    declare_actor_queues(channel)


@dataclass
class Resources:
    """Settings, sessions and publishers of one process.

    ``publisher`` sends job orders and direct messages (the MCAI broker); ``hand_over`` sends
    messages to actors (the actors' broker, the same one unless ``STEPFLOW_ACTORS_AMQP_URL``
    says otherwise); ``dead_letters`` publishes to ``stepflow.dead_letters``; ``http`` is the
    notifier's client (outgoing HTTP, ``STEPFLOW_NOTIFIER_TIMEOUT``); ``marks`` writes the
    confirmed orders' ``dispatched_at`` off the senders' threads; ``courier`` sends what
    committed transactions owe off the caller's thread (``send_owed`` on a thread of its own,
    started on first use: the bridge's deciding thread uses it).
    """

    settings: Settings
    sessions: sessionmaker[Session]
    publisher: ConfirmingPublisher
    hand_over: ConfirmingPublisher
    dead_letters: ConfirmingPublisher
    http: httpx.Client
    marks: DispatchMarks
    courier: Courier = field(init=False)

    def __post_init__(self) -> None:
        self.courier = Courier(self.send_owed, finish=self._close_publishers)

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        """Create the engine and the publishers (they connect on first use)."""
        if settings.actors_amqp_url == settings.amqp_url:
            publisher = hand_over = ConfirmingPublisher(settings.amqp_url, declare=_declare_publishing_and_actor_queues)
        else:
            publisher = ConfirmingPublisher(settings.amqp_url)
            hand_over = ConfirmingPublisher(settings.actors_amqp_url, declare=declare_actor_queues)
        sessions = session_factory(sync_engine(settings), info={STEPS_CACHE: StepsCache(), COUNTERS_CACHE: CountersCache()})
        return cls(
            settings=settings,
            sessions=sessions,
            publisher=publisher,
            hand_over=hand_over,
            dead_letters=ConfirmingPublisher(settings.amqp_url, declare=declare_dead_letters),
            http=new_client(settings.notifier_timeout),
            marks=DispatchMarks(sessions),
        )

    @property
    def engine(self) -> Engine:
        """The database engine of ``sessions``."""
        engine: Engine = self.sessions.kw["bind"]
        return engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction, committed when the block ends without error."""
        with self.sessions() as session, session.begin():
            yield session

    def notify(self, job_id: int) -> None:
        """Hand a notification job to the ``run_notification`` actor; raises unless confirmed."""
        self.hand_over.send(actor_message(RUN_NOTIFICATION, job_id))

    def send_owed(self, owed: Owed) -> int:
        """Send what a committed transaction owes (orders, notifications, direct messages)."""
        return dispatch(self.sessions, self.publisher, self.notify, self.marks, owed)

    def resend(self, owed: Owed) -> int:
        """Send what the clock found unsent, and wait until its marks are written (so its next
        sweep does not find it again)."""
        sent = self.send_owed(owed)
        self.marks.flush()
        return sent

    def close(self) -> None:
        """Send what the courier holds, write the waiting dispatch marks, close this thread's
        broker connections and the database pool."""
        self.courier.close()  # first: it marks what it sends
        self.marks.close()
        self._close_publishers()
        self.http.close()
        self.engine.dispose()

    def _close_publishers(self) -> None:
        """Close the calling thread's broker connections."""
        for publisher in {id(p): p for p in (self.publisher, self.hand_over, self.dead_letters)}.values():
            publisher.close()
