"""End to end, the engine's semantics with a real SDK worker: a false condition, a fork and
join, a one_for_many step and a webhook notification complete; abort of a running workflow
leaves no job running or queued, and the black-listed order never runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.processes import StepFlowProcesses
from tests.e2e.stack import api, launch, parameter, running_job, view, wait_for, wait_for_status
from tests.e2e.workers import SdkWorker, read_order_log
from tests.http_server import RecordingServer


def test_condition_fork_join_one_for_many_and_webhook(
    stepflow: StepFlowProcesses, copy_worker: SdkWorker, work_dir: Path, webhooks: RecordingServer
) -> None:
    workflow_id = launch(stepflow, "showcase")
    done = wait_for_status(stepflow, workflow_id, "completed")
    by_step = {step_id: [job for job in done["jobs"] if job["step_id"] == step_id] for step_id in range(5)}
    base = f"{work_dir}/{workflow_id}/"
    assert [s["status"] for s in done["steps"]] == ["completed", "skipped", "completed", "completed", "completed"]
    assert [job["state"] for job in by_step[1]] == ["skipped"], "length(source_paths) > 5 is false"
    assert [parameter(job, "source_path") for job in by_step[2]] == [base + "a.txt", base + "b.txt"]
    (gathered,) = by_step[3]
    assert parameter(gathered, "source_paths") == [base + "a.txt", base + "b.txt"], "the join reads the live branch"
    (notification,) = by_step[4]
    assert notification["state"] == "completed"
    hook_calls = [request for request in webhooks.requests_to("/hook") if str(workflow_id) in request.body]
    assert len(hook_calls) == 1
    assert json.loads(hook_calls[0].body) == {"workflow": workflow_id, "files": 2}
    assert hook_calls[0].headers["content-type"] == "application/json"


def test_abort_of_a_running_workflow_leaves_nothing_running_or_queued(
    stepflow: StepFlowProcesses, copy_worker: SdkWorker, e2e_dir: Path
) -> None:
    workflow_id = launch(stepflow, "long_running")
    busy = running_job(stepflow, workflow_id)
    (waiting,) = [job for job in view(stepflow, workflow_id)["jobs"] if job["id"] != busy["id"]]
    response = httpx.post(f"{api(stepflow)}/workflows/{workflow_id}/events", json={"event": "abort"})
    assert response.status_code == 200, response.text
    assert view(stepflow, workflow_id)["status"] == "aborted", "aborted at once"
    stopped = wait_for(
        stepflow,
        workflow_id,
        lambda current: all(job["state"] not in ("queued", "processing", "retrying") for job in current["jobs"]),
        "every job final",
        timeout=60,
    )
    assert {job["id"]: job["state"] for job in stopped["jobs"]} == {busy["id"]: "stopped", waiting["id"]: "stopped"}
    assert stopped["status"] == "aborted"
    time.sleep(2)  # give a wrongly delivered order time to show up in the worker's log
    ran = {entry["job_id"] for entry in read_order_log(e2e_dir / "orders-job_copy.jsonl")}
    assert waiting["id"] not in ran, "a black-listed order is dropped by the worker"
    assert httpx.get(f"{api(stepflow)}/blacklist").json()["data"] == [waiting["id"]]


def test_workers_answer_the_status_broadcast_and_are_listed(
    stepflow: StepFlowProcesses, copy_worker: SdkWorker
) -> None:
    """The clock asks every worker for its status; the bridge stores the answers (/workers)."""
    deadline = time.monotonic() + 30
    listed: list[dict] = []
    while time.monotonic() < deadline:
        listed = [w for w in httpx.get(f"{api(stepflow)}/workers").json()["data"] if w["queue_name"] == "job_copy"]
        if listed:
            break
        time.sleep(0.3)
    assert listed, f"no job_copy worker listed\n{stepflow.tails()}"
    assert listed[0]["activity"] in ("Idle", "Busy")
    assert listed[0]["label"] == "copy_worker"
    shown = httpx.get(f"{api(stepflow)}/workers/{listed[0]['instance_id']}").json()
    assert shown["instance_id"] == listed[0]["instance_id"]
