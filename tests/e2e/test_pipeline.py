"""End to end: StepFlow's real processes and real MCAI SDK workers on a fresh vhost.

A two-step workflow over two source files completes with the right orders and files; a
worker raising an exception puts its job and the workflow in error (and Slack hears of it); a step whose queue no
worker serves gets the queue-not-found error; a workflow posted while the bridge and the
actors are stopped completes once they start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.processes import StepFlowProcesses
from tests.e2e.stack import EXPOSED_DOMAIN, api, eventually, launch, parameter, wait_for_status, worker
from tests.e2e.workers import SdkWorker, read_order_log
from tests.http_server import RecordingServer


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
    # Written by step 0 (a copy: it replaces the file), appended by step 1. Delivery is
    # at least once: an order may run twice (the SDK rejects one that arrives while it is busy and
    # gets it back 5 s later), even after the next step ran, so the file's writers are those the
    # worker's own log of runs implies, and both steps' jobs ran.
    runs = read_order_log(e2e_dir / "orders-job_copy.jsonl")
    expected: list[str] = []
    for run in runs:
        if run["parameters"].get("destination_path") == base + "a.txt":
            copies = run["parameters"].get("source_path") != base + "a.txt"
            expected = [f"job {run['job_id']}"] if copies else [*expected, f"job {run['job_id']}"]
    assert {f"job {first_step[1]['id']}", f"job {second_step[1]['id']}"} <= {f"job {run['job_id']}" for run in runs}
    writers = [line for line in (Path(base) / "a.txt").read_text().splitlines() if line.startswith("job ")]
    assert writers == expected

    received = {entry["job_id"]: entry["parameters"] for entry in runs}
    for job in jobs:
        assert received[job["id"]]["source_path"] == parameter(job, "source_path")
        assert received[job["id"]]["destination_path"] == parameter(job, "destination_path")
    print(f"\ncopy_twice: 4 jobs in {elapsed:.2f}s ({4 / elapsed:.1f} job orders/s)")


def test_a_failing_worker_puts_job_and_workflow_in_error_and_tells_slack(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path, webhooks: RecordingServer
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
    expected = {
        "channel": "#e2e-alerts",
        "text": f"Error for job job_fail #{job['id']} <{EXPOSED_DOMAIN}/workflows/{workflow_id} |Open Workflow>\n"
        "```RuntimeError: asked to fail```",
    }

    def slack_messages() -> list[dict[str, Any]]:
        return [json.loads(request.body) for request in webhooks.requests_to("/slack/chat.postMessage")]

    eventually(lambda: expected in slack_messages(), "the Slack message", stepflow)
    (request,) = [r for r in webhooks.requests_to("/slack/chat.postMessage") if json.loads(r.body) == expected]
    assert request.headers["authorization"] == "Bearer xoxb-e2e"


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
