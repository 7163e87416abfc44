"""``stepflow_messages_total`` and ``stepflow_message_seconds`` for the bridge and the actors.

Labels: ``process`` (``bridge`` or ``actors``), ``queue`` (the MCAI queue the bridge consumed,
or the actor's Dramatiq queue), ``actor`` (the actor the message is for) and ``outcome``:

- bridge: ``handed_over`` to its actor, ``dead_lettered`` (undecodable, invalid or redelivered
  too often), ``noise`` (expected, acked with a log line), ``rejected`` (the hand-over was not
  confirmed: RabbitMQ retries it in 5 s);
- actors: ``success``, ``error`` (the actor raised: Dramatiq retries it) or ``skipped``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq

from stepflow.metrics.instruments import ACTORS, BRIDGE, instruments
from stepflow.settings import Settings

BridgeObserver = Callable[[str, str, str, float], None]
"""``observe(queue, actor, outcome, seconds)``, called by the bridge for each delivery it settles."""


def observe_bridge(queue: str, actor: str, outcome: str, seconds: float) -> None:
    meters = instruments()
    meters.messages.labels(BRIDGE, queue, actor, outcome).inc()
    meters.message_seconds.labels(BRIDGE, queue, actor, outcome).observe(seconds)


def ignore_bridge(queue: str, actor: str, outcome: str, seconds: float) -> None:
    """The observer of a bridge without metrics."""


def bridge_observer(settings: Settings) -> BridgeObserver:
    return observe_bridge if settings.metrics_enabled else ignore_bridge


class MessageMetrics(dramatiq.Middleware):
    """Counts and times every message an actor processes (one instance per worker process)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._observe(message, "success" if exception is None else "error")

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._observe(message, "skipped")

    def _observe(self, message: dramatiq.Message, outcome: str) -> None:
        meters = instruments()
        labels = (ACTORS, message.queue_name, message.actor_name, outcome)
        meters.messages.labels(*labels).inc()
        started = self._started.pop(message.message_id, None)
        if started is not None:  # a message skipped before it started has no duration
            meters.message_seconds.labels(*labels).observe(time.perf_counter() - started)


def actor_middleware(settings: Settings) -> list[dramatiq.Middleware]:
    """The middleware the actors' broker adds for metrics (none when they are disabled)."""
    return [MessageMetrics()] if settings.metrics_enabled else []
