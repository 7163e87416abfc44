"""Actors for job answers handed over instead of decided where they arrived.

The bridge decides job answers itself (:mod:`stepflow.orchestration.decisions`). These actors,
one per answer queue (named for it), take one answer each: what bridges of earlier releases
handed over (it may still wait in ``stepflow.jobs`` after an upgrade). Each decides its answer
as a batch of one; one that fails is retried by Dramatiq.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepflow.orchestration.decisions import DECISIONS, decide
from stepflow.resources import Resources


def _one(queue: str) -> Callable[[Resources, dict[str, Any]], None]:
    def actor(resources: Resources, payload: dict[str, Any]) -> None:
        decide(resources, [(queue, payload)])

    actor.__name__ = actor.__qualname__ = queue
    actor.__doc__ = f"One ``{queue}`` answer, decided as a batch of one."
    return actor


ACTORS: dict[str, Callable[..., None]] = {queue: _one(queue) for queue in DECISIONS}
"""The job-answer actors by name (one per answer queue); each takes the process's resources
first (``stepflow.actors.declare``)."""
