"""The bridge: consumes the workers' answers and hands each one to an actor.

For every delivery: decode and validate (msgspec); hand the validated payload to the
handler of its queue (an actor's ``send``, which waits for the broker's confirm); then ack.
A message that can never succeed (undecodable, invalid, redelivered too often) goes to our
dead-letter queue with the reason, then is acked; expected noise (a ``job_error`` without
``job_id``) is acked with a log line; a transient failure (the actor queue unreachable) is
rejected, which the original's queue arguments turn into a retry in 5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from stepflow.wire import messages
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import JOB_ERROR, declare_bridge_topology

log = structlog.get_logger(__name__)

Handler = Callable[[dict[str, Any]], Any]

MAX_REDELIVERIES = 10
PREFETCH = 100
RECONNECT_DELAY = 2.0


def death_count(properties: BasicProperties, queue: str) -> int:
    """How many times this message went around the 5 s retry loop of ``queue``."""
    deaths = (properties.headers or {}).get("x-death") or []
    return sum(int(death.get("count", 0)) for death in deaths if death.get("queue") == queue)


class Bridge:
    """Consumes ``handlers``' queues; one handler (an actor's ``send``) per queue."""

    def __init__(self, url: str, handlers: Mapping[str, Handler], dead_letters: ConfirmingPublisher) -> None:
        self._parameters = pika.URLParameters(url)
        self._handlers = dict(handlers)
        self._dead_letters = dead_letters
        self._connection: pika.BlockingConnection | None = None
        self._stopping = False
        self._consumer_queues: dict[str, str] = {}

    def handle(self, queue: str, body: bytes, properties: BasicProperties) -> bool:
        """Decide one delivery; True = ack, False = reject (retry in 5 s)."""
        try:
            message = messages.decode(queue, body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            dead_letter(self._dead_letters, body, f"invalid message: {error}", queue)
            return True
        if queue == JOB_ERROR and getattr(message, "job_id", None) is None:
            log.info("job_error without job_id acked", queue=queue, body=body[:500].decode(errors="replace"))
            return True
        if death_count(properties, queue) > MAX_REDELIVERIES:
            dead_letter(self._dead_letters, body, f"redelivered more than {MAX_REDELIVERIES} times", queue)
            return True
        try:
            self._handlers[queue](msgspec.to_builtins(message))
        except Exception as error:  # the actor broker is unreachable: retry the message later
            log.warning("handing over failed, retrying in 5 s", queue=queue, error=str(error))
            return False
        return True

    def _on_delivery(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        queue = self._consumer_queues[method.consumer_tag]
        if self.handle(queue, body, properties):
            channel.basic_ack(method.delivery_tag)
        else:
            channel.basic_reject(method.delivery_tag, requeue=False)

    def run_once(self) -> None:
        """Connect, declare, consume until the connection drops or ``stop`` is called."""
        self._connection = pika.BlockingConnection(self._parameters)
        channel = self._connection.channel()
        declare_bridge_topology(channel)
        channel.basic_qos(prefetch_count=PREFETCH)
        self._consumer_queues = {}
        for queue in self._handlers:
            tag = channel.basic_consume(queue, self._on_delivery)
            self._consumer_queues[tag] = queue
        log.info("bridge consuming", queues=sorted(self._handlers))
        while not self._stopping:
            self._connection.process_data_events(time_limit=1)
        self._connection.close()

    def run(self) -> None:
        """Consume forever, reconnecting after broker failures."""
        while not self._stopping:
            try:
                self.run_once()
            except (pika.exceptions.AMQPError, OSError) as error:
                log.warning("bridge connection lost, reconnecting", error=str(error))
                time.sleep(RECONNECT_DELAY)

    def stop(self) -> None:
        self._stopping = True
