"""Helpers of the end-to-end tests: definitions, SDK workers, and reading StepFlow's API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.e2e.processes import StepFlowProcesses
from tests.e2e.workers import SdkWorker, start_worker, wait_until_consuming
from tests.support import definition, source_paths, step

WORKER_EMAIL = "worker@example.com"
WORKER_PASSWORD = "worker-password"
T = TypeVar("T")
INPUTS = ("a.txt", "b.txt", "c.txt", "x.txt", "y.txt")
EXPOSED_DOMAIN = "http://stepflow.e2e"
LONELY_LEASE = 4
"""Seconds of silence after which a ``job_lonely`` job is given up (``STEPFLOW_JOB_LEASES``)."""


def copy_workflow(identifier: str, queue: str, inputs: list[str]) -> dict[str, Any]:
    return definition(
        identifier,
        [
            step(0, queue, [source_paths(*inputs)]),
            step(1, queue, [{"id": "message", "type": "string", "value": "second pass"}], parent_ids=[0]),
        ],
    )


def sleeping(identifier: str, queue: str, sleep_ms: int, inputs: list[str]) -> dict[str, Any]:
    """One step whose jobs run ``sleep_ms`` (stoppable: the copy worker checks ``is_stopped``)."""
    return definition(
        identifier, [step(0, queue, [source_paths(*inputs), {"id": "sleep_ms", "type": "integer", "value": sleep_ms}])]
    )


def showcase_workflow(inputs: list[str], hook_url: str) -> dict[str, Any]:
    """A false condition, a fork and join, a one_for_many step and a webhook notification."""
    return definition(
        "showcase",
        [
            step(0, "job_copy", [source_paths(*inputs)]),
            step(1, "job_copy", [], parent_ids=[0], condition="length(source_paths) > 5"),
            step(2, "job_copy", [{"id": "message", "type": "string", "value": "branch"}], parent_ids=[0]),
            step(3, "job_copy", [], parent_ids=[1, 2], mode="one_for_many"),
            step(
                4,
                "job_notify",
                [
                    {"id": "url", "type": "string", "value": hook_url},
                    {"id": "headers", "type": "string", "value": '{"content-type": "application/json"}'},
                    {
                        "id": "body",
                        "type": "template",
                        "value": '{"workflow": {workflow_id}, "files": <%= length(source_paths) %>}',
                    },
                ],
                parent_ids=[3, 0],
                required_to_start=[3],
                mode="notification",
            ),
        ],
    )


def worker(
    stepflow: StepFlowProcesses,
    amqp: dict[str, Any],
    e2e_dir: Path,
    work_dir: Path,
    queue: str,
    consumers: int = 1,
    **options: Any,
) -> SdkWorker:
    """Start an SDK copy worker on ``queue``; returns once the queue has ``consumers`` consumers."""
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
    wait_until_consuming(queue, amqp=amqp, worker=started, min_consumers=consumers)
    return started


def api(stepflow: StepFlowProcesses) -> str:
    return f"http://127.0.0.1:{stepflow.port}/api/step_flow"


def launch(stepflow: StepFlowProcesses, identifier: str) -> int:
    response = httpx.post(f"{api(stepflow)}/workflows", json={"workflow_identifier": identifier, "reference": "e2e"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def view(stepflow: StepFlowProcesses, workflow_id: int) -> dict[str, Any]:
    return httpx.get(f"{api(stepflow)}/workflows/{workflow_id}").json()["data"]


def wait_for(
    stepflow: StepFlowProcesses, workflow_id: int, done: Any, what: str, timeout: float = 90.0
) -> dict[str, Any]:
    """Poll the workflow's full view until ``done(view)`` holds."""
    deadline = time.monotonic() + timeout
    current: dict[str, Any] = {}
    while time.monotonic() < deadline:
        current = view(stepflow, workflow_id)
        if done(current):
            return current
        time.sleep(0.2)
    raise AssertionError(
        f"workflow {workflow_id}: {what} not reached (status {current.get('status')!r})\n"
        f"{json.dumps(current.get('jobs'), indent=1)[-3000:]}\n{stepflow.tails()}"
    )


def eventually(check: Callable[[], T | None], what: str, stepflow: StepFlowProcesses, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something other than None (or falsy), and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s\n{stepflow.tails()}")


def workers_of(stepflow: StepFlowProcesses, queue: str) -> list[dict[str, Any]]:
    """The ``/workers`` entries of the workers of ``queue`` that did not terminate."""
    listed = httpx.get(f"{api(stepflow)}/workers", params={"size": 100}).json()["data"]
    return [entry for entry in listed if entry["queue_name"] == queue and entry["activity"] != "Terminated"]


def wait_for_status(
    stepflow: StepFlowProcesses, workflow_id: int, expected: str, timeout: float = 90.0
) -> dict[str, Any]:
    return wait_for(stepflow, workflow_id, lambda current: current["status"] == expected, f"status {expected}", timeout)


def running_job(stepflow: StepFlowProcesses, workflow_id: int) -> dict[str, Any]:
    """Wait until a job of the workflow is ``processing`` (a worker took it); return it."""
    current = wait_for(
        stepflow,
        workflow_id,
        lambda current: any(job["state"] == "processing" for job in current["jobs"]),
        "a job processing",
        timeout=60,
    )
    return next(job for job in current["jobs"] if job["state"] == "processing")


def parameter(job: dict[str, Any], identifier: str) -> Any:
    return next(p["value"] for p in job["params"] if p["id"] == identifier)
