"""JSON views of worker definitions, live workers and worker statuses (api.md §8.7–§8.9)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stepflow.api.views import naive, utc
from stepflow.models import LiveWorker, WorkerDefinition, WorkerStatus
from stepflow.workers import TERMINATED


def worker_definition_view(definition: WorkerDefinition) -> dict[str, Any]:
    """``created_at`` is ``inserted_at``, as in the original."""
    return {
        "id": definition.id,
        "queue_name": definition.queue_name,
        "label": definition.label,
        "short_description": definition.short_description,
        "description": definition.description,
        "version": definition.version,
        "parameters": definition.parameters,
        "created_at": naive(definition.inserted_at),
    }


def live_worker_view(worker: LiveWorker) -> dict[str, Any]:
    """``job_id`` is not exposed; the dates are UTC with ``Z``."""
    return {
        "id": worker.id,
        "ips": list(worker.ips),
        "ports": list(worker.ports),
        "instance_id": worker.instance_id,
        "direct_messaging_queue_name": worker.direct_messaging_queue_name,
        "creation_date": utc(worker.creation_date),
        "termination_date": utc(worker.termination_date),
        "inserted_at": naive(worker.inserted_at),
    }


LOST = "Lost"
MISSED_BROADCASTS = 3
"""Status broadcasts a worker may leave unanswered before it is shown as lost."""


def lost_before(now: datetime, status_interval: float) -> datetime:
    """Workers whose last status is older than this are lost (killed, or cut off)."""
    return now - timedelta(seconds=MISSED_BROADCASTS * status_interval)


def worker_status_view(status: WorkerStatus, lost_since: datetime) -> dict[str, Any]:
    """The last status a worker reported, as in the original, plus ``last_seen_at``. A worker
    that stopped answering the status broadcasts (silent since before ``lost_since``, not
    terminated) shows the activity ``Lost``."""
    lost = status.activity != TERMINATED and status.updated_at < lost_since
    return {
        "activity": LOST if lost else status.activity,
        "current_job": status.current_job,
        "description": status.description,
        "direct_messaging_queue_name": status.direct_messaging_queue_name,
        "instance_id": status.instance_id,
        "label": status.label,
        "queue_name": status.queue_name,
        "sdk_version": status.sdk_version,
        "short_description": status.short_description,
        "system_info": status.system_info,
        "version": status.version,
        "last_seen_at": utc(status.updated_at),
    }
