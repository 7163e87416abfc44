"""Orders to running workers through the ``direct_messaging`` headers exchange (mcai-protocol.md §5).

A message carries exactly one targeting header (with ``x-match: any`` a second one would widen
the audience): ``job_type`` reaches every worker of a queue, ``instance_id`` one worker.

The builders return outbox messages ``{"headers", "body"}``; a message that goes elsewhere
(the live worker manager's, ``stepflow.wire.worker_manager``) also names its ``exchange``,
``routing_key`` and ``priority``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import pika

from stepflow.wire.orders import sendable
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import DIRECT_MESSAGING


def status_request() -> dict[str, Any]:
    """Ask every worker for its status: each answers ``worker_status`` (mcai-protocol.md §5.2)."""
    return {"headers": {"broadcast": "true"}, "body": {"type": "status"}}


def add_to_black_list(job_id: int, queue: str) -> dict[str, Any]:
    """Cancel a job before it starts: the workers of ``queue`` drop it silently."""
    return {"headers": {"job_type": queue}, "body": {"type": "add_to_black_list", "job_id": job_id}}


def _process_order(order: str, job_id: int, parameters: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {"type": order, "job_id": job_id, "parameters": sendable(parameters)}


def stop_process(
    job_id: int, queue: str, parameters: list[Mapping[str, Any]], instance_id: str | None = None
) -> dict[str, Any]:
    """Stop a running job; the worker running it answers ``job_stopped``. Addressed to that
    worker's ``instance_id`` when known, else to every worker of ``queue`` (the others answer
    an error about another current job, which StepFlow ignores)."""
    headers = {"instance_id": instance_id} if instance_id else {"job_type": queue}
    return {"headers": headers, "body": _process_order("stop_process", job_id, parameters)}


def live_process_order(
    order: str, job_id: int, parameters: list[Mapping[str, Any]], instance_id: str
) -> dict[str, Any]:
    """``init_process``, ``start_process`` or ``update_process`` for the worker of a live job,
    addressed by its full ``instance_id`` (the SDK binds the full id; the original's
    12-character cut made these unroutable, mcai-protocol.md §10.10)."""
    return {"headers": {"instance_id": instance_id}, "body": _process_order(order, job_id, parameters)}


def publish_direct_message(publisher: ConfirmingPublisher, message: Mapping[str, Any]) -> None:
    """Publish one outbox message built above or by ``worker_manager``; waits for the confirm."""
    properties = pika.BasicProperties(
        headers=dict(message.get("headers") or {}), delivery_mode=2, priority=message.get("priority")
    )
    exchange, routing_key = message.get("exchange", DIRECT_MESSAGING), message.get("routing_key", "")
    publisher.publish(exchange, routing_key, msgspec.json.encode(message["body"]), properties)
