"""Driving one workflow through the real actors, API and database, the way the scenarios read.

A :class:`Run` wraps a launched workflow: worker answers go to the actors' functions
(``job_completed``, ``job_error``, ``job_progression``, ``job_stopped``, ``job_queue_not_found``,
``run_notification``), events go through ``POST /workflows/:id/events``, and every check reads
committed state (the database or the API's full view), never a return value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pika
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.models import Artifact, Job, JobStatus, Workflow, WorkflowStatus, WorkflowStep
from stepflow.wire.topology import JOB_QUEUE_NOT_FOUND, declare_job_submit
from tests.integration.broker import Capture

PREFIX = "/api/step_flow"
WORK_DIR = "/test_work_dir"


# ------------------------------------------------------------------ parameters (engine.md §13.0)


def SP(*paths: str) -> dict[str, Any]:  # noqa: N802 (the catalogue's names)
    return {"id": "source_paths", "type": "array_of_strings", "value": list(paths)}


def DP(value: str) -> dict[str, Any]:  # noqa: N802
    return {"id": "destination_path", "type": "string", "value": value}


def SRC(value: str) -> dict[str, Any]:  # noqa: N802
    return {"id": "source_path", "type": "string", "value": value}


def REQ(*paths: str) -> dict[str, Any]:  # noqa: N802
    return {"id": "requirements", "type": "requirements", "value": {"paths": list(paths)}}


def string(identifier: str, value: str) -> dict[str, Any]:
    return {"id": identifier, "type": "string", "value": value}


def counters(
    *, queued: int = 0, processing: int = 0, completed: int = 0, errors: int = 0, skipped: int = 0, stopped: int = 0
) -> dict[str, int]:
    """The ``jobs`` object of a step in the API's full view (one bucket per job, ours.md §3.4)."""
    return {
        "total": queued + processing + completed + errors + skipped + stopped,
        "completed": completed,
        "errors": errors,
        "processing": processing,
        "queued": queued,
        "skipped": skipped,
        "stopped": stopped,
    }


# ------------------------------------------------------------------------------- job orders


@dataclass(frozen=True)
class Order:
    """One job order as a worker queue would receive it."""

    routing_key: str
    priority: int | None
    delivery_mode: int | None
    body: dict[str, Any]


def take_orders(capture: Capture, count: int, timeout: float = 10.0) -> list[Order]:
    """Read up to ``count`` orders from a capture bound to ``job_submit`` (waits ``timeout``)."""
    found: list[Order] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        method, properties, body = capture.channel.basic_get(capture.queue, auto_ack=True)
        if method is None:
            capture.connection.sleep(0.05)
            continue
        found.append(Order(method.routing_key, properties.priority, properties.delivery_mode, json.loads(body)))
    return found


def no_more_orders(capture: Capture) -> bool:
    return take_orders(capture, 1, timeout=0.3) == []


def fresh_queue_not_found(amqp_url: str) -> None:
    """Declare ``job_submit`` and ``job_queue_not_found`` as StepFlow does (idempotent), then
    empty the queue of the orders earlier tests of the run left unrouted there."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        declare_job_submit(channel)
        channel.queue_purge(JOB_QUEUE_NOT_FOUND)
    finally:
        connection.close()


# ------------------------------------------------------------------------------------ a run


def launch(api: TestClient, identifier: str, parameters: dict[str, Any] | None = None) -> int:
    body: dict[str, Any] = {"workflow_identifier": identifier, "reference": "some id"}
    if parameters is not None:
        body["parameters"] = parameters
    response = api.post(f"{PREFIX}/workflows", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


@dataclass
class Run:
    """One launched workflow; ``W`` is its id."""

    api: TestClient
    sessions: sessionmaker[Session]
    actors: Any
    W: int  # noqa: N815 (the catalogue's name)

    @classmethod
    def start(
        cls,
        api: TestClient,
        sessions: sessionmaker[Session],
        actors: Any,
        identifier: str,
        parameters: dict[str, Any] | None = None,
    ) -> Run:
        """Launch through the API; the app's launcher is ``launch_workflow.fn``, so it has run."""
        return cls(api, sessions, actors, launch(api, identifier, parameters))

    # --- paths of this workflow
    def wd(self, filename: str) -> str:
        return f"{WORK_DIR}/{self.W}/{filename}"

    # --- reading state
    def jobs(self, step_id: int | None = None) -> list[Job]:
        with self.sessions() as session:
            query = select(Job).where(Job.workflow_id == self.W).order_by(Job.id)
            if step_id is not None:
                query = query.where(Job.step_id == step_id)
            return list(session.scalars(query))

    def job(self, step_id: int) -> Job:
        """The first (lowest id) job of the step."""
        jobs = self.jobs(step_id)
        assert jobs, f"step {step_id} has no job"
        return jobs[0]

    @property
    def total(self) -> int:
        return len(self.jobs())

    def count(self, step_id: int) -> int:
        return len(self.jobs(step_id))

    def view(self) -> dict[str, Any]:
        response = self.api.get(f"{PREFIX}/workflows/{self.W}")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def counts(self, step_id: int) -> dict[str, int]:
        """``steps[i].jobs`` of the API's full view."""
        (step,) = [s for s in self.view()["steps"] if s["id"] == step_id]
        return step["jobs"]

    def step_status(self, step_id: int) -> str:
        (step,) = [s for s in self.view()["steps"] if s["id"] == step_id]
        return step["status"]

    def table_counts(self, step_id: int) -> dict[str, int]:
        """The same counters, read from the ``workflow_steps`` table."""
        with self.sessions() as session:
            row = session.get(WorkflowStep, (self.W, step_id))
            assert row is not None
            return counters(
                queued=row.queued,
                processing=row.processing,
                completed=row.completed,
                errors=row.errors,
                skipped=row.skipped,
                stopped=row.stopped,
            )

    @property
    def status(self) -> str:
        with self.sessions() as session:
            workflow = session.get(Workflow, self.W)
            assert workflow is not None
            return workflow.status

    @property
    def parameters(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            workflow = session.get(Workflow, self.W)
            assert workflow is not None
            return list(workflow.parameters)

    def status_history(self) -> list[str]:
        with self.sessions() as session:
            rows = session.scalars(
                select(WorkflowStatus).where(WorkflowStatus.workflow_id == self.W).order_by(WorkflowStatus.id)
            )
            return [row.state for row in rows]

    def status_causes(self) -> list[tuple[str, int | None, str | None]]:
        """Workflow status rows as (state, job id, job state) of the job status that caused them."""
        with self.sessions() as session:
            rows = session.execute(
                select(WorkflowStatus.state, JobStatus.job_id, JobStatus.state)
                .outerjoin(JobStatus, JobStatus.id == WorkflowStatus.job_status_id)
                .where(WorkflowStatus.workflow_id == self.W)
                .order_by(WorkflowStatus.id)
            )
            return [(state, job_id, job_state) for state, job_id, job_state in rows]

    def history(self, job: Job | int) -> list[tuple[str, dict[str, Any]]]:
        job_id = job if isinstance(job, int) else job.id
        with self.sessions() as session:
            rows = session.scalars(select(JobStatus).where(JobStatus.job_id == job_id).order_by(JobStatus.id))
            return [(row.state, row.description) for row in rows]

    def states(self, job: Job | int) -> list[str]:
        return [state for state, _ in self.history(job)]

    def artifacts(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.scalars(select(Artifact).where(Artifact.workflow_id == self.W).order_by(Artifact.id))
            return [row.resources for row in rows]

    # --- worker answers (through the actors)
    def complete(self, job: Job, **fields: Any) -> None:
        self.actors.job_completed.fn({"job_id": job.id, "status": "completed", **fields})

    def complete_step(self, step_id: int) -> None:
        """Complete every job of the step that still runs (engine §13.0 ``complete_jobs``)."""
        for job in self.jobs(step_id):
            if job.state in ("queued", "processing", "retrying"):
                self.complete(job)

    def fail(self, job: Job, message: str = "RuntimeError: boom") -> None:
        self.actors.job_error.fn(
            {"job_id": job.id, "status": "error", "parameters": [{"id": "message", "type": "string", "value": message}]}
        )

    _clock = datetime(2026, 1, 1, tzinfo=UTC)

    def progress(self, job: Job, progression: int = 50) -> None:
        """A progression with a fresh worker timestamp (a redelivery would repeat it)."""
        Run._clock += timedelta(seconds=1)
        stamp = Run._clock.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
        self.actors.job_progression.fn(
            {"job_id": job.id, "progression": progression, "datetime": stamp, "docker_container_id": "c0ffee"}
        )

    def stop(self, job: Job) -> None:
        self.actors.job_stopped.fn({"job_id": job.id, "status": "stopped"})

    def queue_not_found(self, job: Job) -> None:
        """The handler of an order dead-lettered to ``job_queue_not_found`` (the order itself)."""
        self.actors.job_queue_not_found.fn({"job_id": job.id, "parameters": job.parameters})

    def notify(self, job: Job) -> None:
        """The notifier actor runs the notification job (what its Dramatiq worker would do)."""
        self.actors.run_notification.fn(job.id)

    # --- events
    def event(self, body: dict[str, Any], client: TestClient | None = None) -> httpx.Response:
        return (client or self.api).post(f"{PREFIX}/workflows/{self.W}/events", json=body)

    def retry(self, job: Job, client: TestClient | None = None) -> httpx.Response:
        return self.event({"event": "retry", "job_id": job.id}, client)
