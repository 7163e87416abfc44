"""Our dead-letter queue: permanent failures are published there with the reason, then acked.

StepFlow keeps the original's arguments on its consumer queues, where a reject means "retry
in 5 s", so a message that can never succeed is moved here explicitly (ours.md §3.8).
"""

from __future__ import annotations

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import DEAD_LETTERS

log = structlog.get_logger(__name__)


def declare_dead_letters(channel: BlockingChannel) -> None:
    channel.queue_declare(DEAD_LETTERS, durable=True)


def dead_letter(publisher: ConfirmingPublisher, body: bytes, reason: str, source_queue: str) -> None:
    """Publish ``body`` to ``stepflow.dead_letters`` and wait for the confirm."""
    headers = {"x-stepflow-reason": reason, "x-stepflow-source-queue": source_queue}
    publisher.publish("", DEAD_LETTERS, body, pika.BasicProperties(delivery_mode=2, headers=headers))
    log.warning("dead-lettered", reason=reason, source_queue=source_queue)
