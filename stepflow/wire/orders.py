"""Job orders as workers receive them (mcai-protocol.md §4, ours.md §4.2).

One ``JobOrder`` is the body both ways: StepFlow publishes it on ``job_submit``, and
``job_queue_not_found`` hands the same body back when no worker queue took it. Where it goes
(the worker queue, the priority) is the ``Submission`` around it, carried by the message's
routing key and properties, never by the body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

MAX_PRIORITY = 100

JobId = Annotated[int, msgspec.Meta(ge=0)]


class JobOrder(msgspec.Struct, frozen=True):
    """An order's body: ``{"job_id", "parameters"}``."""

    job_id: JobId
    parameters: list[dict[str, Any]] = []

    def body(self) -> bytes:
        """The body a worker receives: ``filter`` parameters never reach a worker."""
        return msgspec.json.encode({"job_id": self.job_id, "parameters": sendable(self.parameters)})


@dataclass(frozen=True, slots=True)
class Submission:
    """An order on its way to the worker queue ``queue`` (= the step name), at the priority of
    step ``step_id``."""

    queue: str
    step_id: int
    order: JobOrder

    @property
    def priority(self) -> int:
        return step_priority(self.step_id)


def step_priority(step_id: int) -> int:
    """The priority of a step's messages: its id clamped to what the queues accept (0..100)."""
    return max(0, min(step_id, MAX_PRIORITY))


def sendable(parameters: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [parameter for parameter in parameters if parameter.get("type") != "filter"]
