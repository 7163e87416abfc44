"""Handing a message to a Dramatiq actor without Dramatiq's broker: the same bytes.

``actor_message`` builds what ``Actor.send(*args)`` would publish (``dramatiq.Message``
encoding, persistent, default exchange, the actor's queue as routing key), as a ``mandatory``
:class:`~stepflow.wire.publisher.Outgoing`, so a :class:`ConfirmingPublisher` can pipeline
many of them with one confirm wait. ``declare_actor_queues`` declares the actor queues as
``RabbitmqBroker`` does, so a hand-over made before the actors process started is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import dq_name, xq_name
from pika.adapters.blocking_connection import BlockingChannel

from stepflow.wire.publisher import Outgoing


@dataclass(frozen=True)
class ActorAddress:
    """Where an actor's messages go: its queue, and its name inside the message."""

    queue_name: str
    actor_name: str


JOBS_QUEUE = "stepflow.jobs"
WORKERS_QUEUE = "stepflow.workers"
WORKFLOWS_QUEUE = "stepflow.workflows"
NOTIFICATIONS_QUEUE = "stepflow.notifications"
ACTOR_QUEUES = (JOBS_QUEUE, WORKERS_QUEUE, WORKFLOWS_QUEUE, NOTIFICATIONS_QUEUE)

LAUNCH_WORKFLOW = ActorAddress(WORKFLOWS_QUEUE, "launch_workflow")
RUN_NOTIFICATION = ActorAddress(NOTIFICATIONS_QUEUE, "run_notification")
ANNOUNCE_ACTOR = ActorAddress(NOTIFICATIONS_QUEUE, "announce")


def actor_message(actor: ActorAddress, *args: Any) -> Outgoing:
    """The message ``actor.send(*args)`` would publish, as a mandatory publish."""
    message = dramatiq.Message(
        queue_name=actor.queue_name, actor_name=actor.actor_name, args=args, kwargs={}, options={}
    )
    properties = pika.BasicProperties(delivery_mode=2, message_id=message.message_id)
    return Outgoing("", actor.queue_name, message.encode(), properties, mandatory=True)


def declare_actor_queues(channel: BlockingChannel, queue_names: Iterable[str] = ACTOR_QUEUES) -> None:
    """Declare each actor queue, its delay queue and its dead-letter queue as ``RabbitmqBroker``
    does (same names, durability and arguments, so either may declare first)."""
    for name in sorted(set(queue_names)):
        arguments: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(name)}
        channel.queue_declare(name, durable=True, arguments=arguments)
        channel.queue_declare(dq_name(name), durable=True, arguments=arguments)
        channel.queue_declare(xq_name(name), durable=True, arguments={"x-message-ttl": DEAD_MESSAGE_TTL})
