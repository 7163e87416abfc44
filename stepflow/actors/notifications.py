"""The notifier actors: all of StepFlow's outgoing HTTP (engine.md §9, ours.md §3.6, A15, A16).

- ``run_notification``: one message per notification job. The request is built from the step
  (templates rendered with the step's inputs) outside any transaction, sent with retries and
  backoff, then the outcome is recorded like a worker's answer: the job completes or fails
  under the workflow lock, and what follows starts.
- ``announce``: one message per announcement outbox row (a notification hook delivery, a Slack
  job-error message; :mod:`stepflow.orchestration.announcements`). The row is claimed, delivered, then
  deleted; a failed delivery is logged and never touches the workflow.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, update

from stepflow.orchestration import answers
from stepflow.orchestration.advance import workflow_context
from stepflow.orchestration.locked_workflow import read_job_inputs
from stepflow.orchestration.announcements import ANNOUNCE, HOOK
from stepflow.engine.launch import input_steps, source_paths
from stepflow.engine.states import QUEUED_STATES
from stepflow.engine.notification import SlackNotification, WebhookNotification, notification_request
from stepflow.models import Job, Outbox, Workflow
from stepflow.models.base import utcnow
from stepflow.notifier.hooks import hook_request
from stepflow.notifier.http import Delivery, HttpRequest, NotificationError, deliver
from stepflow.notifier.slack import slack_error_message, slack_outcome, slack_request
from stepflow.notifier.webhook import webhook_request
from stepflow.resources import Resources

log = structlog.get_logger(__name__)

# Retries with backoff may take minutes; the actor's own limit must leave room for them.
TIME_LIMIT_MS = 15 * 60 * 1000


def _request(resources: Resources, notification: SlackNotification | WebhookNotification) -> HttpRequest:
    settings = resources.settings
    if isinstance(notification, SlackNotification):
        return slack_request(settings.slack_api_url, settings.slack_api_token, notification.channel, notification.text)
    if not notification.url:
        raise NotificationError("missing url")
    return webhook_request(
        url=notification.url,
        method=notification.method,
        headers_json=notification.headers,
        body=notification.body,
        signing_secret=settings.webhook_signing_secret,
    )


def _notification_of(resources: Resources, job_id: int) -> SlackNotification | WebhookNotification | None:
    """What the job's step asks for, or None when the job no longer waits to run."""
    settings = resources.settings
    with resources.sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.state not in QUEUED_STATES:
            return None
        workflow = session.get(Workflow, job.workflow_id)
        assert workflow is not None
        step = next(s for s in workflow.steps if s["id"] == job.step_id)
        inputs = read_job_inputs(session, workflow.id, input_steps(step))
    context = workflow_context(workflow, settings.workers_work_directory)
    return notification_request(step, context, source_paths(step, context, inputs))


def send_notification(resources: Resources, notification: SlackNotification | WebhookNotification) -> Delivery:
    request = _request(resources, notification)
    delivery = deliver(resources.http, request, max_retries=resources.settings.notifier_max_retries)
    return slack_outcome(delivery) if isinstance(notification, SlackNotification) else delivery


def run_notification(resources: Resources, job_id: int) -> None:
    """Run the notification of one job and record its outcome (idempotent: a job that no longer
    waits is left alone)."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    try:
        try:
            notification = _notification_of(resources, job_id)
            if notification is None:
                log.info("notification no longer waiting, ignored")
                return
            delivery = send_notification(resources, notification)
            error = None if delivery.ok else delivery.failure_message()
        except (ValueError, NotificationError) as failure:  # a template, input or parameter error
            error = str(failure)
        with resources.transaction() as session:
            owed = answers.notification_done(session, job_id, error, resources.settings.workers_work_directory)
        resources.send_owed(owed)
    finally:
        structlog.contextvars.clear_contextvars()


def _claim(resources: Resources, outbox_id: int) -> dict[str, Any] | None:
    """Take the announcement row for one delivery attempt: the clock will not hand it over
    again for :data:`TIME_LIMIT_MS` (a duplicate hand-over finds it taken). None when it is
    gone (delivered) or taken."""
    now = utcnow()
    with resources.transaction() as session:
        return session.scalar(
            update(Outbox)
            .where(
                Outbox.id == outbox_id,
                Outbox.actor == ANNOUNCE,
                func.coalesce(Outbox.sent_at, Outbox.inserted_at) <= now,
            )
            .values(sent_at=now + timedelta(milliseconds=TIME_LIMIT_MS))
            .returning(Outbox.payload)
        )


def announcement_request(resources: Resources, payload: dict[str, Any]) -> HttpRequest:
    """The request of an announcement payload (a hook delivery or a Slack job-error message)."""
    settings = resources.settings
    if payload["kind"] == HOOK:
        credentials = payload.get("credentials")
        return hook_request(
            endpoint=payload["endpoint"],
            event=payload["event"],
            delivery_id=payload["delivery_id"],
            workflow=payload["workflow"],
            job=payload["job"],
            authorization=settings.notification_credentials.get(credentials) if credentials else None,
            signing_secret=settings.webhook_signing_secret,
        )
    job = payload["job"]
    text = slack_error_message(
        job["name"], job["id"], settings.exposed_domain_name, payload["workflow_id"], job["message"]
    )
    return slack_request(settings.slack_api_url, settings.slack_api_token, settings.slack_api_channel, text)


def announce(resources: Resources, outbox_id: int) -> None:
    """Deliver one announcement, then forget it, delivered or not (idempotent: a row already
    delivered or being delivered is left alone)."""
    structlog.contextvars.bind_contextvars(outbox_id=outbox_id)
    try:
        payload = _claim(resources, outbox_id)
        if payload is None:
            log.info("announcement already delivered or being delivered")
            return
        structlog.contextvars.bind_contextvars(
            workflow_id=(payload.get("workflow") or {}).get("id", payload.get("workflow_id"))
        )
        try:
            request = announcement_request(resources, payload)
            delivery = deliver(resources.http, request, max_retries=resources.settings.notifier_max_retries)
            if payload["kind"] != HOOK:
                delivery = slack_outcome(delivery)
            error = None if delivery.ok else delivery.failure_message()
        except NotificationError as failure:
            error = str(failure)
        if error is None:
            log.info("announcement delivered", kind=payload["kind"], hook_event=payload.get("event"))
        else:
            log.warning(
                "announcement not delivered", kind=payload["kind"], hook_event=payload.get("event"), error=error
            )
        with resources.transaction() as session:
            session.execute(delete(Outbox).where(Outbox.id == outbox_id))
    finally:
        structlog.contextvars.clear_contextvars()


ACTORS = {"run_notification": run_notification, "announce": announce}
"""The notifier actors, by name; each takes the process's resources first. Their time limit
(:data:`TIME_LIMIT_MS`) leaves room for the deliveries' retries."""
