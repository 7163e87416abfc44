"""The silence lease (ours.md §3.11): a running job whose worker went silent is given up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.outbox import Owed, undispatched
from stepflow.orchestration.leases import Leases, settle_unanswered_jobs
from stepflow.orchestration.answers import BusyResend
from stepflow.api.app import create_app
from stepflow.models import Job, JobStatus, Progression, WorkerStatus, Workflow
from stepflow.models.base import utcnow
from stepflow.settings import Settings
from tests.support import definition, source_paths, step, worker_status_message, write_definitions

PREFIX = "/api/step_flow"
LEASE = 600.0
GRACE = 10.0

TWO_STEPS = definition(
    "two_steps",
    [step(0, "job_slow", [source_paths("/in/a.mov", "/in/b.mov")]), step(1, "job_next", [], parent_ids=[0])],
)


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, TWO_STEPS)
    with TestClient(create_app(settings, launcher=actors.launch_workflow.fn)) as client:
        yield client


def launch(api: TestClient) -> int:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def jobs_of(sessions: sessionmaker[Session], workflow_id: int) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.workflow_id == workflow_id).order_by(Job.id)))


def sweep(
    sessions: sessionmaker[Session], leases: dict[str, float] | None = None, resends: int = 2
) -> tuple[tuple[int, int], list[Owed]]:
    """One clock sweep; returns ((silent, abandoned), what it owed)."""
    sent: list[Owed] = []
    rules = Leases(default=LEASE, per_queue=leases or {}, grace=GRACE, busy=BusyResend(resends, 2))
    found = settle_unanswered_jobs(sessions, sent.append, rules, "/test_work_dir")
    return found, sent


def news_aged(sessions: sessionmaker[Session], seconds: float) -> None:
    """Every progression and worker status was received ``seconds`` ago."""
    past = utcnow() - timedelta(seconds=seconds)
    with sessions() as session, session.begin():
        session.execute(update(Progression).values(inserted_at=past))
        session.execute(update(WorkerStatus).values(updated_at=past))


def last_status(sessions: sessionmaker[Session], job_id: int) -> tuple[str, dict[str, Any]]:
    with sessions() as session:
        row = session.execute(
            select(JobStatus.state, JobStatus.description)
            .where(JobStatus.job_id == job_id)
            .order_by(JobStatus.id.desc())
            .limit(1)
        ).one()
    return row.state, row.description


def workflow_status(sessions: sessionmaker[Session], workflow_id: int) -> str:
    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        return workflow.status


def test_a_silent_running_job_ends_in_error_after_its_lease(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    silent, talking = jobs_of(sessions, workflow_id)
    for job in (silent, talking):
        actors.job_progression.fn({"job_id": job.id, "progression": 0, "docker_container_id": "w"})
    news_aged(sessions, LEASE - 30)
    assert sweep(sessions)[0] == (0, 0), "within the lease"
    news_aged(sessions, LEASE + 30)
    actors.job_progression.fn({"job_id": talking.id, "progression": 40, "docker_container_id": "w"})

    found, sent = sweep(sessions)
    assert found == (1, 0)
    states = {job.id: job.state for job in jobs_of(sessions, workflow_id)}
    assert states == {silent.id: "error", talking.id: "processing"}
    assert last_status(sessions, silent.id) == ("error", {"message": "no news from worker"})
    assert workflow_status(sessions, workflow_id) == "error"
    assert sweep(sessions)[0] == (0, 0), "given up once"

    actors.job_completed.fn({"job_id": silent.id, "status": "completed"})  # the worker was only slow
    assert {job.id: job.state for job in jobs_of(sessions, workflow_id)}[silent.id] == "completed"


def test_a_worker_status_naming_the_job_is_a_heartbeat(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    first, second = jobs_of(sessions, workflow_id)
    for job in (first, second):
        actors.job_progression.fn({"job_id": job.id, "progression": 0, "docker_container_id": "w"})
    news_aged(sessions, LEASE + 30)
    worker_status(actors, "worker-1", first.id)
    assert sweep(sessions)[0] == (1, 0)
    assert {job.id: job.state for job in jobs_of(sessions, workflow_id)} == {first.id: "processing", second.id: "error"}


def test_dispatched_jobs_have_no_lease_and_queues_have_their_own(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    waiting, running = jobs_of(sessions, workflow_id)
    with sessions() as session, session.begin():
        session.execute(update(Job).values(updated_at=utcnow() - timedelta(days=1)))
    actors.job_progression.fn({"job_id": running.id, "progression": 0, "docker_container_id": "w"})
    news_aged(sessions, 120)
    assert sweep(sessions)[0] == (0, 0), "the default lease has not run out"
    assert sweep(sessions, {"job_slow": 60})[0] == (1, 0)
    assert {job.id: job.state for job in jobs_of(sessions, workflow_id)} == {waiting.id: "queued", running.id: "error"}


def test_a_job_told_to_stop_that_never_answers_is_stopped_after_the_lease(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    workflow_id = launch(api)
    running, queued = jobs_of(sessions, workflow_id)
    actors.job_progression.fn({"job_id": running.id, "progression": 0, "docker_container_id": "w"})
    assert api.post(f"{PREFIX}/workflows/{workflow_id}/events", json={"event": "abort"}).status_code == 200
    news_aged(sessions, LEASE + 1)
    found, sent = sweep(sessions)
    assert found == (1, 0) and not any(sent), "an aborted workflow starts nothing"
    states = {job.id: job.state for job in jobs_of(sessions, workflow_id) if job.step_id == 0}
    assert states == {running.id: "stopped", queued.id: "stopped"}
    assert last_status(sessions, running.id) == ("stopped", {"message": "no news from worker"})
    assert workflow_status(sessions, workflow_id) == "aborted"


def worker_status(actors: Any, instance_id: str, job_id: int | None) -> None:
    actors.worker_status.fn(worker_status_message(instance_id, "job_slow", job_id))


def test_a_job_its_worker_moved_on_from_is_sent_again_then_fails(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Any
) -> None:
    """SDK 2.2.1, busy when another order reached it, may never answer for the job it ran."""
    workflow_id = launch(api)
    dropped, other = jobs_of(sessions, workflow_id)
    orders.take(2)
    actors.job_progression.fn({"job_id": dropped.id, "progression": 50, "docker_container_id": "worker-1"})
    worker_status(actors, "worker-1", None)
    assert sweep(sessions)[0] == (0, 0), "an idle status right after the news: its answer may be on its way"
    news_aged(sessions, GRACE + 5)
    worker_status(actors, "worker-1", other.id)  # now busy with another job: it moved on
    worker_status(actors, "worker-2", dropped.id)  # another worker's word does not count for worker-1
    with sessions() as session, session.begin():
        session.execute(
            update(WorkerStatus)
            .where(WorkerStatus.instance_id == "worker-2")
            .values(updated_at=utcnow() - timedelta(hours=1))
        )
    assert sweep(sessions)[0] == (0, 1)
    assert last_status(sessions, dropped.id) == (
        "retrying",
        {"message": "the worker moved on without answering for this job", "automatic": True, "attempt": 1},
    )
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == dropped.id).values(send_after=utcnow()))
    with sessions() as session:
        actors.resources.send_owed(undispatched(session, older_than=30))
    ((_, body),) = orders.take(1)
    assert body["job_id"] == dropped.id, "sent again"

    for attempt in (2, 3):  # taken again, dropped again: once more, then it fails (resends=2)
        actors.job_progression.fn({"job_id": dropped.id, "progression": attempt, "docker_container_id": "worker-1"})
        news_aged(sessions, GRACE + 5)
        worker_status(actors, "worker-1", None)
        assert sweep(sessions)[0] == (0, 1)
    assert {job.id: job.state for job in jobs_of(sessions, workflow_id)}[dropped.id] == "error"
    assert last_status(sessions, dropped.id)[1] == {"message": "the worker moved on without answering for this job"}
