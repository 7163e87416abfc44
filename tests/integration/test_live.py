"""Live workflows end to end on the real database and broker (engine.md §10, S24).

A fake live worker answers the direct messages StepFlow publishes the way the SDK does
(mcai-protocol.md §5.2); its answers and the worker manager's reports are fed through the
real actors, and what StepFlow sends is read off real queues: ``job_worker_manager`` on
``job_submit``, and one queue bound by ``instance_id`` on ``direct_messaging`` per worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, JobStatus, LiveWorker, Outbox, Workflow
from stepflow.settings import Settings
from stepflow.wire.topology import DIRECT_MESSAGING, JOB_SUBMIT, JOB_WORKER_MANAGER, declare_direct_messaging
from tests.integration.broker import Capture
from tests.support import definition, step, write_definitions

PREFIX = "/api/step_flow"
# SDK 2.x instance ids are UUIDs; StepFlow addresses them in full (not the original's 12 characters).
PARENT_ID = "64955099-d784-456d-8c63-18b2348a3d48"
CHILD_ID = "7d1f0c3e-52aa-4c1b-9a53-0e4f5b6c7d8e"

LIVE = {
    **definition(
        "live",
        [
            step(
                0,
                "job_live",
                [
                    {"id": "source_paths", "type": "array_of_strings", "value": ["srt://:9999"]},
                    {"id": "destination_path", "type": "string", "value": "srt://:8888"},
                ],
                skip_destination_path=True,
            ),
            step(
                1,
                "job_live",
                [{"id": "destination_path", "type": "string", "value": "srt://:7777"}],
                parent_ids=[0],
                skip_destination_path=True,
            ),
        ],
    ),
    "is_live": True,
}
FILES = definition("files", [step(0, "job_file", [{"id": "source_paths", "type": "array_of_strings", "value": ["a"]}])])


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, LIVE, FILES)
    with TestClient(create_app(settings, launcher=actors.launch_workflow.fn)) as client:
        yield client


@pytest.fixture
def manager(amqp_url: str) -> Iterator[Capture]:
    """Binds like the live worker manager: ``job_worker_manager`` on ``job_submit``."""
    capture = Capture(amqp_url, JOB_SUBMIT, [JOB_WORKER_MANAGER], declare_exchange=True)
    yield capture
    capture.close()


@pytest.fixture
def workers(amqp_url: str) -> Iterator[dict[str, Capture]]:
    """One queue per live worker, bound as the SDK binds (headers, x-match any, full instance_id)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    declare_direct_messaging(connection.channel())
    connection.close()
    captures = {}
    for instance_id in (PARENT_ID, CHILD_ID):
        capture = Capture(amqp_url, DIRECT_MESSAGING, [])
        capture.channel.queue_bind(
            capture.queue, DIRECT_MESSAGING, arguments={"x-match": "any", "instance_id": instance_id}
        )
        captures[instance_id] = capture
    yield captures
    for capture in captures.values():
        capture.close()


def launch(api: TestClient, identifier: str = "live") -> int:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": identifier, "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def jobs_of(sessions: sessionmaker[Session], workflow_id: int) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.workflow_id == workflow_id).order_by(Job.step_id)))


def states(sessions: sessionmaker[Session], workflow_id: int) -> list[str]:
    return [job.state for job in jobs_of(sessions, workflow_id)]


def live_workers(sessions: sessionmaker[Session]) -> dict[int, LiveWorker]:
    with sessions() as session:
        return {worker.job_id: worker for worker in session.scalars(select(LiveWorker))}


def snapshot(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    """Everything a worker message may change: jobs, history, live workers, pending messages."""
    with sessions() as session:
        return (
            session.execute(select(Job.id, Job.state, Job.parameters).order_by(Job.id)).all(),
            session.scalar(select(JobStatus.id).order_by(JobStatus.id.desc()).limit(1)),
            session.execute(
                select(LiveWorker.id, LiveWorker.instance_id, LiveWorker.creation_date, LiveWorker.ips)
            ).all(),
            session.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)),
        )


def queue_name(job: Job) -> str:
    return next(p["value"] for p in job.parameters if p["id"] == "direct_messaging_queue_name")


def description(identifier: str, instance_id: str) -> dict[str, Any]:
    """The SDK's ``worker_created`` body of a worker started with ``DIRECT_MESSAGING_IDENTIFIER``
    = ``identifier`` (mcai-protocol.md §3): a live job's queue name for the workers it gets."""
    return {
        "description": "a live worker",
        "direct_messaging_queue_name": f"direct_messaging_{identifier}",
        "instance_id": instance_id,
        "label": "live_worker",
        "name": "live_worker",
        "queue_name": "job_live",
        "sdk_version": "2.2.1",
        "version": "0.1.0",
    }


def manager_report(job: Job, instance_id: str, host_ip: str, port: int) -> dict[str, Any]:
    """What the worker manager says of the worker it created: a ``job_completed`` naming it."""
    parameters = [
        {"id": "instance_id", "type": "string", "value": instance_id},
        {"id": "host_ip", "type": "string", "value": host_ip},
        {"id": "ports", "type": "array_of_strings", "value": [str(port)]},
        {"id": "direct_messaging_queue_name", "type": "string", "value": queue_name(job)},
    ]
    return {"job_id": job.id, "status": "completed", "parameters": parameters}


def sdk_answer(actors: Any, body: dict[str, Any]) -> None:
    """The fake worker: what an SDK 2.x worker answers each direct message (mcai-protocol.md §5.2)."""
    job_id = body["job_id"]
    reply = {"job_id": job_id, "cpu_time": 0.0, "destination_paths": [], "execution_duration": 0.0, "parameters": []}
    if body["type"] == "init_process":
        actors.worker_initialized.fn({**reply, "status": "ready_to_start"})
    elif body["type"] == "start_process":
        actors.worker_started.fn({**reply, "status": "processing"})
    elif body["type"] == "update_process":
        actors.worker_updated.fn({**reply, "status": "processing"})
    elif body["type"] == "stop_process":
        actors.job_stopped.fn({**reply, "status": "stopped"})


def received(worker: Capture, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    messages = worker.take(count, timeout=10 if count else 0.5)
    assert len(messages) == count, messages
    return [(properties.headers, body) for properties, body in messages]


def test_launch_creates_one_live_job_per_step_and_asks_the_manager_for_its_worker(
    api: TestClient, sessions: sessionmaker[Session], manager: Capture
) -> None:
    workflow_id = launch(api)
    parent, child = jobs_of(sessions, workflow_id)
    assert (parent.state, parent.is_live, child.state, child.is_live) == ("queued", True, "queued", True)
    u0, u1 = queue_name(parent), queue_name(child)
    assert u0 != u1
    assert parent.parameters == [
        {"id": "source_paths", "type": "array_of_strings", "value": ["srt://:9999"]},
        {"id": "destination_path", "type": "string", "value": "srt://:8888"},
        {"id": "direct_messaging_queue_name", "type": "string", "value": u0},
        {"id": "source_path", "type": "string", "value": "srt://:9999"},
        {"id": "requirements", "type": "requirements", "value": {"paths": []}},
    ]
    assert child.parameters == [
        {"id": "destination_path", "type": "string", "value": "srt://:7777"},
        {"id": "direct_messaging_queue_name", "type": "string", "value": u1},
        {"id": "source_path", "type": "string", "value": "srt://:8888"},
        {"id": "requirements", "type": "requirements", "value": {"paths": []}},
    ]
    messages = sorted(manager.take(3, timeout=3), key=lambda message: message[0].priority)  # a priority queue
    assert [(properties.priority, properties.delivery_mode, body) for properties, body in messages] == [
        (
            step_id,
            2,
            {
                "job_id": job.id,
                "parameters": [
                    {"id": "direct_messaging_queue_name", "type": "string", "value": name},
                    {"id": "action", "type": "string", "value": "create"},
                ],
                "type": "create",
            },
        )
        for step_id, job, name in ((0, parent, u0), (1, child, u1))
    ]
    with sessions() as session:
        assert session.scalars(select(Outbox)).all() == [], "confirmed messages leave the outbox"
        assert session.get(Workflow, workflow_id).status == "processing"  # type: ignore[union-attr]
        assert session.scalar(select(Job.dispatched_at).where(Job.id == parent.id)) is None, "no job order"
    assert {job_id: worker.creation_date for job_id, worker in live_workers(sessions).items()} == {
        parent.id: None,
        child.id: None,
    }


def test_a_live_workflow_runs_with_an_sdk_like_worker_and_stops(
    actors: Any,
    api: TestClient,
    sessions: sessionmaker[Session],
    manager: Capture,
    workers: dict[str, Capture],
) -> None:
    workflow_id = launch(api)
    parent, child = jobs_of(sessions, workflow_id)
    assert len(manager.take(2)) == 2
    parent_worker, child_worker = workers[PARENT_ID], workers[CHILD_ID]

    # The child's worker is up first: its source is the parent's stream, not known yet.
    actors.worker_created.fn(description(queue_name(child), CHILD_ID))
    assert states(sessions, workflow_id) == ["queued", "ready_to_init"]
    received(child_worker, 0)

    # The parent's worker is up and reported by the manager: both get init_process.
    actors.job_completed.fn(manager_report(parent, "manager-side-id", "1.2.3.4", 8888))
    assert states(sessions, workflow_id) == ["queued", "ready_to_init"], "a manager report is no completion"
    actors.worker_created.fn(description(queue_name(parent), PARENT_ID))
    assert states(sessions, workflow_id) == ["initializing", "initializing"]
    ((headers, init_parent),) = received(parent_worker, 1)
    assert headers == {"instance_id": PARENT_ID}
    assert init_parent == {"type": "init_process", "job_id": parent.id, "parameters": parent.parameters}
    ((headers, init_child),) = received(child_worker, 1)
    assert headers == {"instance_id": CHILD_ID}
    stream = {"id": "source_path", "type": "string", "value": "srt://1.2.3.4:8888"}
    assert init_child["type"] == "init_process" and stream in init_child["parameters"]
    assert stream in jobs_of(sessions, workflow_id)[1].parameters, "the rewritten source is kept"
    workers_now = live_workers(sessions)
    assert workers_now[parent.id].instance_id == PARENT_ID, "the worker's own id wins over the manager's"
    assert (workers_now[parent.id].ips, workers_now[parent.id].ports) == (["1.2.3.4"], [8888])
    assert workers_now[parent.id].creation_date is not None

    # The fake worker answers each order as the SDK does, until both stream.
    sdk_answer(actors, init_parent)
    sdk_answer(actors, init_child)
    assert states(sessions, workflow_id) == ["starting", "starting"]
    for worker in (parent_worker, child_worker):
        ((_, start),) = received(worker, 1)
        assert start["type"] == "start_process"
        sdk_answer(actors, start)
    assert states(sessions, workflow_id) == ["processing", "processing"]

    # Redeliveries change nothing and send nothing.
    before = snapshot(sessions)
    actors.worker_created.fn(description(queue_name(parent), PARENT_ID))
    actors.worker_initialized.fn({"job_id": parent.id, "status": "ready_to_start"})
    actors.worker_started.fn({"job_id": parent.id, "status": "processing"})
    actors.job_completed.fn(manager_report(parent, "manager-side-id", "1.2.3.4", 8888))
    assert snapshot(sessions) == before
    received(parent_worker, 0)
    received(child_worker, 0)

    # update: the running child's worker gets update_process with the new values.
    response = api.post(
        f"{PREFIX}/workflows/{workflow_id}/events",
        json={
            "event": "update",
            "job_id": child.id,
            "parameters": [{"id": "destination_path", "value": "srt://:6666"}],
        },
    )
    assert response.status_code == 200, response.text
    assert states(sessions, workflow_id) == ["processing", "updating"]
    ((headers, update),) = received(child_worker, 1)
    assert headers == {"instance_id": CHILD_ID} and update["type"] == "update_process"
    assert {"id": "destination_path", "type": "string", "value": "srt://:6666"} in update["parameters"]
    sdk_answer(actors, update)
    assert states(sessions, workflow_id) == ["processing", "processing"]

    # stop: each worker is told to stop; its job_stopped stops the job and deletes the worker.
    assert api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "stop"}).status_code == 200
    for worker, job in ((parent_worker, parent), (child_worker, child)):
        ((headers, stop),) = received(worker, 1)
        assert stop["type"] == "stop_process" and stop["job_id"] == job.id
        sdk_answer(actors, stop)
        sdk_answer(actors, stop)  # a redelivered job_stopped deletes nothing twice
    assert states(sessions, workflow_id) == ["stopped", "stopped"]
    deletes = sorted(manager.take(3, timeout=3), key=lambda message: message[0].priority)
    assert [
        (properties.priority, body["job_id"], body["type"], body["parameters"][-1]) for properties, body in deletes
    ] == [
        (0, parent.id, "delete", {"id": "action", "type": "string", "value": "delete"}),
        (1, child.id, "delete", {"id": "action", "type": "string", "value": "delete"}),
    ]

    # Terminated: by job id (engine.md §10), or by the SDK's own worker_terminated description.
    actors.worker_terminated.fn({"job_id": parent.id})
    actors.worker_terminated.fn(description(queue_name(child), CHILD_ID))
    assert all(worker.termination_date is not None for worker in live_workers(sessions).values())


def test_a_live_job_addressed_by_the_managers_instance_id_completes_after_its_worker_ends(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], manager: Capture, workers: dict[str, Capture]
) -> None:
    """The original's live_test: the instance id comes with the manager's report only."""
    workflow_id = launch(api)
    parent, child = jobs_of(sessions, workflow_id)
    actors.job_completed.fn(manager_report(parent, PARENT_ID, "1.2.3.4", 8888))
    actors.worker_created.fn({**description(queue_name(parent), ""), "instance_id": None})
    ((headers, init),) = received(workers[PARENT_ID], 1)
    assert headers == {"instance_id": PARENT_ID}
    sdk_answer(actors, init)
    ((_, start),) = received(workers[PARENT_ID], 1)
    sdk_answer(actors, start)
    actors.job_stopped.fn({"job_id": parent.id, "status": "stopped"})
    actors.worker_terminated.fn({"job_id": parent.id})
    actors.job_completed.fn({"job_id": parent.id, "status": "completed", "parameters": []})
    assert states(sessions, workflow_id) == ["completed", "queued"]
    assert len(manager.take(4, timeout=3)) == 3, "create, create, delete"


def test_worker_reports_for_no_live_job_are_acked_noise(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], manager: Capture, orders: Capture
) -> None:
    from stepflow.actors import worker_messages

    (ordinary,) = jobs_of(sessions, launch(api, "files"))
    assert len(orders.take(1)) == 1, "an ordinary order, on its queue"
    before, noise = snapshot(sessions), worker_messages.NOISE.copy()
    actors.worker_created.fn(description("an-ordinary-worker", PARENT_ID))
    actors.worker_initialized.fn({"job_id": ordinary.id, "status": "ready_to_start"})
    actors.worker_started.fn({"job_id": 987654, "status": "processing"})
    actors.worker_updated.fn({"job_id": 2**40, "status": "processing"})
    assert worker_messages.NOISE - noise == {
        "worker_created": 1,
        "worker_initialized": 1,
        "worker_started": 1,
        "worker_updated": 1,
    }
    assert snapshot(sessions) == before
    assert manager.take(1, timeout=0.5) == []
