"""What worker messages store: definitions, live workers and statuses, as idempotent upserts.

Each table has a pure function turning a message into column values (raising
``InvalidWorkerPayload`` with Ecto-style field errors), an ``INSERT … ON CONFLICT`` statement
the async web and the sync actors both execute (ours.md A4), and a sync helper taking a
``Session`` for the actors. Nothing here talks HTTP or AMQP, and nothing commits.

- ``worker_discovery`` (SDK 1.x or 2.x description) → ``upsert_worker_definition``;
- ``worker_status`` (``{"job", "type", "worker"}``) → ``upsert_worker_status``;
- ``worker_terminated`` (description body with ``instance_id``) → ``terminate_worker_status``;
- live-job replies → ``upsert_live_worker`` / ``terminate_live_workers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session

from stepflow.changes import WORKERS_STATUS, Change, record
from stepflow.models import LiveWorker, WorkerDefinition, WorkerStatus
from stepflow.models.base import utcnow

BLANK = "can't be blank"
INVALID = "is invalid"

DEFINITION_TEXT_FIELDS = ("queue_name", "label", "version", "short_description", "description")
STATUS_TEXT_FIELDS = (
    "activity",
    "description",
    "direct_messaging_queue_name",
    "label",
    "queue_name",
    "sdk_version",
    "short_description",
    "version",
)
CURRENT_JOB_FIELDS = ("execution_duration", "job_id", "status")
LIVE_WORKER_FIELDS = frozenset({"ips", "ports", "instance_id", "creation_date", "termination_date"})
TERMINATED = "Terminated"


class InvalidWorkerPayload(ValueError):
    """A worker message or API body that cannot be stored; ``errors`` is body kind B."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _sdk_major(sdk_version: object) -> int:
    if not isinstance(sdk_version, str):
        return 0
    head = sdk_version.strip().lstrip("v").split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _is_parameters(value: object) -> bool:
    """A JSON Schema object, or the old list of parameter descriptions."""
    return isinstance(value, dict) or (isinstance(value, list) and all(isinstance(entry, dict) for entry in value))


def worker_definition_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Columns of a worker definition from a ``POST /worker_definitions`` body or a
    ``worker_discovery`` description.

    ``queue_name``, ``label``, ``version``, ``description`` and ``short_description`` are
    required, except ``short_description`` when ``sdk_version`` is 2.x or later (the SDK 2.x
    description has none). ``parameters`` defaults to ``{}``. Other keys (``name``,
    ``license``, ``instance_id``…) are ignored.
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    optional_short_description = _sdk_major(payload.get("sdk_version")) >= 2
    for field in DEFINITION_TEXT_FIELDS:
        value = payload.get(field)
        if value is not None and not isinstance(value, str):
            errors[field] = [INVALID]
        elif value is None or not value.strip():
            if field == "short_description" and optional_short_description:
                values[field] = ""
            else:
                errors[field] = [BLANK]
        else:
            values[field] = value
    parameters = payload.get("parameters")
    if parameters is None:
        values["parameters"] = {}
    elif _is_parameters(parameters):
        values["parameters"] = parameters
    else:
        errors["parameters"] = [INVALID]
    sdk_version = payload.get("sdk_version")
    if sdk_version is not None and not isinstance(sdk_version, str):
        errors["sdk_version"] = [INVALID]
    else:
        values["sdk_version"] = sdk_version
    if errors:
        raise InvalidWorkerPayload(errors)
    return values


def upsert_worker_definition_statement(values: Mapping[str, Any]) -> Insert:
    """Insert the definition, or refresh the one with the same queue and version; returns its id."""
    statement = insert(WorkerDefinition).values(**values, inserted_at=utcnow())
    refreshed = ("label", "short_description", "description", "parameters", "sdk_version")
    return statement.on_conflict_do_update(
        constraint="uq_worker_definitions_queue_version",
        set_={column: statement.excluded[column] for column in refreshed},
    ).returning(WorkerDefinition.id)


def upsert_worker_definition(session: Session, payload: Mapping[str, Any]) -> int:
    """Store a ``worker_discovery`` description; returns the definition id."""
    return session.execute(upsert_worker_definition_statement(worker_definition_values(payload))).scalar_one()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _current_job(job: object) -> dict[str, Any] | None:
    if not isinstance(job, Mapping) or job.get("job_id") is None:
        return None
    return {field: job.get(field) for field in CURRENT_JOB_FIELDS}


def _description_values(worker: Mapping[str, Any]) -> dict[str, Any]:
    system_info = worker.get("system_info")
    if not isinstance(system_info, Mapping):
        system_info = {}
    instance_id = worker.get("instance_id") or system_info.get("docker_container_id")
    if not isinstance(instance_id, str) or not instance_id:
        raise InvalidWorkerPayload({"instance_id": [BLANK]})
    values: dict[str, Any] = {field: _text(worker.get(field)) for field in STATUS_TEXT_FIELDS}
    values.update(instance_id=instance_id, system_info=dict(system_info))
    return values


def worker_status_values(message: Mapping[str, Any]) -> dict[str, Any]:
    """Columns of a worker status from a ``worker_status`` message ``{"job", "type", "worker"}``.

    ``instance_id`` falls back to ``worker.system_info.docker_container_id``; missing strings
    are ``""``; ``current_job`` keeps ``execution_duration``, ``job_id`` and ``status`` of
    ``job`` (NULL when idle).
    """
    worker = message.get("worker")
    if not isinstance(worker, Mapping):
        raise InvalidWorkerPayload({"worker": [BLANK]})
    values = _description_values(worker)
    values["current_job"] = _current_job(message.get("job"))
    return values


def upsert_worker_status_statement(values: Mapping[str, Any]) -> Insert:
    now = utcnow()
    statement = insert(WorkerStatus).values(**values, inserted_at=now, updated_at=now)
    changed = [column for column in values if column != "instance_id"]
    return statement.on_conflict_do_update(
        index_elements=[WorkerStatus.instance_id],
        set_={**{column: statement.excluded[column] for column in changed}, "updated_at": now},
    ).returning(WorkerStatus.instance_id)


def upsert_worker_status(session: Session, message: Mapping[str, Any]) -> str:
    """Store a ``worker_status`` message; returns the worker's ``instance_id``."""
    instance_id = session.execute(upsert_worker_status_statement(worker_status_values(message))).scalar_one()
    record(session, Change(WORKERS_STATUS))
    return instance_id


def terminate_worker_status(session: Session, description: Mapping[str, Any]) -> str:
    """A ``worker_terminated`` description: ``activity = "Terminated"`` and no current job.

    A worker never seen before gets a row from its description; a known one keeps the rest
    of its last status.
    """
    now = utcnow()
    values = {**_description_values(description), "activity": TERMINATED, "current_job": None}
    statement = insert(WorkerStatus).values(**values, inserted_at=now, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[WorkerStatus.instance_id],
        set_={"activity": TERMINATED, "current_job": None, "updated_at": now},
    ).returning(WorkerStatus.instance_id)
    instance_id = session.execute(statement).scalar_one()
    record(session, Change(WORKERS_STATUS))
    return instance_id


def upsert_live_worker_statement(job_id: int, direct_messaging_queue_name: str, **changes: Any) -> Insert:
    unknown = set(changes) - LIVE_WORKER_FIELDS
    if unknown:
        raise TypeError(f"not live worker fields: {sorted(unknown)}")
    statement = insert(LiveWorker).values(
        job_id=job_id, direct_messaging_queue_name=direct_messaging_queue_name, inserted_at=utcnow(), **changes
    )
    return statement.on_conflict_do_update(
        constraint="uq_live_workers_direct_messaging_queue_name",
        set_={"job_id": statement.excluded.job_id, **{column: statement.excluded[column] for column in changes}},
    ).returning(LiveWorker.id)


def upsert_live_worker(session: Session, job_id: int, direct_messaging_queue_name: str, **changes: Any) -> int:
    """Create the live worker of ``direct_messaging_queue_name`` or set ``changes`` on it
    (``ips``, ``ports``, ``instance_id``, ``creation_date``, ``termination_date``); returns its id."""
    return session.execute(upsert_live_worker_statement(job_id, direct_messaging_queue_name, **changes)).scalar_one()


def terminate_live_workers(
    session: Session, job_id: int | None = None, at: datetime | None = None, *, direct_messaging_queue_name: str = ""
) -> int:
    """Set ``termination_date`` on the job's live workers still running (or, without
    ``job_id``, on the one of ``direct_messaging_queue_name``); returns how many."""
    which = (
        LiveWorker.job_id == job_id
        if job_id is not None
        else LiveWorker.direct_messaging_queue_name == direct_messaging_queue_name
    )
    result = session.execute(
        update(LiveWorker).where(which, LiveWorker.termination_date.is_(None)).values(termination_date=at or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
