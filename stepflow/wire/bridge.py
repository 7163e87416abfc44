"""The bridge: consumes the workers' answers; decides the job answers, hands the rest to actors.

Each delivery is decoded and validated (msgspec). What happens to a valid one depends on its
queue's handler:

- a :class:`Decider` (``stepflow.orchestration.decisions.JobAnswers`` for the job answers)
  decides, in this process, all the deliveries of its queues that one read of the socket
  brought (up to ``PREFETCH``), as one batch: one transaction; the orders it owes go to the
  process's courier, which publishes them from its own thread while the next batch is
  decided (``stepflow.orchestration.outbox.Courier``). While a batch is decided, new deliveries wait
  in the socket, so the next batch is bigger under load and a lone message is decided at once;
- an actor (or its :class:`~stepflow.wire.handover.ActorAddress`) is handed it as a Dramatiq
  message (``dramatiq.Message(...).encode()``, persistent, published to the default exchange
  with the actor's queue as routing key, exactly what ``Actor.send`` would write); the hand-overs
  of one read go as one pipelined batch through ``ConfirmingPublisher.publish_many``.

Once everything of a read is committed or confirmed, its worker messages are acked together
(``multiple=True`` up to the last delivery tag when everything went through). No confirm is
waited for per message.

A message that can never succeed (undecodable, invalid, redelivered too often) goes to our
dead-letter queue with the reason, then is acked; expected noise (a ``job_error`` without
``job_id``) is acked with a log line; a decision that failed, or a hand-over the broker did not
confirm (nacked, unroutable, the actor broker unreachable), is rejected, which the original's
queue arguments turn into a retry in 5 s.

The actor queues are declared on every new hand-over channel with the arguments Dramatiq's
``RabbitmqBroker`` gives them (``declare_actor_queues``), so an actor process that has not
started yet loses nothing; hand-overs are ``mandatory``, so a queue deleted later makes the
message come back (rejected, retried) instead of vanishing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
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
RECONNECT_DELAY = 2.0

DECIDED = "decided"
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


class Decider(Protocol):
    """Decides the valid messages of its queues in this process, a batch at a time.

    Called with ``(queue, message)`` pairs in arrival order (messages decoded by
    ``stepflow.wire.messages``), it answers for each whether it is settled (its effect
    committed: the delivery is acked) or not (rejected into its queue's retry loop). ``name``
    labels its deliveries in the metrics, as an actor's name does."""

    name: str

    def __call__(self, batch: Sequence[tuple[str, Any]]) -> Sequence[bool]: ...


def as_handler(handler: Any) -> ActorLike | Decider:
    """An actor (or its address), an actor's bound ``send``, or a :class:`Decider`."""
    actor = getattr(handler, "__self__", handler)
    if hasattr(actor, "actor_name") and hasattr(actor, "queue_name"):
        return actor  # type: ignore[no-any-return]
    if callable(handler) and isinstance(getattr(handler, "name", None), str):
        return handler  # type: ignore[no-any-return]
    raise TypeError(f"bridge handler {handler!r} is neither a Dramatiq actor nor a decider")


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
    """Consumes ``handlers``' queues; each queue's messages go to one handler.

    ``handlers`` maps a consumed queue to a :class:`Decider`, or to a Dramatiq actor (or its
    address, or its bound ``send``) to hand them over to. Hand-overs are published on
    ``actors_url`` (the actors' broker; default: ``url``). ``observe`` is told how each
    delivery was settled and how long after it arrived (the metrics).
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
        self._actors: dict[str, ActorLike] = {}
        self._deciders: dict[str, Decider] = {}
        self._names: dict[str, str] = {}  # the metrics' ``actor`` label, by consumed queue
        for queue, given in handlers.items():
            handler = as_handler(given)
            if hasattr(handler, "actor_name"):
                self._actors[queue] = handler
                self._names[queue] = handler.actor_name
            else:
                self._deciders[queue] = handler  # type: ignore[assignment]
                self._names[queue] = handler.name  # type: ignore[union-attr]
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

    def _validate(self, delivery: _Delivery) -> tuple[str | None, Any]:
        """The decoded message of a delivery to decide or hand over (outcome None), or the
        outcome of one settled at once (dead-lettered, noise) and no message."""
        queue, body = delivery.queue, delivery.body
        try:
            message = messages.decode(queue, body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            dead_letter(self._dead_letters, body, f"invalid message: {error}", queue)
            return DEAD_LETTERED, None
        if queue == JOB_ERROR and getattr(message, "job_id", None) is None:
            log.info("job_error without job_id acked", queue=queue, body=body[:500].decode(errors="replace"))
            return NOISE, None
        if death_count(delivery.properties, queue) > MAX_REDELIVERIES:
            dead_letter(self._dead_letters, body, f"redelivered more than {MAX_REDELIVERIES} times", queue)
            return DEAD_LETTERED, None
        return None, message

    def _hand_over_message(self, delivery: _Delivery, message: Any) -> Outgoing:
        """The Dramatiq message that hands ``message`` to its queue's actor."""
        payload = msgspec.to_builtins(message)
        if delivery.queue in CATCH_ALL_QUEUES:
            payload = unroutable(delivery.routing_key, delivery.properties, payload)
        return actor_message(self._actors[delivery.queue], payload)

    def _outcomes(self, batch: list[_Delivery]) -> list[str]:
        """Validate, decide and hand over ``batch``: how each delivery is settled."""
        outcomes: list[str] = []
        found: list[Any] = []  # the decoded messages, by index in ``batch``
        decided: dict[int, list[int]] = {}  # by id of the decider: indices in ``batch``
        handed: list[int] = []
        for index, delivery in enumerate(batch):
            outcome, message = self._validate(delivery)
            outcomes.append(outcome or HANDED_OVER)
            found.append(message)
            if outcome is None:
                if delivery.queue in self._actors:
                    handed.append(index)
                else:
                    decided.setdefault(id(self._deciders[delivery.queue]), []).append(index)
        for indices in decided.values():
            decide = self._deciders[batch[indices[0]].queue]
            try:
                settled = decide([(batch[index].queue, found[index]) for index in indices])
            except Exception:  # a decider reports failures; this one broke its contract
                log.exception("decider failed", decider=decide.name)
                settled = [False] * len(indices)
            for index, ok in zip(indices, settled, strict=True):
                outcomes[index] = DECIDED if ok else REJECTED
        confirms = self._hand_over.publish_many([self._hand_over_message(batch[i], found[i]) for i in handed])
        for index, confirmed in zip(handed, confirms, strict=True):
            if not confirmed:
                outcomes[index] = REJECTED
        return outcomes

    def settle(self, channel: BlockingChannel, batch: list[_Delivery]) -> None:
        """Decide and hand over ``batch``, then ack or reject every delivery."""
        outcomes = self._outcomes(batch)
        if REJECTED not in outcomes:
            channel.basic_ack(batch[-1].tag, multiple=True)
        else:
            for delivery, outcome in zip(batch, outcomes, strict=True):
                if outcome != REJECTED:
                    channel.basic_ack(delivery.tag)
                else:
                    log.warning("deciding or handing over failed, retrying in 5 s", queue=delivery.queue)
                    channel.basic_reject(delivery.tag, requeue=False)
        settled = time.monotonic()
        for delivery, outcome in zip(batch, outcomes, strict=True):
            self._observe(delivery.queue, self._names[delivery.queue], outcome, settled - delivery.received)

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
        for queue in self._names:
            tag = channel.basic_consume(queue, self._on_delivery)
            self._consumer_queues[tag] = queue
        log.info("bridge consuming", queues=sorted(self._names))
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
