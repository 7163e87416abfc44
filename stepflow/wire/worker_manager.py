"""Messages to the live worker manager (engine.md §10): create or delete a live job's worker.

They go to ``job_submit`` with routing key ``job_worker_manager``, persistent, priority = the
step id, as outbox messages (``stepflow.wire.direct_messaging.publish_direct_message``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stepflow.wire.orders import step_priority
from stepflow.wire.topology import JOB_SUBMIT, JOB_WORKER_MANAGER

MANAGER_PARAMETERS = frozenset({"step_id", "namespace", "worker", "ports", "direct_messaging_queue_name"})
"""The job parameters the manager reads; the others are the worker's business."""


def worker_manager_message(
    job_id: int, step_id: int, parameters: Sequence[Mapping[str, Any]], action: str
) -> dict[str, Any]:
    """``create`` or ``delete`` the worker of a live job: ``{"job_id", "parameters": [the
    manager's parameters…, {"id": "action", …}], "type": action}``."""
    body = {
        "job_id": job_id,
        "parameters": [
            *(parameter for parameter in parameters if parameter.get("id") in MANAGER_PARAMETERS),
            {"id": "action", "type": "string", "value": action},
        ],
        "type": action,
    }
    return {
        "exchange": JOB_SUBMIT,
        "routing_key": JOB_WORKER_MANAGER,
        "priority": step_priority(step_id),
        "body": body,
    }
