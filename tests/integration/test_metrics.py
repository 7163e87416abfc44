"""``GET /metrics`` in-process: values after real state changes (counted only once committed),
the scale/delta window computed by SQL at scrape, the enable switch and basic auth."""

from __future__ import annotations

import base64
import dataclasses
import random
import string
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow import changes
from stepflow.api.app import create_app
from stepflow.changes import WORKFLOW_CREATED, Change, WorkflowRef
from stepflow.models import Artifact, Job, Workflow
from stepflow.models.base import utcnow
from stepflow.security import issue_token
from stepflow.settings import Settings
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get(f"{PREFIX}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def names() -> tuple[str, str]:
    """A workflow identifier and a queue no other test uses (the counters live as long as the process)."""
    suffix = "".join(random.choices(string.ascii_lowercase, k=10))  # identifiers are [a-z_]+
    return f"metrics_{suffix}", f"job_metrics_{suffix}"


@pytest.fixture
def app(
    actors: Any, settings: Settings, definitions_folder: Path, names: tuple[str, str]
) -> Iterator[Callable[..., TestClient]]:
    """A client of the app with ``settings`` changed by the keyword arguments; the definition of
    ``names`` is loaded and launches run the ``launch_workflow`` actor in-process."""
    identifier, queue = names
    write_definitions(definitions_folder, definition(identifier, [step(0, queue, [source_paths("/in/a.mov")])]))
    clients: list[TestClient] = []

    def start(**changed: Any) -> TestClient:
        client = TestClient(create_app(dataclasses.replace(settings, **changed), launcher=actors.launch_workflow.fn))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def launch(client: TestClient, identifier: str) -> int:
    response = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": identifier, "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def job_of(sessions: sessionmaker[Session], workflow_id: int) -> int:
    with sessions() as session:
        return session.scalars(select(Job.id).where(Job.workflow_id == workflow_id)).one()


def test_counters_and_gauges_follow_what_happened(
    actors: Any, app: Callable[..., TestClient], sessions: sessionmaker[Session], names: tuple[str, str]
) -> None:
    identifier, queue = names
    client = app()
    done, failed, aborted = (launch(client, identifier) for _ in range(3))
    before = scrape(client)
    assert sample(before, "stepflow_workflows_created_total", identifier=identifier) == 3
    assert sample(before, "stepflow_jobs_total", queue=queue, status="queued") == 3
    assert sample(before, "stepflow_jobs_in_flight", queue=queue) == 3
    assert sample(before, "stepflow_workflows_created_window", identifier=identifier) == 3

    actors.job_completed.fn({"job_id": job_of(sessions, done), "status": "completed"})
    actors.job_error.fn(
        {"job_id": job_of(sessions, failed), "status": "error", "parameters": [{"id": "message", "value": "boom"}]}
    )
    assert client.post(f"{PREFIX}/workflows/{aborted}/events", json={"event": "abort"}).status_code == 200
    after = scrape(client)
    for status, workflows in (("completed", 1), ("error", 1), ("aborted", 1)):
        assert sample(after, f"stepflow_workflows_{status}_total", identifier=identifier) == workflows, status
    assert sample(after, "stepflow_jobs_total", queue=queue, status="completed") == 1
    assert sample(after, "stepflow_jobs_total", queue=queue, status="error") == 1
    assert sample(after, "stepflow_jobs_total", queue=queue, status="stopped") == 1
    assert sample(after, "stepflow_jobs_in_flight", queue=queue) is None, "nothing left in flight"
    with sessions() as session:
        created = session.scalar(select(Workflow.inserted_at).where(Workflow.id == done))
        ended = session.scalar(select(Artifact.inserted_at).where(Artifact.workflow_id == done))
    duration = sample(after, "stepflow_workflow_duration_window_seconds", identifier=identifier)
    assert duration == pytest.approx((ended - created).total_seconds(), abs=1e-6)


def test_a_rolled_back_change_is_never_counted(
    app: Callable[..., TestClient], sessions: sessionmaker[Session], names: tuple[str, str]
) -> None:
    identifier, _ = names
    client = app()
    created = Change(WORKFLOW_CREATED, WorkflowRef(0, identifier, "1.0.0", "r", "pending", ()))
    with sessions() as session:
        session.begin()
        changes.record(session, created)
        session.rollback()
    assert sample(scrape(client), "stepflow_workflows_created_total", identifier=identifier) is None
    with sessions() as session, session.begin():
        changes.record(session, created)
    assert sample(scrape(client), "stepflow_workflows_created_total", identifier=identifier) == 1


def test_the_window_is_delta_times_scale_back_from_now(
    app: Callable[..., TestClient], sessions: sessionmaker[Session], names: tuple[str, str]
) -> None:
    identifier, _ = names
    client = app(metrics_scale="hour", metrics_delta=-1)
    old, recent, running = (launch(client, identifier) for _ in range(3))
    now = utcnow()
    timeline = {  # workflow: (created, ended)
        old: (now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(seconds=10)),
        recent: (now - timedelta(minutes=30), now - timedelta(minutes=30) + timedelta(seconds=20)),
        running: (now - timedelta(minutes=10), None),
    }
    with sessions() as session, session.begin():
        for workflow_id, (created, ended) in timeline.items():
            session.execute(update(Workflow).where(Workflow.id == workflow_id).values(inserted_at=created))
            if ended is not None:
                session.add(Artifact(workflow_id=workflow_id, resources={}, inserted_at=ended))
    response = client.get(f"{PREFIX}/metrics")
    assert "Average duration of the workflows that ended since -1 hour(s)." in response.text
    samples = scrape(client)
    assert sample(samples, "stepflow_workflows_created_window", identifier=identifier) == 2
    assert sample(samples, "stepflow_workflow_duration_window_seconds", identifier=identifier) == pytest.approx(20)


def test_switched_off_metrics_answer_page_not_found_and_count_nothing(
    app: Callable[..., TestClient], names: tuple[str, str]
) -> None:
    identifier, _ = names
    client = app(metrics_enabled=False)
    launch(client, identifier)
    response = client.get(f"{PREFIX}/metrics")
    assert (response.status_code, response.text) == (404, "Page not found")
    assert response.headers["content-type"].startswith("text/html")
    assert sample(scrape(app()), "stepflow_workflows_created_total", identifier=identifier) is None


def test_basic_auth_guards_the_scrape_and_user_tokens_are_not_needed(app: Callable[..., TestClient]) -> None:
    client = app(metrics_basic_auth=("scraper", "s3cret"), auth_anonymous=False, session_secret="metrics-secret")

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    user_token = f"Bearer {issue_token('metrics-secret', 'someone', ('administrator',), 3600)}"
    for authorization in (None, basic("scraper", "wrong"), basic("other", "s3cret"), user_token):
        response = client.get(f"{PREFIX}/metrics", headers={"Authorization": authorization} if authorization else {})
        assert response.status_code == 401, authorization
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert scrape(client, Authorization=basic("scraper", "s3cret"))
    open_client = app(auth_anonymous=False)
    assert scrape(open_client), "without basic auth anyone may scrape, no user token needed"
