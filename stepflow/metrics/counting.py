"""Counts committed workflow and job changes (``stepflow.changes``): a rolled-back change is
never counted, and each process counts the changes it committed itself."""

from __future__ import annotations

from collections.abc import Sequence

from stepflow import changes
from stepflow.changes import JOB_STATE, WORKFLOW_CREATED, WORKFLOW_STATUS, Change
from stepflow.metrics.instruments import instruments
from stepflow.settings import Settings

LISTENER = "metrics"


def count(batch: Sequence[Change]) -> None:
    """``workflows_created``; ``workflows_<status>`` when a workflow enters completed, error or
    aborted; ``jobs{queue, status}`` for every job that enters a state (``queued`` when created)."""
    meters = instruments()
    for change in batch:
        if change.event == WORKFLOW_CREATED and change.workflow is not None:
            meters.workflows_created.labels(change.workflow.identifier).inc()
        elif change.event == WORKFLOW_STATUS and change.workflow is not None:
            counter = meters.workflows_ended.get(change.workflow.status)
            if counter is not None:
                counter.labels(change.workflow.identifier).inc()
        elif change.event == JOB_STATE and change.job is not None:
            meters.jobs.labels(change.job.name, change.job.state).inc()


def count_nothing(batch: Sequence[Change]) -> None:
    """The listener when metrics are disabled (installing it replaces an enabled one)."""


def install(settings: Settings) -> None:
    """Count this process's changes, when metrics are enabled."""
    changes.after_commit(LISTENER, count if settings.metrics_enabled else count_nothing)
