"""What state changes announce to people: the workflow's notification hooks (ours §3.6) and
Slack messages for job errors (engine §9).

A change listener turns the committed-to-be changes into announcements, written as outbox rows
(actor :data:`ANNOUNCE`) in the changing transaction itself, so none is lost and none is sent
for a change that rolled back. Once the transaction commits, the rows are handed to the
``announce`` notifier actor; the clock hands over again any row left behind. The notifier
delivers them with retries; whatever happens to a delivery, the workflow is never affected.

- Hooks: a workflow entering ``completed``, ``error`` or ``aborted`` is the event
  ``workflow_<status>``; a job entering ``completed`` or ``error`` is ``job_<state>``. Each hook
  of the workflow whose ``events`` hold it gets one delivery.
- Slack: a job entering ``error`` with a message (a worker's error, "No worker is started with
  this queue name.", a bad condition…) posts the original's text to ``SLACK_API_CHANNEL`` when
  ``SLACK_API_TOKEN`` is set too; otherwise Slack is off, logged once per process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from stepflow import changes
from stepflow.changes import JOB_STATE, WORKFLOW_STATUS, Change, FollowUp, JobRef, WorkflowRef
from stepflow.engine.states import JobState, WorkflowState
from stepflow.models import Outbox
from stepflow.settings import Settings

log = structlog.get_logger(__name__)

ANNOUNCE = "announce"
HOOK = "hook"
SLACK = "slack"
WORKFLOW_EVENTS = frozenset({WorkflowState.COMPLETED, WorkflowState.ERROR, WorkflowState.ABORTED})
JOB_EVENTS = frozenset({JobState.COMPLETED, JobState.ERROR})

Handover = Callable[[list[int]], Any]
"""Hands outbox rows (by id) to the ``announce`` actor; raises if not all were taken."""

_slack_off_logged = False


def hook_event(change: Change) -> str | None:
    """The hook event a change is, if any."""
    if change.event == WORKFLOW_STATUS and change.workflow and change.workflow.status in WORKFLOW_EVENTS:
        return f"workflow_{change.workflow.status}"
    if (
        change.event == JOB_STATE
        and change.job
        and change.job.state in JOB_EVENTS
        and change.previous != change.job.state
    ):
        return f"job_{change.job.state}"
    return None


def workflow_view(workflow: WorkflowRef) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "identifier": workflow.identifier,
        "version": workflow.version,
        "reference": workflow.reference,
        "status": workflow.status,
    }


def job_view(job: JobRef) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "step_id": job.step_id, "status": job.state, "message": job.message}


def announcements(batch: Sequence[Change], slack: bool) -> Iterator[dict[str, Any]]:
    """The outbox payloads of a transaction's changes (``slack``: whether Slack is on)."""
    for change in batch:
        workflow, job = change.workflow, change.job
        event = hook_event(change)
        if event is None or workflow is None:
            continue
        for hook in workflow.notification_hooks:
            if event in hook.get("events", ()):
                yield {
                    "kind": HOOK,
                    "event": event,
                    "delivery_id": str(uuid.uuid4()),
                    "endpoint": hook["endpoint"],
                    "credentials": hook.get("credentials"),
                    "workflow": workflow_view(workflow),
                    "job": job_view(job) if job is not None else None,
                }
        if slack and event == "job_error" and job is not None and job.message:
            yield {"kind": SLACK, "workflow_id": workflow.id, "job": job_view(job)}


def slack_is_on(settings: Settings) -> bool:
    """Job errors go to Slack when a token and a channel are set; otherwise say so, once."""
    global _slack_off_logged
    if settings.slack_api_token and settings.slack_api_channel:
        return True
    if not _slack_off_logged:
        _slack_off_logged = True
        log.info("Slack job-error notifications are off: set SLACK_API_TOKEN and SLACK_API_CHANNEL to turn them on")
    return False


def install_announcements(settings: Settings, handover: Handover) -> None:
    """Register the listener writing announcements, handed over with ``handover`` after commit."""
    slack = slack_is_on(settings)

    def write(session: Session, batch: Sequence[Change]) -> FollowUp | None:
        rows = [Outbox(actor=ANNOUNCE, payload=payload) for payload in announcements(batch, slack)]
        if not rows:
            return None
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]

        return lambda: handover(ids)

    changes.before_commit(ANNOUNCE, write)
