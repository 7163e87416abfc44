"""Job orders as workers receive them (mcai-protocol.md §4, ours.md §4.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

MAX_PRIORITY = 100


@dataclass(frozen=True, slots=True)
class JobOrder:
    """One order: ``job_id``, the worker queue (= step name) and the step id (priority)."""

    job_id: int
    queue: str
    step_id: int
    parameters: list[dict[str, Any]]

    @property
    def priority(self) -> int:
        return step_priority(self.step_id)

    def body(self) -> bytes:
        """``{"job_id", "parameters"}``; ``filter`` parameters never reach a worker."""
        return msgspec.json.encode({"job_id": self.job_id, "parameters": sendable(self.parameters)})


def step_priority(step_id: int) -> int:
    """The priority of a step's messages: its id clamped to what the queues accept (0..100)."""
    return max(0, min(step_id, MAX_PRIORITY))


def sendable(parameters: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [parameter for parameter in parameters if parameter.get("type") != "filter"]
