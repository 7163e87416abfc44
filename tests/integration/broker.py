"""Reading what StepFlow published, from queues a test binds for itself."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika


class Capture:
    """A private queue bound to ``exchange`` for ``routing_keys``; ``take`` reads messages."""

    def __init__(self, url: str, exchange: str, routing_keys: list[str], *, declare_exchange: bool = False) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        if declare_exchange:
            from stepflow.wire.topology import declare_job_submit

            declare_job_submit(self.channel)
        self.queue = f"test_capture_{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.queue, exclusive=True, arguments={"x-max-priority": 100})
        for key in routing_keys:
            self.channel.queue_bind(self.queue, exchange, routing_key=key)

    def take(self, count: int, timeout: float = 10.0) -> list[tuple[pika.BasicProperties, dict[str, Any]]]:
        messages: list[tuple[pika.BasicProperties, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                self.connection.sleep(0.05)
                continue
            messages.append((properties, json.loads(body)))
        return messages

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def drain(url: str, queue: str, timeout: float = 5.0, expect: int = 1) -> list[tuple[pika.BasicProperties, bytes]]:
    """Read (and ack) at least ``expect`` messages of an existing queue, or what came in ``timeout``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    found: list[tuple[pika.BasicProperties, bytes]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < expect:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.sleep(0.05)
            continue
        found.append((properties, body))
    connection.close()
    return found


def delete_actor_queues(url: str, queue: str) -> None:
    """Remove a test's Dramatiq queue and its delay and dead-letter queues."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    connection.close()
