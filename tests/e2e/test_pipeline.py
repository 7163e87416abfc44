"""End to end: StepFlow's real processes and real MCAI SDK workers on a fresh vhost.

A two-step workflow over two source files completes with the right orders and files; a
worker raising an exception puts its job and the workflow in error; a step whose queue no
worker serves gets the queue-not-found error; a workflow posted while the bridge and the
actors are stopped completes once they start.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepflow.security import hash_password
from tests.e2e.processes import StepFlowProcesses, free_port
from tests.e2e.workers import SdkWorker, read_order_log, start_worker, wait_until_consuming
from tests.support import definition, source_paths, step, write_definitions

WORKER_EMAIL = "worker@example.com"
WORKER_PASSWORD = "worker-password"


def copy_workflow(identifier: str, queue: str, inputs: list[str]) -> dict[str, Any]:
    return definition(
        identifier,
        [
            step(0, queue, [source_paths(*inputs)]),
            step(1, queue, [{"id": "message", "type": "string", "value": "second pass"}], parent_ids=[0]),
        ],
    )


@pytest.fixture(scope="module")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def work_dir(e2e_dir: Path) -> Path:
    folder = e2e_dir / "work"
    (folder / "in").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / "in" / name).write_text(f"content of {name}\n")
    return folder


@pytest.fixture(scope="module")
def stepflow(database_url: str, amqp_url: str, e2e_dir: Path, work_dir: Path) -> Iterator[StepFlowProcesses]:
    inputs = [str(work_dir / "in" / name) for name in ("b.txt", "a.txt")]
    definitions = write_definitions(
        e2e_dir / "definitions",
        copy_workflow("copy_twice", "job_copy", inputs),
        definition("failing", [step(0, "job_fail", [source_paths(inputs[0])])]),
        definition("nobody", [step(0, "job_nobody", [source_paths(inputs[0])])]),
        copy_workflow("copy_later", "job_copy", [str(work_dir / "in" / "c.txt")]),
    )
    users = {WORKER_EMAIL: {"password_hash": hash_password(WORKER_PASSWORD), "groups": ["administrator"]}}
    environment = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "PORT": str(free_port()),
        "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions),
        "STEPFLOW_WORKERS_WORK_DIRECTORY": str(work_dir),
        "STEPFLOW_AUTH_ANONYMOUS": "true",
        "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
        "STEPFLOW_AUTH_USERS": json.dumps(users),
        "STEPFLOW_SESSION_SECRET": "e2e-secret",
        "STEPFLOW_CLOCK_INTERVAL": "0.5",
        "STEPFLOW_OUTBOX_RESEND_AFTER": "2",
        "STEPFLOW_DISPATCH_RESEND_AFTER": "5",
        "STEPFLOW_LOG_LEVEL": "info",
    }
    processes = StepFlowProcesses(environment, e2e_dir)
    processes.start("serve", "actors", "bridge", "clock")
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture(scope="module")
def amqp(amqp_url: str) -> dict[str, Any]:
    vhost = amqp_url.rsplit("/", 1)[1]
    return {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest", "vhost": vhost}


def worker(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path, queue: str, **options: Any
) -> SdkWorker:
    started = start_worker(
        queue,
        amqp=amqp,
        backend_url=f"http://127.0.0.1:{stepflow.port}/api",
        username=WORKER_EMAIL,
        password=WORKER_PASSWORD,
        work_dir=work_dir,
        log_file=e2e_dir / f"orders-{queue}.jsonl",
        **options,
    )
    wait_until_consuming(queue, amqp=amqp, worker=started)
    return started


@pytest.fixture(scope="module")
def copy_worker(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> Iterator[SdkWorker]:
    started = worker(stepflow, amqp, e2e_dir, work_dir, "job_copy")
    yield started
    started.stop()


def api(stepflow: StepFlowProcesses) -> str:
    return f"http://127.0.0.1:{stepflow.port}/api/step_flow"


def launch(stepflow: StepFlowProcesses, identifier: str) -> int:
    response = httpx.post(f"{api(stepflow)}/workflows", json={"workflow_identifier": identifier, "reference": "e2e"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def wait_for_status(
    stepflow: StepFlowProcesses, workflow_id: int, expected: str, timeout: float = 90.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = httpx.get(f"{api(stepflow)}/workflows/{workflow_id}").json()["data"]
        if view["status"] == expected:
            return view
        time.sleep(0.2)
    raise AssertionError(
        f"workflow {workflow_id} is {view.get('status')!r}, expected {expected!r}\n"
        f"{json.dumps(view.get('jobs'), indent=1)[-3000:]}\n{stepflow.tails()}"
    )


def parameter(job: dict[str, Any], identifier: str) -> Any:
    return next(p["value"] for p in job["params"] if p["id"] == identifier)


def test_two_steps_over_two_files_complete(
    stepflow: StepFlowProcesses, copy_worker: SdkWorker, e2e_dir: Path, work_dir: Path
) -> None:
    started = time.monotonic()
    workflow_id = launch(stepflow, "copy_twice")
    view = wait_for_status(stepflow, workflow_id, "completed")
    elapsed = time.monotonic() - started
    jobs = view["jobs"]
    base = f"{work_dir}/{workflow_id}/"
    first_step = [job for job in jobs if job["step_id"] == 0]
    second_step = [job for job in jobs if job["step_id"] == 1]
    assert [parameter(job, "source_path") for job in first_step] == [f"{work_dir}/in/b.txt", f"{work_dir}/in/a.txt"]
    assert [parameter(job, "destination_path") for job in first_step] == [base + "b.txt", base + "a.txt"]
    # Every job but the first-sorted input's waits for that one's output (engine.md §5.3).
    assert parameter(first_step[0], "requirements") == {"paths": [base + "a.txt"]}
    assert parameter(first_step[1], "requirements") == {"paths": []}
    assert [parameter(job, "source_path") for job in second_step] == [base + "b.txt", base + "a.txt"]
    assert [parameter(job, "destination_path") for job in second_step] == [base + "b.txt", base + "a.txt"]
    assert all(parameter(job, "message") == "second pass" for job in second_step)
    assert [s["status"] for s in view["steps"]] == ["completed", "completed"]
    assert all(job["state"] == "completed" for job in jobs)
    assert (Path(base) / "a.txt").read_text().startswith("content of a.txt\n")
    # Written by step 0, appended by step 1. The SDK may run a job twice (it rejects an order that
    # arrives while it is busy and gets it back 5 s later): StepFlow's state is the same, so
    # only the set of writers is checked.
    writers = {line for line in (Path(base) / "a.txt").read_text().splitlines() if line.startswith("job ")}
    assert writers == {f"job {first_step[1]['id']}", f"job {second_step[1]['id']}"}

    received = {entry["job_id"]: entry["parameters"] for entry in read_order_log(e2e_dir / "orders-job_copy.jsonl")}
    for job in jobs:
        assert received[job["id"]]["source_path"] == parameter(job, "source_path")
        assert received[job["id"]]["destination_path"] == parameter(job, "destination_path")
    print(f"\ncopy_twice: 4 jobs in {elapsed:.2f}s ({4 / elapsed:.1f} job orders/s)")


def test_a_failing_worker_puts_job_and_workflow_in_error(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> None:
    failing = worker(stepflow, amqp, e2e_dir, work_dir, "job_fail", fail="asked to fail")
    try:
        workflow_id = launch(stepflow, "failing")
        view = wait_for_status(stepflow, workflow_id, "error")
    finally:
        failing.stop()
    (job,) = view["jobs"]
    assert job["state"] == "error"
    assert job["status"][-1]["state"] == "error"
    assert job["status"][-1]["description"] == {"message": "RuntimeError: asked to fail"}
    assert view["steps"][0]["status"] == "error"


def test_a_queue_no_worker_serves_gets_queue_not_found(stepflow: StepFlowProcesses) -> None:
    workflow_id = launch(stepflow, "nobody")
    view = wait_for_status(stepflow, workflow_id, "error")
    (job,) = view["jobs"]
    assert job["status"][-1]["description"] == {"message": "No worker is started with this queue name."}


def test_a_workflow_posted_while_bridge_and_actors_are_down_completes_later(
    stepflow: StepFlowProcesses, copy_worker: SdkWorker
) -> None:
    stepflow.stop("actors", "bridge")
    try:
        workflow_id = launch(stepflow, "copy_later")
        time.sleep(1.5)
        assert httpx.get(f"{api(stepflow)}/workflows/{workflow_id}").json()["data"]["status"] == "pending"
    finally:
        stepflow.start("actors", "bridge")
    view = wait_for_status(stepflow, workflow_id, "completed")
    assert len(view["jobs"]) == 2
