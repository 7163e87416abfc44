"""Worker → StepFlow message types (mcai-protocol.md §6), validated with msgspec.

Unknown fields are ignored (workers add ``system_info``, ``cpu_time`` …); the fields StepFlow
acts on are typed, so a malformed message fails to decode and is dead-lettered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from stepflow.wire.orders import JobId, JobOrder


class Parameter(msgspec.Struct):
    id: str
    value: Any = None
    type: str | None = None


class JobCompleted(msgspec.Struct):
    job_id: JobId
    status: str = "completed"
    destination_paths: list[str] = []
    parameters: list[dict[str, Any]] = []
    datetime: str | None = None
    execution_duration: float | None = None


class JobError(msgspec.Struct):
    """``job_error``: the SDK 2.x shape carries the message in ``parameters[id=message]``;
    the old shape in ``error``; a message without ``job_id`` is an unparsable order."""

    job_id: JobId | None = None
    status: str = "error"
    parameters: list[Parameter] = []
    error: Any = None
    message: str | None = None
    datetime: str | None = None

    def description(self) -> str:
        for parameter in self.parameters:
            if parameter.id == "message":
                return (
                    parameter.value
                    if isinstance(parameter.value, str)
                    else msgspec.json.encode(parameter.value).decode()
                )
        if self.error is not None:
            return self.error if isinstance(self.error, str) else msgspec.json.encode(self.error).decode()
        return self.message or ""


class JobProgression(msgspec.Struct):
    job_id: JobId
    progression: Annotated[int, msgspec.Meta(ge=0, le=100)]
    datetime: str | None = None
    docker_container_id: str = ""


_FRACTION = re.compile(r"(\.\d{6})\d+")


def worker_datetime(text: str | None) -> datetime:
    """A worker timestamp (RFC 3339, nanoseconds, ``Z``) as an aware datetime; now if absent
    or unreadable (the timestamp informs, it never decides)."""
    if text:
        try:
            return datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


class JobStopped(msgspec.Struct):
    job_id: JobId
    status: str = "stopped"


class WorkerDescription(msgspec.Struct):
    """What a worker says it is (§3): ``worker_discovery``, ``worker_created`` and (from an SDK)
    ``worker_terminated`` bodies. SDK 2.x sends no ``short_description``; ``parameters`` is a
    JSON Schema (SDK 1.x/2.x) or the old list of parameter descriptions. ``system_info`` is kept
    (older SDKs identify themselves by its ``docker_container_id``)."""

    queue_name: str
    label: str
    version: str
    description: str
    short_description: str | None = None
    parameters: Any = None
    sdk_version: str | None = None
    instance_id: str | None = None
    direct_messaging_queue_name: str | None = None
    name: str | None = None
    license: str | None = None
    system_info: dict[str, Any] | None = None


class WorkerState(msgspec.Struct):
    """The ``worker`` of a ``worker_status``: a description plus ``activity``, every field
    optional (an older SDK sends little more than ``system_info.docker_container_id``)."""

    activity: str | None = None
    instance_id: str | None = None
    queue_name: str | None = None
    label: str | None = None
    version: str | None = None
    description: str | None = None
    short_description: str | None = None
    direct_messaging_queue_name: str | None = None
    sdk_version: str | None = None
    system_info: dict[str, Any] | None = None


class WorkerStatusMessage(msgspec.Struct):
    """``worker_status``: ``{"type": "status", "job": null | {...}, "worker": {...}}``."""

    worker: WorkerState
    type: str = "status"
    job: dict[str, Any] | None = None


class WorkerJobStatus(msgspec.Struct):
    """``worker_initialized`` / ``worker_started`` / ``worker_updated``: a live job's state
    (``ready_to_start``, ``processing``…)."""

    job_id: JobId
    status: str


UNROUTABLE = Any
"""Anything nobody was bound for: any JSON, logged as it came."""

MESSAGE_TYPES: dict[str, Any] = {
    "job_completed": JobCompleted,
    "job_error": JobError,
    "job_progression": JobProgression,
    "job_stopped": JobStopped,
    "job_queue_not_found": JobOrder,
    "worker_discovery": WorkerDescription,
    "worker_created": WorkerDescription,
    # An SDK description (by instance_id) or a live job's {"job_id"} (engine.md §10): the actor
    # tells them apart and dead-letters what is neither.
    "worker_terminated": dict[str, Any],
    "worker_status": WorkerStatusMessage,
    "worker_initialized": WorkerJobStatus,
    "worker_started": WorkerJobStatus,
    "worker_updated": WorkerJobStatus,
    "job_response_not_found": UNROUTABLE,
    "worker_response_not_found": UNROUTABLE,
    "direct_messaging_not_found": UNROUTABLE,
}
"""Queue name → the type its bodies decode into."""


def decode(queue: str, body: bytes) -> Any:
    """Decode and validate one body; raises ``msgspec.DecodeError``/``ValidationError``."""
    return msgspec.json.decode(body, type=MESSAGE_TYPES[queue])
