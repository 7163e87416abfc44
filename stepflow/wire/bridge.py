"""The bridge: consumes the workers' answers and hands each one to an actor.

Each delivery is decoded and validated (msgspec). A valid one becomes a Dramatiq message for
the actor of its queue (``dramatiq.Message(...).encode()``, persistent, published to the
default exchange with the actor's queue as routing key, exactly what ``Actor.send`` would
write); an actor that takes batches (``ActorAddress.batch``: ``job_answers``) gets the
deliveries of one read in one message of ``[queue, payload]`` pairs instead (at most ``BATCH``),
so answers that arrive together are decided together. The deliveries that one read of the
socket brings (up to ``PREFETCH``) are handed over as one pipelined batch through
``ConfirmingPublisher.publish_many``; once the broker has confirmed them, the worker messages
are acked together (``multiple=True`` up to the last delivery tag when everything went through). No confirm is waited for per message.

A message that can never succeed (undecodable, invalid, redelivered too often) goes to our
dead-letter queue with the reason, then is acked; expected noise (a ``job_error`` without
``job_id``) is acked with a log line; a hand-over the broker did not confirm (nacked,
unroutable, the actor broker unreachable) is rejected, which the original's queue arguments
turn into a retry in 5 s.

The actor queues are declared on every new hand-over channel with the arguments Dramatiq's
``RabbitmqBroker`` gives them (``declare_actor_queues``), so an actor process that has not
started yet loses nothing; hand-overs are ``mandatory``, so a queue deleted later makes the
message come back (rejected, retried) instead of vanishing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from stepflow.metrics.messages import BridgeObserver, ignore_bridge
from stepflow.wire import messages
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.handover import actor_message, declare_actor_queues
from stepflow.wire.publisher import ConfirmingPublisher, Outgoing
from stepflow.wire.topology import CATCH_ALL_QUEUES, JOB_ERROR, declare_bridge_topology

log = structlog.get_logger(__name__)

MAX_REDELIVERIES = 10
PREFETCH = 500
BATCH = 100
"""At most this many answers in one hand-over to an actor that takes batches (more batches
let more actor threads work at once)."""
RECONNECT_DELAY = 2.0

HANDED_OVER = "handed_over"
DEAD_LETTERED = "dead_lettered"
NOISE = "noise"
REJECTED = "rejected"
"""How the bridge settles a delivery (the ``outcome`` of its metrics)."""


class ActorLike(Protocol):
    """Where the bridge hands a queue's messages: a Dramatiq ``Actor`` or an
    :class:`~stepflow.wire.handover.ActorAddress` has all of it."""

    actor_name: str
    queue_name: str


def as_actor(handler: Any) -> ActorLike:
    """An actor (or its address), or an actor's bound ``send``."""
    actor = getattr(handler, "__self__", handler)
    if not (hasattr(actor, "actor_name") and hasattr(actor, "queue_name")):
        raise TypeError(f"bridge handler {handler!r} is not a Dramatiq actor")
    return actor


def death_count(properties: BasicProperties, queue: str) -> int:
    """How many times this message went around the 5 s retry loop of ``queue``."""
    deaths = (properties.headers or {}).get("x-death") or []
    return sum(int(death.get("count", 0)) for death in deaths if death.get("queue") == queue)


def unroutable(routing_key: str, properties: BasicProperties, body: Any) -> dict[str, Any]:
    """What a catch-all actor is handed: the body with where it was headed (routing key, and
    the string headers that address a direct message)."""
    headers = {name: value for name, value in (properties.headers or {}).items() if isinstance(value, str)}
    return {"routing_key": routing_key, "headers": headers, "body": body}


@dataclass
class _Delivery:
    tag: int
    queue: str
    routing_key: str
    body: bytes
    properties: BasicProperties
    received: float = field(default_factory=time.monotonic)


class Bridge:
    """Consumes ``handlers``' queues; each queue's messages go to one actor.

    ``handlers`` maps a consumed queue to a Dramatiq actor (or its bound ``send``). Hand-overs
    are published on ``actors_url`` (the actors' broker; default: ``url``). ``observe`` is told
    how each delivery was settled and how long after it arrived (the metrics).
    """

    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Any],
        dead_letters: ConfirmingPublisher,
        *,
        actors_url: str | None = None,
        hand_over: ConfirmingPublisher | None = None,
        observe: BridgeObserver = ignore_bridge,
    ) -> None:
        self._parameters = pika.URLParameters(url)
        self._actors = {queue: as_actor(handler) for queue, handler in handlers.items()}
        self._dead_letters = dead_letters
        self._observe = observe
        queue_names = {actor.queue_name for actor in self._actors.values()}
        self._hand_over = hand_over or ConfirmingPublisher(
            actors_url or url, declare=lambda channel: declare_actor_queues(channel, queue_names)
        )
        self._connection: pika.BlockingConnection | None = None
        self._stopping = False
        self._consumer_queues: dict[str, str] = {}
        self._batch: list[_Delivery] = []

    def prepare(self, queue: str, routing_key: str, body: bytes, properties: BasicProperties) -> tuple[str, Any]:
        """Decide one delivery: its outcome, and the payload to hand over (None: ack it right away)."""
        try:
            message = messages.decode(queue, body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            dead_letter(self._dead_letters, body, f"invalid message: {error}", queue)
            return DEAD_LETTERED, None
        if queue == JOB_ERROR and getattr(message, "job_id", None) is None:
            log.info("job_error without job_id acked", queue=queue, body=body[:500].decode(errors="replace"))
            return NOISE, None
        if death_count(properties, queue) > MAX_REDELIVERIES:
            dead_letter(self._dead_letters, body, f"redelivered more than {MAX_REDELIVERIES} times", queue)
            return DEAD_LETTERED, None
        payload = msgspec.to_builtins(message)
        if queue in CATCH_ALL_QUEUES:
            payload = unroutable(routing_key, properties, payload)
        return HANDED_OVER, payload

    def _hand_overs(self, batch: list[_Delivery], payloads: dict[int, Any]) -> list[tuple[Outgoing, list[int]]]:
        """The messages that hand ``payloads`` (by index in ``batch``) over, each with the
        indices it carries: one message per payload, except for an actor that takes batches,
        which gets one message of ``[queue, payload]`` pairs per ``BATCH`` payloads."""
        messages: list[tuple[Outgoing, list[int]]] = []
        grouped: dict[ActorLike, list[int]] = {}
        for index, payload in payloads.items():
            actor = self._actors[batch[index].queue]
            if getattr(actor, "batch", False):
                grouped.setdefault(actor, []).append(index)
            else:
                messages.append((actor_message(actor, payload), [index]))
        for actor, indices in grouped.items():
            for start in range(0, len(indices), BATCH):
                chunk = indices[start : start + BATCH]
                pairs = [[batch[index].queue, payloads[index]] for index in chunk]
                messages.append((actor_message(actor, pairs), chunk))
        return messages

    def settle(self, channel: BlockingChannel, batch: list[_Delivery]) -> None:
        """Hand ``batch`` over (one pipelined publish), then ack or reject every delivery."""
        payloads: dict[int, Any] = {}  # by index in ``batch``: what is handed over
        outcomes: list[str] = []
        for index, delivery in enumerate(batch):
            outcome, payload = self.prepare(delivery.queue, delivery.routing_key, delivery.body, delivery.properties)
            outcomes.append(outcome)
            if payload is not None:
                payloads[index] = payload
        hand_overs = self._hand_overs(batch, payloads)
        confirms = self._hand_over.publish_many([message for message, _ in hand_overs])
        for (_, indices), confirmed in zip(hand_overs, confirms, strict=True):
            if not confirmed:
                for index in indices:
                    outcomes[index] = REJECTED
        if REJECTED not in outcomes:
            channel.basic_ack(batch[-1].tag, multiple=True)
        else:
            for delivery, outcome in zip(batch, outcomes, strict=True):
                if outcome != REJECTED:
                    channel.basic_ack(delivery.tag)
                else:
                    log.warning("handing over failed, retrying in 5 s", queue=delivery.queue)
                    channel.basic_reject(delivery.tag, requeue=False)
        settled = time.monotonic()
        for delivery, outcome in zip(batch, outcomes, strict=True):
            self._observe(delivery.queue, self._actors[delivery.queue].actor_name, outcome, settled - delivery.received)

    def _on_delivery(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        queue = self._consumer_queues[method.consumer_tag]
        self._batch.append(_Delivery(method.delivery_tag, queue, method.routing_key, body, properties))

    def run_once(self) -> None:
        """Connect, declare, consume until the connection drops or ``stop`` is called."""
        self._batch = []
        self._connection = pika.BlockingConnection(self._parameters)
        channel = self._connection.channel()
        declare_bridge_topology(channel)
        channel.basic_qos(prefetch_count=PREFETCH)
        self._hand_over.connect()  # declares the actor queues before anything is consumed
        self._consumer_queues = {}
        for queue in self._actors:
            tag = channel.basic_consume(queue, self._on_delivery)
            self._consumer_queues[tag] = queue
        log.info("bridge consuming", queues=sorted(self._actors))
        while not self._stopping:
            self._connection.process_data_events(time_limit=1)
            if self._batch:
                batch, self._batch = self._batch, []
                self.settle(channel, batch)
        self._connection.close()

    def run(self) -> None:
        """Consume forever, reconnecting after broker failures."""
        while not self._stopping:
            try:
                self.run_once()
            except (pika.exceptions.AMQPError, OSError) as error:
                log.warning("bridge connection lost, reconnecting", error=str(error))
                time.sleep(RECONNECT_DELAY)
        self._hand_over.close()

    def stop(self) -> None:
        self._stopping = True
