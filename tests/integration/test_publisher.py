"""The pipelined-confirm publisher on a real broker: confirms, nacks, returns, reconnection."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pika
import pytest

from stepflow.wire.orders import JobOrder, Submission
from stepflow.wire.publisher import ConfirmingPublisher, NotConfirmed, Outgoing, publish_orders
from stepflow.wire.topology import JOB_SUBMIT
from tests.integration.broker import Capture


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    name = f"test_publisher_{uuid.uuid4().hex[:8]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_delete(name)
    connection.close()


def message_count(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    count = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return count


def persistent(message_id: str | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, message_id=message_id)


def test_many_messages_are_confirmed_pipelined(amqp_url: str, queue: str) -> None:
    publisher = ConfirmingPublisher(amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True))
    outgoing = [Outgoing("", queue, f"{index}".encode(), persistent()) for index in range(2000)]
    assert publisher.publish_many(outgoing) == [True] * 2000
    assert publisher.publish_many(outgoing[:10]) == [True] * 10, "the same channel goes on (tags continue)"
    assert message_count(amqp_url, queue) == 2010
    publisher.close()


def test_nacked_messages_are_reported_unconfirmed(amqp_url: str, queue: str) -> None:
    # A full queue with reject-publish makes the broker nack what does not fit.
    arguments = {"x-max-length": 2, "x-overflow": "reject-publish"}
    publisher = ConfirmingPublisher(
        amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True, arguments=arguments)
    )
    outcomes = publisher.publish_many([Outgoing("", queue, b"x", persistent()) for _ in range(5)])
    assert outcomes == [True, True, False, False, False]
    publisher.close()


def test_returned_mandatory_messages_are_reported_unconfirmed(amqp_url: str, queue: str) -> None:
    publisher = ConfirmingPublisher(amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True))
    outcomes = publisher.publish_many(
        [
            Outgoing("", queue, b"a", persistent("a"), mandatory=True),
            Outgoing("", f"{queue}_missing", b"b", persistent("b"), mandatory=True),
            Outgoing("", queue, b"c", persistent("c"), mandatory=True),
        ]
    )
    assert outcomes == [True, False, True]
    publisher.close()


def test_a_missing_exchange_confirms_nothing_and_the_next_call_reconnects(amqp_url: str, queue: str) -> None:
    publisher = ConfirmingPublisher(amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True))
    assert publisher.publish_many([Outgoing("no_such_exchange", queue, b"x")] * 3) == [False] * 3
    with pytest.raises(NotConfirmed):
        publisher.publish("no_such_exchange", queue, b"x")
    assert publisher.publish_many([Outgoing("", queue, b"y")] * 3) == [True] * 3
    assert message_count(amqp_url, queue) == 3
    publisher.close()


def test_a_connection_lost_while_idle_is_replaced_before_publishing(amqp_url: str, queue: str) -> None:
    publisher = ConfirmingPublisher(amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True))
    publisher.publish("", queue, b"first")
    publisher._local.link.connection.close()  # as if the broker had dropped it
    publisher.publish("", queue, b"second")
    assert message_count(amqp_url, queue) == 2
    publisher.close()


def test_an_unreachable_broker_confirms_nothing() -> None:
    publisher = ConfirmingPublisher("amqp://guest:guest@127.0.0.1:1/%2F")
    assert publisher.publish_many([Outgoing("", "anything", b"x")] * 2) == [False, False]


def test_each_thread_publishes_on_its_own_connection(amqp_url: str, queue: str) -> None:
    publisher = ConfirmingPublisher(amqp_url, declare=lambda channel: channel.queue_declare(queue, durable=True))
    results: list[list[bool]] = []

    def run() -> None:
        results.append(publisher.publish_many([Outgoing("", queue, b"x")] * 200))
        publisher.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [[True] * 200] * 4
    assert message_count(amqp_url, queue) == 800


def test_publish_orders_returns_the_confirmed_ids_in_order(amqp_url: str) -> None:
    capture = Capture(amqp_url, JOB_SUBMIT, ["job_test_publisher"], declare_exchange=True)
    publisher = ConfirmingPublisher(amqp_url)
    orders = [Submission("job_test_publisher", 0, JobOrder(job_id, [])) for job_id in range(1, 301)]
    assert publish_orders(publisher, orders) == list(range(1, 301))
    taken = capture.take(300)
    assert [body["job_id"] for _, body in taken] == list(range(1, 301))
    assert all(properties.delivery_mode == 2 for properties, _ in taken)
    capture.close()
    publisher.close()
