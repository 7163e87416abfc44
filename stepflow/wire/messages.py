"""Worker → StepFlow message types (mcai-protocol.md §6), validated with msgspec.

Unknown fields are ignored (workers add ``system_info``, ``cpu_time`` …); the fields StepFlow
acts on are typed, so a malformed message fails to decode and is dead-lettered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

JobId = Annotated[int, msgspec.Meta(ge=0)]


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


class JobOrder(msgspec.Struct):
    """A job order (what ``job_queue_not_found`` delivers back to us)."""

    job_id: JobId
    parameters: list[dict[str, Any]] = []


MESSAGE_TYPES: dict[str, type[msgspec.Struct]] = {
    "job_completed": JobCompleted,
    "job_error": JobError,
    "job_progression": JobProgression,
    "job_stopped": JobStopped,
    "job_queue_not_found": JobOrder,
}
"""Queue name → the type its bodies decode into."""


def decode(queue: str, body: bytes) -> msgspec.Struct:
    """Decode and validate one body; raises ``msgspec.DecodeError``/``ValidationError``."""
    return msgspec.json.decode(body, type=MESSAGE_TYPES[queue])
