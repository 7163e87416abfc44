"""Notification hooks and Slack job-error messages, against real local HTTP servers: the
announcements written by state changes, delivered by the ``announce`` notifier actor."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.announcements import ANNOUNCE, install_announcements
from stepflow.api.app import create_app
from stepflow.clock import relay_outbox
from stepflow.models import Job, Outbox, Workflow
from stepflow.notifier.signing import verify
from stepflow.actors import Actors
from stepflow.settings import Settings, load_settings
from tests.integration.conftest import declare_actors
from tests.http_server import Recorded, RecordingServer
from tests.support import versioned_definition, write_definitions

PREFIX = "/api/step_flow"
SECRET = "hook-signing-secret"
DOMAIN = "https://stepflow.example.com"
NOTIFIER_SETTINGS = (
    "slack_api_url",
    "slack_api_token",
    "slack_api_channel",
    "exposed_domain_name",
    "notification_credentials",
    "webhook_signing_secret",
)
RIGHTS = tuple({"action": action, "groups": ["administrator"]} for action in ("view", "create", "retry", "abort"))


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        running.reply("/api/chat.postMessage", (200, '{"ok": true}'))
        yield running


@pytest.fixture
def actors(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> Iterator[Actors]:
    """The actors of a process started with the notifier's environment."""
    for name, value in {
        "SLACK_API_URL": server.url("/api"),
        "SLACK_API_TOKEN": "xoxb-test",
        "SLACK_API_CHANNEL": "alerts",
        "EXPOSED_DOMAIN_NAME": DOMAIN,
        "STEPFLOW_NOTIFICATION_CREDENTIALS": json.dumps({"ops": "Bearer ops-token"}),
        "STEPFLOW_WEBHOOK_SIGNING_SECRET": SECRET,
        "STEPFLOW_NOTIFIER_MAX_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    notifying = declare_actors(load_settings())
    monkeypatch.undo()
    yield notifying
    notifying.resources.close()


@pytest.fixture
def handed_over() -> list[int]:
    return []


@pytest.fixture
def api(
    actors: Any,
    settings: Settings,
    sessions: sessionmaker[Session],
    definitions_folder: Path,
    server: RecordingServer,
    handed_over: list[int],
    orders: Any,  # bound to every order, so none lands in job_queue_not_found for later tests
) -> Iterator[TestClient]:
    hooks = [
        {
            "label": "Ops",
            "endpoint": server.url("/hooks/ops"),
            "credentials": "ops",
            "conditions": {"job_error": True, "workflow_completed": True, "workflow_error": True},
        },
        {"label": "Audit", "endpoint": server.url("/hooks/audit"), "conditions": {"workflow_aborted": True}},
    ]
    write_definitions(definitions_folder, versioned_definition("announced", "1.13", hooks))
    notifier = actors.resources.settings  # what the environment above gives the notifier
    configured = dataclasses.replace(
        settings, default_rights=RIGHTS, **{name: getattr(notifier, name) for name in NOTIFIER_SETTINGS}
    )
    with TestClient(create_app(configured, launcher=actors.launch_workflow.fn)) as client:
        install_announcements(configured, handed_over.extend)  # capture the hand-overs instead of queueing
        yield client


def launch(api: TestClient) -> tuple[int, int]:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": "announced", "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"], 0


def only_job(sessions: sessionmaker[Session], workflow_id: int) -> Job:
    with sessions() as session:
        (job,) = session.scalars(select(Job).where(Job.workflow_id == workflow_id))
        return job


def deliver_all(actors: Any, handed_over: list[int]) -> None:
    for outbox_id in handed_over:
        actors.announce.fn(outbox_id)
    handed_over.clear()


def hook_body(request: Recorded) -> dict[str, Any]:
    body = json.loads(request.body)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-stepflow-event"] == body["event"]
    assert request.headers["x-stepflow-delivery"] == body["delivery_id"]
    assert verify(SECRET, body["sent_at"], request.body, request.headers["x-stepflow-signature"])
    return body


def test_a_job_error_reaches_slack_and_the_hooks_that_asked_for_it(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], server: RecordingServer, handed_over: list[int]
) -> None:
    workflow_id, _ = launch(api)
    job = only_job(sessions, workflow_id)
    failure = {"id": "message", "type": "string", "value": "RuntimeError: boom"}
    actors.job_error.fn({"job_id": job.id, "status": "error", "parameters": [failure]})
    assert len(handed_over) == 3
    deliver_all(actors, handed_over)

    (slack,) = server.requests_to("/api/chat.postMessage")
    assert slack.headers["authorization"] == "Bearer xoxb-test"
    assert json.loads(slack.body) == {
        "channel": "#alerts",
        "text": f"Error for job job_transfer #{job.id} <{DOMAIN}/workflows/{workflow_id} |Open Workflow>\n"
        "```RuntimeError: boom```",
    }
    ops = [hook_body(request) for request in server.requests_to("/hooks/ops")]
    assert [request.headers["authorization"] for request in server.requests_to("/hooks/ops")] == [
        "Bearer ops-token"
    ] * 2
    workflow = {"id": workflow_id, "identifier": "announced", "version": "1.0.0", "reference": "r"}
    job_view = {"id": job.id, "name": "job_transfer", "step_id": 0, "status": "error", "message": "RuntimeError: boom"}
    assert [(body["event"], body["workflow"], body["job"]) for body in ops] == [
        ("job_error", {**workflow, "status": "processing"}, job_view),
        ("workflow_error", {**workflow, "status": "error"}, None),
    ]
    assert all(body["sent_at"].endswith("Z") for body in ops)
    assert server.requests_to("/hooks/audit") == []
    with sessions() as session:
        assert session.scalars(select(Outbox).where(Outbox.actor == ANNOUNCE)).all() == [], "delivered, forgotten"

    api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "retry", "job_id": job.id})
    actors.job_completed.fn({"job_id": job.id, "status": "completed"})
    deliver_all(actors, handed_over)
    (completed,) = [hook_body(request) for request in server.requests_to("/hooks/ops")][2:]
    assert (completed["event"], completed["workflow"]["status"], completed["job"]) == (
        "workflow_completed",
        "completed",
        None,
    )
    assert len(server.requests_to("/api/chat.postMessage")) == 1, "no Slack message for a completion"


def test_an_abort_reaches_the_audit_hook_and_a_failed_delivery_changes_nothing(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], server: RecordingServer, handed_over: list[int]
) -> None:
    server.reply("/hooks/audit", (503, "down for maintenance"))
    workflow_id, _ = launch(api)
    assert api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "abort"}).status_code == 200
    (outbox_id,) = handed_over
    deliver_all(actors, handed_over)
    (audit,) = server.requests_to("/hooks/audit")
    body = hook_body(audit)
    assert (body["event"], body["workflow"]["status"]) == ("workflow_aborted", "aborted")
    assert "authorization" not in audit.headers, "this hook names no credentials"
    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None and workflow.status == "aborted", "a failed delivery changes nothing"
        assert session.get(Outbox, outbox_id) is None, "a failed delivery is logged, not retried forever"
    actors.announce.fn(outbox_id)  # a duplicate hand-over
    assert len(server.requests_to("/hooks/audit")) == 1


def test_the_clock_hands_over_an_announcement_left_behind(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], server: RecordingServer, handed_over: list[int]
) -> None:
    workflow_id, _ = launch(api)
    api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "abort"})
    handed_over.clear()  # the process died before handing it over
    relayed: list[int] = []
    with sessions() as session, session.begin():
        assert relay_outbox(session, {ANNOUNCE: lambda row: relayed.append(row.id)}, older_than=3600) == 0
    with sessions() as session, session.begin():
        assert relay_outbox(session, {ANNOUNCE: lambda row: relayed.append(row.id)}, older_than=0) == 1
    deliver_all(actors, relayed)
    assert len(server.requests_to("/hooks/audit")) == 1


def test_without_a_slack_token_job_errors_only_reach_the_hooks(
    actors: Any,
    api: TestClient,
    settings: Settings,
    sessions: sessionmaker[Session],
    server: RecordingServer,
    handed_over: list[int],
) -> None:
    install_announcements(dataclasses.replace(settings, slack_api_token=None), handed_over.extend)
    workflow_id, _ = launch(api)
    job = only_job(sessions, workflow_id)
    actors.job_queue_not_found.fn({"job_id": job.id, "parameters": job.parameters})
    deliver_all(actors, handed_over)
    assert server.requests_to("/api/chat.postMessage") == []
    events = [hook_body(request)["event"] for request in server.requests_to("/hooks/ops")]
    assert events == ["job_error", "workflow_error"]
