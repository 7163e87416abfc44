"""Metrics across processes: web, actors and bridge run as separate ``stepflow`` processes that
share one ``PROMETHEUS_MULTIPROC_DIR``; a fake worker completes or fails their job orders over
AMQP; ``/metrics`` then shows what happened, whichever process counted it (the web counts
launches, the actors status changes, the bridge worker messages)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select

from stepflow.models import Artifact, Workflow
from stepflow.wire.topology import JOB_RESPONSE, JOB_SUBMIT, declare_job_submit
from tests.conftest import VHOST, fresh_vhost
from tests.e2e.processes import StepFlowProcesses, free_port
from tests.e2e.stack import api, launch
from tests.support import definition, source_paths, step, write_definitions

QUEUES = {"metrics_ok": "job_metrics_ok", "metrics_fail": "job_metrics_fail", "metrics_idle": "job_metrics_idle"}
WORK_SECONDS = 0.3
"""How long the fake worker takes before it answers, so workflows last at least that."""
SCRAPER = ("scraper", "scrape-secret")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeWorker:
    """Consumes the orders of the ok and fail queues; answers ``job_completed`` or ``job_error``
    after :data:`WORK_SECONDS`. The idle queue is bound but nobody consumes it."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        declare_job_submit(self.channel)
        for queue in QUEUES.values():
            self.channel.queue_declare(queue, durable=True, arguments={"x-max-priority": 100})
            self.channel.queue_bind(queue, JOB_SUBMIT, routing_key=queue)
        self.channel.basic_consume(QUEUES["metrics_ok"], lambda *delivery: self.answer("completed", *delivery))
        self.channel.basic_consume(QUEUES["metrics_fail"], lambda *delivery: self.answer("error", *delivery))
        self.thread = threading.Thread(target=self.channel.start_consuming, daemon=True)
        self.thread.start()

    def answer(self, status: str, channel: Any, method: Any, _: Any, body: bytes) -> None:
        time.sleep(WORK_SECONDS)
        answer: dict[str, Any] = {"job_id": json.loads(body)["job_id"], "status": status}
        if status == "error":
            answer["parameters"] = [{"id": "message", "type": "string", "value": "boom"}]
        channel.basic_publish(JOB_RESPONSE, f"job_{status}", json.dumps(answer).encode())
        channel.basic_ack(method.delivery_tag)

    def publish(self, routing_key: str, message: dict[str, Any]) -> None:
        self.connection.add_callback_threadsafe(
            lambda: self.channel.basic_publish(JOB_RESPONSE, routing_key, json.dumps(message).encode())
        )

    def stop(self) -> None:
        self.connection.add_callback_threadsafe(self.channel.stop_consuming)
        self.thread.join(timeout=10)
        self.connection.close()


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, metrics_dir: Path
) -> Iterator[StepFlowProcesses]:
    folder = tmp_path_factory.mktemp("metrics_stack")
    definitions = write_definitions(
        folder / "definitions",
        *(
            definition(identifier, [step(0, queue, [source_paths("/in/a.mov")])])
            for identifier, queue in QUEUES.items()
        ),
    )
    with fresh_vhost(f"{VHOST}_metrics") as amqp_url:
        environment = {
            "PATH": os.environ["PATH"],
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "PORT": str(free_port()),
            "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions),
            "STEPFLOW_AUTH_ANONYMOUS": "true",
            "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
            "STEPFLOW_METRICS_BASIC_AUTH": ":".join(SCRAPER),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "STEPFLOW_LOG_LEVEL": "info",
        }
        processes = StepFlowProcesses(environment, folder)
        processes.start("serve", "actors", "bridge")
        try:
            yield processes
        finally:
            processes.stop()


@pytest.fixture(scope="module")
def worker(stack: StepFlowProcesses) -> Iterator[FakeWorker]:
    started = FakeWorker(stack.environment["AMQP_URL"])
    yield started
    started.stop()


def wait_for_status(stack: StepFlowProcesses, workflow_ids: list[int], status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [httpx.get(f"{api(stack)}/workflows/{id_}").json()["data"]["status"] for id_ in workflow_ids]
        if all(current == status for current in statuses):
            return
        time.sleep(0.2)
    raise AssertionError(f"workflows {workflow_ids} not all {status}: {statuses}\n{stack.tails()}")


def scrape(stack: StepFlowProcesses) -> Samples:
    authorization = "Basic " + base64.b64encode(":".join(SCRAPER).encode()).decode()
    response = httpx.get(f"{api(stack)}/metrics", headers={"Authorization": authorization})
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def eventually(stack: StepFlowProcesses, expected: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> Samples:
    """Scrape until every expected sample has its value (the last messages may still be settling)."""
    deadline = time.monotonic() + 20
    while True:
        samples = scrape(stack)
        wrong = {key: samples.get(key) for key, value in expected.items() if samples.get(key) != value}
        if not wrong:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"unexpected samples: {wrong}\n{stack.tails()}")
        time.sleep(0.3)


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_metrics_add_up_what_every_process_did(
    stack: StepFlowProcesses, worker: FakeWorker, metrics_dir: Path, database_url: str
) -> None:
    done = [launch(stack, "metrics_ok") for _ in range(3)]
    failed = [launch(stack, "metrics_fail") for _ in range(2)]
    idle = launch(stack, "metrics_idle")
    worker.publish("job_error", {"status": "error", "message": "missing field `type`"})  # noise: no job_id
    wait_for_status(stack, done, "completed")
    wait_for_status(stack, failed, "error")

    ok, fail, nobody = QUEUES["metrics_ok"], QUEUES["metrics_fail"], QUEUES["metrics_idle"]
    running = eventually(
        stack,
        {
            key("stepflow_workflows_created_total", identifier="metrics_ok"): 3,
            key("stepflow_workflows_created_total", identifier="metrics_fail"): 2,
            key("stepflow_workflows_created_total", identifier="metrics_idle"): 1,
            key("stepflow_workflows_completed_total", identifier="metrics_ok"): 3,
            key("stepflow_workflows_error_total", identifier="metrics_fail"): 2,
            key("stepflow_jobs_total", queue=ok, status="queued"): 3,
            key("stepflow_jobs_total", queue=ok, status="completed"): 3,
            key("stepflow_jobs_total", queue=fail, status="error"): 2,
            key("stepflow_jobs_in_flight", queue=nobody): 1,
            key("stepflow_workflows_created_window", identifier="metrics_ok"): 3,
            key("stepflow_workflows_created_window", identifier="metrics_fail"): 2,
        },
    )
    assert key("stepflow_workflows_completed_total", identifier="metrics_fail") not in running
    assert key("stepflow_jobs_in_flight", queue=ok) not in running, "nothing of the ok queue is in flight"

    engine = create_engine(database_url)
    with engine.connect() as connection:
        ended = (
            select(Workflow.inserted_at, func.max(Artifact.inserted_at))
            .join(Artifact, Artifact.workflow_id == Workflow.id)
            .where(Workflow.id.in_(done))
            .group_by(Workflow.id)
        )
        durations = [(last - created).total_seconds() for created, last in connection.execute(ended)]
    engine.dispose()
    assert len(durations) == 3 and min(durations) >= WORK_SECONDS
    average = running[key("stepflow_workflow_duration_window_seconds", identifier="metrics_ok")]
    assert average == pytest.approx(sum(durations) / len(durations), abs=1e-6)

    assert httpx.post(f"{api(stack)}/workflows/{idle}/events", json={"event": "abort"}).status_code == 200
    bridge = {"process": "bridge"}
    final = eventually(
        stack,
        {
            key("stepflow_workflows_aborted_total", identifier="metrics_idle"): 1,
            key("stepflow_jobs_total", queue=nobody, status="stopped"): 1,
            key(
                "stepflow_messages_total", **bridge, queue="job_completed", actor="job_answers", outcome="decided"
            ): 3,
            key("stepflow_messages_total", **bridge, queue="job_error", actor="job_answers", outcome="decided"): 2,
            key("stepflow_messages_total", **bridge, queue="job_error", actor="job_answers", outcome="noise"): 1,
            key(
                "stepflow_messages_total",
                process="actors",
                queue="stepflow.workflows",
                actor="launch_workflow",
                outcome="success",
            ): 6,
            key(
                "stepflow_message_seconds_count",
                **bridge,
                queue="job_completed",
                actor="job_answers",
                outcome="decided",
            ): 3,
        },
    )
    handed = [name for name, labels in final if ("queue", "stepflow.jobs") in labels]
    assert handed == [], "the bridge decided every job answer: no actor took one"
    assert key("stepflow_jobs_in_flight", queue=nobody) not in final, "the stopped job left the flight"
    writers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("*.db")}
    assert len(writers) >= 3, f"web, actors and bridge each write their own files: {sorted(writers)}"
