"""Publishing with broker confirms.

``ConfirmingPublisher`` keeps one connection per thread (pika connections are not
thread-safe) and reconnects after a failure. ``publish_orders`` returns the ids the broker
confirmed, so the caller marks exactly those dispatched; the others stay in the outbox for
the clock. Confirms are waited for one at a time here; a pipelined implementation can take
its place behind the same two calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from stepflow.wire.orders import JobOrder
from stepflow.wire.topology import JOB_SUBMIT, declare_publishing

log = structlog.get_logger(__name__)

PUBLISH_ERRORS = (pika.exceptions.AMQPError, OSError)


class ConfirmingPublisher:
    """Publishes messages and returns only once the broker confirmed each one.

    ``declare`` runs on every new channel (idempotent topology declarations).
    """

    def __init__(self, url: str, declare: Callable[[BlockingChannel], None] = declare_publishing) -> None:
        self._parameters = pika.URLParameters(url)
        self._declare = declare
        self._local = threading.local()

    def _channel(self) -> BlockingChannel:
        channel: BlockingChannel | None = getattr(self._local, "channel", None)
        if channel is None or channel.is_closed:
            connection = pika.BlockingConnection(self._parameters)
            channel = connection.channel()
            channel.confirm_delivery()
            self._declare(channel)
            self._local.connection = connection
            self._local.channel = channel
        return channel

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties | None = None,
    ) -> None:
        """Publish one message; raises a pika or OS error when it was not confirmed."""
        try:
            self._channel().basic_publish(exchange, routing_key, body, properties)
        except PUBLISH_ERRORS:
            self.close()
            raise

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        self._local.channel = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except PUBLISH_ERRORS:
                pass


def publish_orders(publisher: ConfirmingPublisher, orders: Sequence[JobOrder]) -> list[int]:
    """Publish job orders on ``job_submit`` (persistent, priority 0..100).

    Returns the ids confirmed by the broker, in order; stops at the first failure (the rest
    stays undispatched and the clock sends it again).
    """
    confirmed: list[int] = []
    for order in orders:
        properties = pika.BasicProperties(delivery_mode=2, priority=order.priority)
        try:
            publisher.publish(JOB_SUBMIT, order.queue, order.body(), properties)
        except PUBLISH_ERRORS as error:
            log.warning("job order not confirmed", job_id=order.job_id, queue=order.queue, error=str(error))
            break
        confirmed.append(order.job_id)
    return confirmed
