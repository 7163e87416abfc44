"""Workflow events against the real database and broker (ours.md §3.5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, JobStatus, Update, Workflow, WorkflowStatus
from stepflow.settings import Settings
from stepflow.wire.topology import DIRECT_MESSAGING
from tests.integration.broker import Capture
from tests.support import definition, source_paths, step, worker_status_message, write_definitions

PREFIX = "/api/step_flow"

FORK_JOIN = definition(
    "fork_join",
    [
        step(0, "job_source", [source_paths("/in/a.mov")]),
        step(1, "job_left", [{"id": "level", "type": "integer", "value": 1}], parent_ids=[0]),
        step(2, "job_right", [], parent_ids=[0]),
        step(3, "job_join", [], parent_ids=[1, 2]),
    ],
)


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, FORK_JOIN)
    app = create_app(settings, launcher=actors.launch_workflow.fn, send_owed=actors.resources.send_owed)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def direct_messages(amqp_url: str) -> Iterator[Capture]:
    """Binds like an SDK worker of every queue of FORK_JOIN (headers exchange, x-match any)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    from stepflow.wire.topology import declare_direct_messaging

    declare_direct_messaging(channel)
    connection.close()
    capture = Capture(amqp_url, DIRECT_MESSAGING, [])
    for queue in ("job_source", "job_left", "job_right", "job_join"):
        capture.channel.queue_bind(capture.queue, DIRECT_MESSAGING, arguments={"x-match": "any", "job_type": queue})
    yield capture
    capture.close()


def launch(api: TestClient) -> int:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": "fork_join", "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def event(api: TestClient, workflow_id: int, body: dict[str, Any]) -> Any:
    return api.post(f"{PREFIX}/workflows/{workflow_id}/events", json=body)


def jobs_of(sessions: sessionmaker[Session], workflow_id: int, step_id: int | None = None) -> list[Job]:
    with sessions() as session:
        query = select(Job).where(Job.workflow_id == workflow_id).order_by(Job.id)
        if step_id is not None:
            query = query.where(Job.step_id == step_id)
        return list(session.scalars(query))


def status_of(sessions: sessionmaker[Session], workflow_id: int) -> str:
    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        return workflow.status


def fail(actors: Any, job: Job, message: str = "RuntimeError: boom") -> None:
    actors.job_error.fn({"job_id": job.id, "status": "error", "parameters": [{"id": "message", "value": message}]})


def complete(actors: Any, job: Job) -> None:
    actors.job_completed.fn({"job_id": job.id, "status": "completed", "destination_paths": []})


def test_retry_sends_the_same_order_again(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    workflow_id = launch(api)
    (root,) = jobs_of(sessions, workflow_id)
    orders.take(1)
    fail(actors, root)
    assert status_of(sessions, workflow_id) == "error"
    response = event(api, workflow_id, {"event": "retry", "job_id": root.id})
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    ((properties, body),) = orders.take(1)
    assert body == {"job_id": root.id, "parameters": root.parameters}
    assert actors.resources.marks.flush()
    (retried,) = jobs_of(sessions, workflow_id)
    assert (retried.state, retried.attempt) == ("retrying", 2) and retried.dispatched_at is not None
    assert status_of(sessions, workflow_id) == "processing"
    complete(actors, retried)
    assert sorted(job.step_id for job in jobs_of(sessions, workflow_id)) == [0, 1, 2]


def test_retry_refusals(actors: Any, api: TestClient, sessions: sessionmaker[Session]) -> None:
    first, second = launch(api), launch(api)
    (root,) = jobs_of(sessions, first)
    (other,) = jobs_of(sessions, second)
    queued = event(api, first, {"event": "retry", "job_id": root.id})
    assert queued.status_code == 409
    assert queued.json()["status"] == "error" and "only a job in error or stopped" in queued.json()["message"]
    foreign = event(api, first, {"event": "retry", "job_id": other.id})
    assert foreign.status_code == 404
    assert foreign.json() == {"status": "error", "message": f"job {other.id} not in workflow {first}"}
    assert event(api, first, {"event": "retry", "job_id": 999999}).status_code == 404
    assert event(api, first, {"event": "retry", "job_id": "one"}).status_code == 422
    missing = event(api, first, {"event": "retry"})
    assert (missing.status_code, missing.text) == (422, "event is not supported")
    unknown = event(api, first, {"event": "explode"})
    assert (unknown.status_code, unknown.text) == (422, "event is not supported")
    assert event(api, 999999, {"event": "abort"}).status_code == 404


def test_events_check_their_right(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    limited = definition(
        "limited",
        [step(0, "job_a", [source_paths("/a")])],
        rights=[{"action": action, "groups": ["viewers"]} for action in ("view", "create")],
    )
    write_definitions(definitions_folder, limited)
    viewer = dataclasses.replace(settings, auth_anonymous_groups=("viewers",))
    with TestClient(create_app(viewer, launcher=lambda _: None)) as client:
        workflow_id = client.post(
            f"{PREFIX}/workflows", json={"workflow_identifier": "limited", "reference": "r"}
        ).json()["data"]["id"]
        for name, message in [("abort", "abort"), ("stop", "stop"), ("delete", "delete"), ("pause", "pause")]:
            response = event(client, workflow_id, {"event": name})
            assert response.status_code == 403
            assert response.json() == {"status": "error", "message": f"Forbidden to {message} this workflow"}
        denied = event(client, workflow_id, {"event": "retry", "job_id": 1})
        assert denied.json() == {"status": "error", "message": "Forbidden to retry this workflow"}


def test_abort_stops_everything_and_black_lists_queued_orders(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], direct_messages: Capture
) -> None:
    workflow_id = launch(api)
    (root,) = jobs_of(sessions, workflow_id)
    complete(actors, root)
    left, right = jobs_of(sessions, workflow_id, 1)[0], jobs_of(sessions, workflow_id, 2)[0]
    actors.job_progression.fn({"job_id": left.id, "progression": 10})
    assert event(api, workflow_id, {"event": "abort"}).status_code == 200
    assert status_of(sessions, workflow_id) == "aborted"
    messages = {body["type"]: (properties.headers, body) for properties, body in direct_messages.take(2)}
    assert messages["stop_process"][0] == {"job_type": "job_left"}
    assert messages["stop_process"][1]["job_id"] == left.id
    assert messages["add_to_black_list"] == (
        {"job_type": "job_right"},
        {"type": "add_to_black_list", "job_id": right.id},
    )
    states = {job.step_id: job.state for job in jobs_of(sessions, workflow_id)}
    assert states == {0: "completed", 1: "processing", 2: "stopped", 3: "skipped"}
    assert api.get(f"{PREFIX}/blacklist").json() == {"data": [right.id], "total": 1}

    actors.job_stopped.fn({"job_id": left.id, "status": "stopped"})  # the worker's answer to stop_process
    actors.job_completed.fn({"job_id": right.id, "status": "completed"})  # too late: history only
    states = {job.step_id: job.state for job in jobs_of(sessions, workflow_id)}
    assert states == {0: "completed", 1: "stopped", 2: "stopped", 3: "skipped"}
    assert not [job for job in jobs_of(sessions, workflow_id) if job.state in ("queued", "processing", "retrying")]
    assert status_of(sessions, workflow_id) == "aborted"
    assert event(api, workflow_id, {"event": "abort"}).status_code == 200, "abort is idempotent"
    assert event(api, workflow_id, {"event": "retry", "job_id": right.id}).status_code == 409


def report_status(actors: Any, instance_id: str, job_id: int | None) -> None:
    actors.worker_status.fn(worker_status_message(instance_id, "job_left", job_id))


def capture_instance(capture: Capture, *instance_ids: str) -> None:
    for instance_id in instance_ids:
        arguments = {"x-match": "any", "instance_id": instance_id}
        capture.channel.queue_bind(capture.queue, DIRECT_MESSAGING, arguments=arguments)


def left_taken_by_worker_a(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], direct_messages: Capture
) -> tuple[int, Job]:
    """A launched FORK_JOIN whose ``job_left`` job the known worker ``worker-a`` reported taking;
    ``direct_messages`` also captures what is addressed to ``worker-a`` and ``worker-b``."""
    capture_instance(direct_messages, "worker-a", "worker-b")
    workflow_id = launch(api)
    (root,) = jobs_of(sessions, workflow_id)
    complete(actors, root)
    left = jobs_of(sessions, workflow_id, 1)[0]
    report_status(actors, "worker-a", None)
    actors.job_progression.fn({"job_id": left.id, "progression": 0, "docker_container_id": "worker-a"})
    return workflow_id, left


def test_abort_stops_a_running_job_on_the_one_worker_running_it(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], direct_messages: Capture
) -> None:
    workflow_id, left = left_taken_by_worker_a(actors, api, sessions, direct_messages)
    report_status(actors, "worker-b", None)
    assert event(api, workflow_id, {"event": "abort"}).status_code == 200
    stops = [
        (properties.headers, body) for properties, body in direct_messages.take(2) if body["type"] == "stop_process"
    ]
    assert stops == [
        (
            {"instance_id": "worker-a"},
            {"type": "stop_process", "job_id": left.id, "parameters": stops[0][1]["parameters"]},
        )
    ]


def test_the_latest_worker_to_report_a_job_is_the_one_told_to_stop(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], direct_messages: Capture
) -> None:
    """worker-a took the job and died; the broker gave it to worker-b, whose status names it."""
    workflow_id, left = left_taken_by_worker_a(actors, api, sessions, direct_messages)
    report_status(actors, "worker-b", left.id)
    assert event(api, workflow_id, {"event": "abort"}).status_code == 200
    stops = [properties.headers for properties, body in direct_messages.take(2) if body["type"] == "stop_process"]
    assert stops == [{"instance_id": "worker-b"}]


def test_a_black_listed_job_leaves_the_list_when_a_worker_reports_it(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    (root,) = jobs_of(sessions, workflow_id)
    complete(actors, root)
    right = jobs_of(sessions, workflow_id, 2)[0]
    assert event(api, workflow_id, {"event": "abort"}).status_code == 200
    assert right.id in api.get(f"{PREFIX}/blacklist").json()["data"]
    actors.job_progression.fn({"job_id": right.id, "progression": 0, "docker_container_id": "late-worker"})
    assert right.id not in api.get(f"{PREFIX}/blacklist").json()["data"]
    assert jobs_of(sessions, workflow_id, 2)[0].state == "stopped", "the report is history only"


def test_abort_of_a_completed_workflow_is_a_conflict(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    for step_id in range(4):
        for job in jobs_of(sessions, workflow_id, step_id):
            complete(actors, job)
    assert status_of(sessions, workflow_id) == "completed"
    response = event(api, workflow_id, {"event": "abort"})
    assert response.status_code == 409 and response.json()["status"] == "error"


def test_pause_starts_nothing_until_resume(actors: Any, api: TestClient, sessions: sessionmaker[Session]) -> None:
    workflow_id = launch(api)
    assert event(api, workflow_id, {"event": "pause"}).status_code == 200
    assert event(api, workflow_id, {"event": "pause"}).status_code == 200
    (root,) = jobs_of(sessions, workflow_id)
    complete(actors, root)
    assert status_of(sessions, workflow_id) == "paused"
    assert len(jobs_of(sessions, workflow_id)) == 1, "a paused workflow starts nothing"
    assert event(api, workflow_id, {"event": "resume"}).status_code == 200
    assert status_of(sessions, workflow_id) == "processing"
    assert sorted(job.step_id for job in jobs_of(sessions, workflow_id)) == [0, 1, 2]
    with sessions() as session:
        history = [
            row.state
            for row in session.scalars(
                select(WorkflowStatus).where(WorkflowStatus.workflow_id == workflow_id).order_by(WorkflowStatus.id)
            )
        ]
    assert history == ["pending", "processing", "paused", "processing"]


def test_update_sets_values_for_the_next_retry(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    workflow_id = launch(api)
    complete(actors, jobs_of(sessions, workflow_id, 0)[0])
    (left,) = jobs_of(sessions, workflow_id, 1)
    busy = event(api, workflow_id, {"event": "update", "job_id": left.id, "parameters": [{"id": "level", "value": 2}]})
    assert busy.status_code == 409, "a queued job is not updatable"
    fail(actors, left)
    unknown = event(
        api, workflow_id, {"event": "update", "job_id": left.id, "parameters": [{"id": "nope", "value": 2}]}
    )
    assert unknown.status_code == 422 and "parameters.nope" in unknown.json()["errors"]
    malformed = event(api, workflow_id, {"event": "update", "job_id": left.id, "parameters": {"level": 2}})
    assert malformed.status_code == 422
    good = event(api, workflow_id, {"event": "update", "job_id": left.id, "parameters": [{"id": "level", "value": 2}]})
    assert good.status_code == 200
    with sessions() as session:
        job = session.get(Job, left.id)
        assert job is not None and job.state == "error", "update never changes the state (Q8)"
        assert job.parameters[0] == {"id": "level", "type": "integer", "value": 2}
        assert [u.parameters for u in session.scalars(select(Update))] == [[{"id": "level", "value": 2}]]
        history = [
            row.state
            for row in session.scalars(select(JobStatus).where(JobStatus.job_id == left.id).order_by(JobStatus.id))
        ]
        assert history == ["error", "update"]
    orders.take(10, timeout=0.5)
    assert event(api, workflow_id, {"event": "retry", "job_id": left.id}).status_code == 200
    ((_, body),) = orders.take(1)
    assert body["parameters"][0] == {"id": "level", "type": "integer", "value": 2}


def test_delete_aborts_and_removes_the_workflow(actors: Any, api: TestClient, sessions: sessionmaker[Session]) -> None:
    workflow_id = launch(api)
    assert event(api, workflow_id, {"event": "delete"}).status_code == 200
    assert api.get(f"{PREFIX}/workflows/{workflow_id}").status_code == 404
    assert jobs_of(sessions, workflow_id) == []
    actors.job_completed.fn({"job_id": 1, "status": "completed"})  # a late answer for a deleted job is acked
