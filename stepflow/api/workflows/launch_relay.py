"""The launch relay: the web's hand-over of committed launches to the ``launch_workflow`` actor.

``POST /workflows`` commits the workflow together with its outbox row (actor
``launch_workflow``), then gives the relay a :class:`Launch` with :meth:`LaunchRelay.submit`,
which only queues it: the request answers without waiting for the broker. The relay's one
thread takes whatever launches are waiting, publishes their actor messages pipelined with one
confirm wait (:meth:`ConfirmingPublisher.publish_many`), and marks the confirmed ones' outbox
rows sent in one ``UPDATE`` per batch. A lone launch goes at once (the thread wakes on it, no
timer); while launches keep coming, batches start :data:`PACE` apart at most often, so each
takes every launch committed since the previous one.

Nothing is lost on this path: what the broker did not confirm, and whatever a crash of the web
process left queued here, keeps ``sent_at`` NULL, and the clock hands it over after
``STEPFLOW_OUTBOX_RESEND_AFTER``. A launch may thus be handed over more than once;
``launch_workflow`` is idempotent, and deletes the row in the transaction that launches.

The app owns one relay (created with its resources, started and stopped by its lifespan): the
thread keeps one connection to the actors' broker, its own (a publisher keeps one per thread),
and closes it when it stops.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import BigInteger, Engine, Update, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from stepflow.models import Outbox
from stepflow.models.base import utcnow
from stepflow.wire.handover import LAUNCH_WORKFLOW, actor_message
from stepflow.wire.publisher import ConfirmingPublisher

log = structlog.get_logger(__name__)

MAX_BATCH = 500
"""Launches published (and marked sent) together at most."""

PACE = 0.02
"""Seconds from one batch's start to the next while launches keep coming. A launch arriving
after a quiet ``PACE`` is relayed at once; one arriving sooner waits for the rest of it, joined
by those arriving meanwhile. Each batch costs a broker round trip, an ``UPDATE`` and the thread's
share of the interpreter lock; under load, fewer and larger batches leave the event loop that
serves the requests more of it."""

STOP_TIMEOUT = 15.0
"""Seconds :meth:`LaunchRelay.stop` waits for the thread to relay what waits and exit."""


@dataclass(frozen=True, slots=True)
class Launch:
    """A committed workflow and its launch outbox row."""

    workflow_id: int
    outbox_id: int


HandOver = Callable[[Launch], Awaitable[None]]
"""What the launch request does once its transaction committed. It never raises: a launch it
could not hand over stays in the outbox for the clock."""

Launcher = Callable[[int], Any]
"""Hands one committed workflow to the ``launch_workflow`` actor, blocking; raises if it could
not. A test's replacement for the relay (see :func:`in_request`)."""


@functools.cache
def _mark_sent() -> Update:
    """``UPDATE outbox SET sent_at = :now`` for the rows of ``:ids`` no other transaction holds,
    built once (building it costs more than running it). The ids go as one array, as
    :func:`stepflow.queries.among` sends them."""
    free = (
        select(Outbox.id)
        .where(Outbox.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
        .with_for_update(skip_locked=True)
    )
    return update(Outbox).where(Outbox.id.in_(free.scalar_subquery())).values(sent_at=bindparam("now"))


def mark_sent(engine: Engine, outbox_ids: Sequence[int]) -> None:
    """Mark these launch outbox rows handed over now: one ``UPDATE`` by primary key, on its own
    (autocommit: no ``BEGIN``/``COMMIT`` round trips). It never waits for a row: one the actor
    is consuming (it deletes it) or the clock is handing over again (it marks it itself) is
    skipped, and one already consumed is simply not there."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(_mark_sent(), {"ids": list(outbox_ids), "now": utcnow()})


_STOP = object()


class LaunchRelay:
    """Relays launches from one background thread; see the module docstring for the contract.

    ``submit`` may be called from any thread (the event loop's, typically) once ``start`` ran;
    ``stop`` relays what is still waiting, closes the thread's broker connection and joins it.
    """

    def __init__(
        self, engine: Engine, hand_over: ConfirmingPublisher, *, max_batch: int = MAX_BATCH, pace: float = PACE
    ) -> None:
        self._engine = engine
        self._hand_over = hand_over
        self._max_batch = max_batch
        self._pace = pace
        self._previous = float("-inf")  # when the last batch started (monotonic)
        self._waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; it connects to the broker first, so the first launch does not wait
        for that (a broker down at start is logged and retried with the first batch)."""
        self._thread = threading.Thread(target=self._run, name="stepflow-launch-relay", daemon=True)
        self._thread.start()

    def submit(self, launch: Launch) -> None:
        """Queue a committed launch for the thread; returns at once."""
        self._waiting.put(launch)

    async def hand_over(self, launch: Launch) -> None:
        """:data:`HandOver` for the launch request: :meth:`submit`."""
        self.submit(launch)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Relay what was submitted before, then stop the thread (waits ``timeout`` seconds at
        most: past that, the thread, a daemon, is left to finish and the clock has the rest)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._waiting.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("launch relay still busy at shutdown, its launches are left to the clock", timeout=timeout)

    def relay(self, launches: Sequence[Launch]) -> int:
        """Publish these launches pipelined, then mark the confirmed ones sent in one
        ``UPDATE``; returns how many the broker confirmed. Never raises for a broker or database
        failure: what is not marked sent is the clock's."""
        outcomes = self._hand_over.publish_many(
            [actor_message(LAUNCH_WORKFLOW, launch.workflow_id) for launch in launches]
        )
        confirmed = [launch for launch, ok in zip(launches, outcomes, strict=True) if ok]
        if len(confirmed) < len(launches):
            missed = [launch.workflow_id for launch, ok in zip(launches, outcomes, strict=True) if not ok]
            log.warning("launch messages not confirmed, left to the clock", workflow_ids=missed[:20], count=len(missed))
        if confirmed:
            try:
                mark_sent(self._engine, [launch.outbox_id for launch in confirmed])
            except Exception as error:  # the database is down: the clock hands them over again
                log.warning("launches handed over but not marked sent", count=len(confirmed), error=str(error))
        log.debug("launches relayed", count=len(launches), confirmed=len(confirmed))
        return len(confirmed)

    def _next_batch(self) -> tuple[list[Launch], bool]:
        """Wait for a launch, and for the rest of the :data:`PACE` if the last batch started
        less than that ago; then take every launch waiting (up to ``max_batch``). The flag is
        False once ``stop`` was asked."""
        batch: list[Launch] = []
        item = self._waiting.get()
        early = self._previous + self._pace - time.monotonic()
        if early > 0 and item is not _STOP:
            time.sleep(early)
        self._previous = time.monotonic()
        while True:
            if item is _STOP:
                return batch, False
            batch.append(item)
            if len(batch) >= self._max_batch:
                return batch, True
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                return batch, True

    def _run(self) -> None:
        running = True
        try:
            self._hand_over.connect()
            while running:
                batch, running = self._next_batch()
                if batch:
                    try:
                        self.relay(batch)
                    except Exception:  # a bug must not stop the relay: the clock has the rows
                        log.exception("launch relay failed", count=len(batch))
        finally:
            self._hand_over.close()


def in_request(launcher: Launcher, engine: Engine) -> HandOver:
    """The hand-over of a ``launcher`` hook, for tests that replace the relay: the launcher
    runs in a worker thread before the request answers (so its effects, such as an in-process
    ``launch_workflow``, are there when it does), and the row is marked sent if it returned."""

    def launch_now(launch: Launch) -> None:
        launcher(launch.workflow_id)
        mark_sent(engine, [launch.outbox_id])

    async def hand_over(launch: Launch) -> None:
        try:
            await anyio.to_thread.run_sync(launch_now, launch)
        except Exception as error:  # the clock relays the outbox row
            log.warning("launch not handed over, left to the clock", workflow_id=launch.workflow_id, error=str(error))

    return hand_over
