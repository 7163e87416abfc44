"""Notification steps end to end in-process: the notifier actor against a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, JobStatus, Workflow
from stepflow.actors import Actors
from stepflow.settings import Settings, load_settings
from tests.http_server import RecordingServer
from tests.integration.conftest import declare_actors
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"


def hook_workflow(url: str) -> dict[str, Any]:
    return definition(
        "with_hook",
        [
            step(0, "job_source", [source_paths("/in/a.mov")]),
            step(
                1,
                "job_notification",
                [
                    {"id": "url", "type": "template", "value": url + "{work_directory}"},
                    {"id": "method", "type": "string", "value": "POST"},
                    {"id": "headers", "type": "string", "value": '{"content-type": "application/json"}'},
                    {"id": "body", "type": "template", "value": '{"workflow_id": {workflow_id}}'},
                ],
                mode="notification",
                parent_ids=[0],
            ),
            step(2, "job_after", [], parent_ids=[1, 0]),
        ],
    )


SLACK = definition(
    "with_slack",
    [
        step(
            0,
            "job_slack",
            [
                {"id": "service", "type": "string", "value": "slack"},
                {"id": "channel", "type": "string", "value": "support"},
                {"id": "body", "type": "template", "value": "Workflow {workflow_id} - {step_name}"},
            ],
            mode="notification",
        )
    ],
)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path, server: RecordingServer
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, hook_workflow(server.url("/hook")), SLACK)
    with TestClient(create_app(settings, launcher=actors.launch_workflow.fn)) as client:
        yield client


def launch(api: TestClient, identifier: str) -> int:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": identifier, "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def jobs_of(sessions: sessionmaker[Session], workflow_id: int) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.workflow_id == workflow_id).order_by(Job.id)))


def history(sessions: sessionmaker[Session], job_id: int) -> list[tuple[str, dict[str, Any]]]:
    with sessions() as session:
        rows = session.scalars(select(JobStatus).where(JobStatus.job_id == job_id).order_by(JobStatus.id))
        return [(row.state, row.description) for row in rows]


def workflow_status(sessions: sessionmaker[Session], workflow_id: int) -> str:
    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        return workflow.status


def run_root(actors: Any, sessions: sessionmaker[Session], workflow_id: int) -> Job:
    (root,) = jobs_of(sessions, workflow_id)
    actors.job_completed.fn({"job_id": root.id, "status": "completed", "destination_paths": []})
    notification = [job for job in jobs_of(sessions, workflow_id) if job.step_id == 1]
    assert len(notification) == 1 and notification[0].kind == "notification"
    return notification[0]


def test_a_webhook_step_completes_and_the_workflow_goes_on(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], server: RecordingServer
) -> None:
    server.reply("/hook/test_work_dir", (204, ""))
    workflow_id = launch(api, "with_hook")
    notification = run_root(actors, sessions, workflow_id)
    actors.run_notification.fn(notification.id)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/hook/test_work_dir")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"workflow_id": workflow_id}
    assert history(sessions, notification.id) == [("completed", {})]
    assert [job.step_id for job in jobs_of(sessions, workflow_id)] == [0, 1, 2]
    actors.run_notification.fn(notification.id)  # a redelivered run sends nothing again
    assert len(server.requests) == 1


def test_a_failing_webhook_is_an_error_job_and_retry_runs_it_again(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], server: RecordingServer
) -> None:
    server.reply("/hook/test_work_dir", (404, ""), (200, "ok"))
    workflow_id = launch(api, "with_hook")
    notification = run_root(actors, sessions, workflow_id)
    actors.run_notification.fn(notification.id)
    assert history(sessions, notification.id) == [("error", {"message": 'response status code: 404 with body: ""'})]
    assert workflow_status(sessions, workflow_id) == "error"
    assert [job.step_id for job in jobs_of(sessions, workflow_id)] == [0, 1]

    retried = api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "retry", "job_id": notification.id})
    assert retried.status_code == 200
    actors.run_notification.fn(notification.id)
    assert [state for state, _ in history(sessions, notification.id)] == ["error", "retrying", "completed"]
    assert workflow_status(sessions, workflow_id) == "processing"
    assert [job.step_id for job in jobs_of(sessions, workflow_id)] == [0, 1, 2]
    assert len(server.requests) == 2


def test_a_slack_step_without_token_is_an_error_job(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api, "with_slack")
    (job,) = jobs_of(sessions, workflow_id)
    actors.run_notification.fn(job.id)
    assert history(sessions, job.id) == [("error", {"message": "missing slack configuration"})]


@pytest.fixture
def slack_actors(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> Iterator[Actors]:
    """The actors of a process started with a Slack API and token in its environment."""
    monkeypatch.setenv("SLACK_API_URL", server.url("/api"))
    monkeypatch.setenv("SLACK_API_TOKEN", "xoxb-test")
    configured = declare_actors(load_settings())
    monkeypatch.undo()
    yield configured
    configured.resources.close()


def test_a_slack_step_posts_to_the_configured_api(
    api: TestClient, sessions: sessionmaker[Session], server: RecordingServer, slack_actors: Actors
) -> None:
    server.reply("/api/chat.postMessage", (200, '{"ok": true}'))
    workflow_id = launch(api, "with_slack")
    (job,) = jobs_of(sessions, workflow_id)
    slack_actors.run_notification.fn(job.id)
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer xoxb-test"
    assert json.loads(request.body) == {"channel": "#support", "text": f"Workflow {workflow_id} - job_slack"}
    assert history(sessions, job.id) == [("completed", {})]
    assert workflow_status(sessions, workflow_id) == "completed"
