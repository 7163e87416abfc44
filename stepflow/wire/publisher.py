"""Publishing with pipelined broker confirms.

``ConfirmingPublisher.publish_many`` writes a batch of messages without waiting between them,
then waits once for the broker's confirms (``basic.ack``/``basic.nack``, single or
``multiple``) and returns one outcome per message: True only for a message the broker
acknowledged (and, when published ``mandatory``, did not return as unroutable). Everything
else (nacked, returned, not confirmed before the timeout, or cut off by a channel or
connection failure) is False: the caller keeps it for a later attempt (the outbox and the
clock for job orders, the 5 s retry loop for the bridge). Duplicates are harmless; losses
are not possible through this path.

One connection and confirm-mode channel per thread (pika connections are not thread-safe),
kept open between calls: no connection or channel setup per message. A call first services
the connection (heartbeats, a close by the broker while idle) and reconnects before writing
anything if it was lost; a failure after writing drops the connection, so the next call
starts on a fresh one. ``declare`` runs on every new channel (idempotent declarations).

pika's ``BlockingChannel`` waits for each confirm inside ``basic_publish`` once confirm mode
is on, so confirm mode is switched on and messages are written through the channel's
asynchronous implementation (``BlockingChannel._impl``, a ``pika.channel.Channel``) while the
``BlockingConnection`` drives the I/O: one round trip per batch instead of one per message.

``publish`` (one message, raises ``NotConfirmed``) and ``publish_orders`` (job ids confirmed,
in order) keep their former contracts on top of ``publish_many``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from stepflow.wire.orders import Submission
from stepflow.wire.topology import JOB_SUBMIT, declare_publishing

log = structlog.get_logger(__name__)


class NotConfirmed(pika.exceptions.AMQPError):
    """The broker did not acknowledge a message (nacked, returned, timed out or cut off)."""


PUBLISH_ERRORS = (pika.exceptions.AMQPError, OSError)

CONFIRM_TIMEOUT = 30.0


@dataclass(frozen=True)
class Outgoing:
    """One message to publish. ``mandatory`` ones need ``properties.message_id`` (to tell
    which message the broker returned)."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties | None = None
    mandatory: bool = False


def _noop() -> None:
    pass


class _Link:
    """A connection and its confirm-mode channel, used by one thread only."""

    def __init__(self, parameters: pika.URLParameters, declare: Callable[[BlockingChannel], None]) -> None:
        self.connection = pika.BlockingConnection(parameters)
        try:
            self.channel = self.connection.channel()
            declare(self.channel)
            self._impl = self.channel._impl  # the asynchronous channel under BlockingChannel
            self._unconfirmed: dict[int, int] = {}  # delivery tag -> index in the batch, in tag order
            self._outcomes: list[bool] = []
            self._returned: set[str] = set()
            self._last_tag = 0
            self._selected = False
            self._impl.add_on_close_callback(lambda *_: self._wake())
            self._impl.add_on_return_callback(self._on_return)
            self._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select_ok)
            self._wait(lambda: self._selected, CONFIRM_TIMEOUT)
            if not self._selected:
                raise NotConfirmed("confirm mode was not switched on")
        except BaseException:
            self.close()
            raise

    @property
    def is_usable(self) -> bool:
        return self.connection.is_open and self.channel.is_open

    def _wake(self) -> None:
        """Make ``process_data_events`` return: a 0-delay timer is a ready event."""
        try:
            self.connection.call_later(0, _noop)
        except (ValueError, pika.exceptions.AMQPError):  # the connection is closing: nothing waits
            pass

    def _on_select_ok(self, _frame: Any) -> None:
        self._selected = True
        self._wake()

    def _on_return(self, _channel: Any, _method: Any, properties: pika.BasicProperties, _body: bytes) -> None:
        # A basic.return always precedes the basic.ack of the same message.
        if properties.message_id:
            self._returned.add(properties.message_id)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, Basic.Ack)
        if method.multiple:
            tags = list(itertools.takewhile(lambda tag: tag <= method.delivery_tag, self._unconfirmed))
        else:
            tags = [method.delivery_tag] if method.delivery_tag in self._unconfirmed else []
        for tag in tags:
            self._outcomes[self._unconfirmed.pop(tag)] = acked
        if not self._unconfirmed:
            self._wake()

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and self.channel.is_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.connection.process_data_events(time_limit=remaining)

    def check(self) -> None:
        """Service the connection; raises if it was lost while idle."""
        if self.is_usable:
            self.connection.process_data_events(time_limit=0)
        if not self.is_usable:
            raise pika.exceptions.ChannelClosed(0, "closed while idle")

    def publish_many(self, messages: Sequence[Outgoing], timeout: float) -> tuple[list[bool], bool]:
        """Outcomes, and whether the link is still healthy."""
        self._outcomes = [False] * len(messages)
        self._unconfirmed = {}
        self._returned = set()
        healthy = True
        try:
            for index, message in enumerate(messages):
                self._impl.basic_publish(
                    message.exchange, message.routing_key, message.body, message.properties, message.mandatory
                )
                self._last_tag += 1
                self._unconfirmed[self._last_tag] = index
            self._wait(lambda: not self._unconfirmed, timeout)
        except PUBLISH_ERRORS as error:
            log.warning("publishing failed", error=str(error), unconfirmed=len(self._unconfirmed))
            healthy = False
        if self._unconfirmed or not self.is_usable:
            healthy = False  # late confirms on this channel must not be mistaken for the next batch's
        if self._returned:
            for index, message in enumerate(messages):
                if message.properties is not None and message.properties.message_id in self._returned:
                    self._outcomes[index] = False
        outcomes, self._outcomes, self._unconfirmed = self._outcomes, [], {}
        return outcomes, healthy

    def close(self) -> None:
        if self.connection.is_open:
            try:
                self.connection.close()
            except PUBLISH_ERRORS:
                pass


class ConfirmingPublisher:
    """Publishes batches with pipelined confirms; see the module docstring for the contract."""

    def __init__(
        self,
        url: str,
        declare: Callable[[BlockingChannel], None] = declare_publishing,
        *,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        self._parameters = pika.URLParameters(url)
        self._declare = declare
        self._confirm_timeout = confirm_timeout
        self._local = threading.local()

    def _link(self) -> _Link:
        link: _Link | None = getattr(self._local, "link", None)
        if link is not None:
            try:
                link.check()
                return link
            except PUBLISH_ERRORS as error:
                log.info("publisher connection lost while idle, reconnecting", error=str(error))
                self.close()
        link = _Link(self._parameters, self._declare)
        self._local.link = link
        return link

    def connect(self) -> bool:
        """Open this thread's connection now (running ``declare``); False if that failed."""
        try:
            self._link()
            return True
        except PUBLISH_ERRORS as error:
            log.warning("publisher cannot connect", error=str(error))
            return False

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        """Publish ``messages`` pipelined; True for each one the broker confirmed.

        Never raises for a broker failure: what was not confirmed is False (all of them when
        no connection could be made).
        """
        if not messages:
            return []
        try:
            link = self._link()
        except PUBLISH_ERRORS as error:
            log.warning("publisher cannot connect", error=str(error))
            return [False] * len(messages)
        outcomes, healthy = link.publish_many(messages, self._confirm_timeout)
        if not healthy:
            self.close()
        return outcomes

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties | None = None,
    ) -> None:
        """Publish one message; raises ``NotConfirmed`` (a pika error) unless confirmed."""
        self.send(Outgoing(exchange, routing_key, body, properties))

    def send(self, message: Outgoing) -> None:
        """Publish one message; raises ``NotConfirmed`` (a pika error) unless confirmed."""
        (confirmed,) = self.publish_many([message])
        if not confirmed:
            raise NotConfirmed(f"not confirmed: {message.exchange!r} {message.routing_key!r}")

    def close(self) -> None:
        """Close this thread's connection (the next publish reconnects)."""
        link: _Link | None = getattr(self._local, "link", None)
        self._local.link = None
        if link is not None:
            link.close()


def publish_orders(publisher: ConfirmingPublisher, orders: Sequence[Submission]) -> list[int]:
    """Publish job orders on ``job_submit`` (persistent, priority 0..100), pipelined.

    Returns the ids confirmed by the broker, in order; the others stay undispatched and the
    clock sends them again.
    """
    outgoing = [
        Outgoing(
            JOB_SUBMIT,
            submission.queue,
            submission.order.body(),
            pika.BasicProperties(delivery_mode=2, priority=submission.priority),
        )
        for submission in orders
    ]
    outcomes = publisher.publish_many(outgoing)
    job_ids = [submission.order.job_id for submission in orders]
    confirmed = [job_id for job_id, ok in zip(job_ids, outcomes, strict=True) if ok]
    if len(confirmed) < len(orders):
        missed = [job_id for job_id, ok in zip(job_ids, outcomes, strict=True) if not ok]
        log.warning("job orders not confirmed", job_ids=missed[:20], count=len(missed))
    return confirmed
