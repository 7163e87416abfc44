"""The counters and the histogram every StepFlow process updates (ours.md §3.10).

They are created on first use, which only happens when metrics are enabled, in
:data:`PROCESS_REGISTRY`. In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) their values go
to files that the web process adds up; otherwise ``/metrics`` reads this registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram

from stepflow.engine.states import WorkflowState

PROCESS_REGISTRY = CollectorRegistry()
"""This process's own instruments (read by ``/metrics`` when there is no multiprocess directory)."""

ACTORS = "actors"
BRIDGE = "bridge"
"""Values of the ``process`` label of the message metrics."""


@dataclass(frozen=True)
class Instruments:
    workflows_created: Counter
    workflows_ended: Mapping[str, Counter]
    """The counter of each workflow status that is counted when a workflow enters it."""
    jobs: Counter
    messages: Counter
    message_seconds: Histogram


@cache
def instruments() -> Instruments:
    """This process's instruments, created (and registered) once."""

    def workflows(status: str, meaning: str) -> Counter:
        return Counter(f"stepflow_workflows_{status}_total", meaning, ["identifier"], registry=PROCESS_REGISTRY)

    message_labels = ["process", "queue", "actor", "outcome"]
    return Instruments(
        workflows_created=workflows("created", "Workflows created."),
        workflows_ended={
            WorkflowState.COMPLETED: workflows(WorkflowState.COMPLETED, "Workflows that completed."),
            WorkflowState.ERROR: workflows(WorkflowState.ERROR, "Times a workflow entered the error status."),
            WorkflowState.ABORTED: workflows(WorkflowState.ABORTED, "Workflows aborted."),
        },
        jobs=Counter(
            "stepflow_jobs_total",
            "Jobs that entered a state (queued counts the jobs created).",
            ["queue", "status"],
            registry=PROCESS_REGISTRY,
        ),
        messages=Counter(
            "stepflow_messages_total",
            "Messages handled by the bridge (worker messages) and the actors (Dramatiq messages), by outcome.",
            message_labels,
            registry=PROCESS_REGISTRY,
        ),
        message_seconds=Histogram(
            "stepflow_message_seconds",
            "Seconds a message spent in the bridge (received to settled) or in its actor.",
            message_labels,
            registry=PROCESS_REGISTRY,
        ),
    )
