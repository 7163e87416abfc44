"""End to end, the MCAI protocol with real SDK workers: discovery, status, two workers on one
queue, stop, stop/resume consuming through ``PUT /workers/:id``, a worker killed mid-job, and
the silence lease when no worker is left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import StepFlowProcesses
from tests.e2e.stack import (
    LONELY_LEASE,
    api,
    eventually,
    launch,
    running_job,
    view,
    wait_for,
    wait_for_status,
    worker,
    workers_of,
)
from tests.e2e.workers import SdkWorker, read_order_log


@pytest.fixture(scope="module")
def pair_workers(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> Iterator[list[SdkWorker]]:
    """Two SDK workers consuming ``job_pair``."""
    first = worker(stepflow, amqp, e2e_dir, work_dir, "job_pair")
    second = worker(stepflow, amqp, e2e_dir, work_dir, "job_pair", consumers=2)
    yield [first, second]
    for started in (first, second):
        started.stop()


def put_worker(stepflow: StepFlowProcesses, instance_id: str, order: str) -> None:
    response = httpx.put(f"{api(stepflow)}/workers/{instance_id}", json={"type": order})
    assert response.status_code == 204, response.text


def test_worker_discovery_fills_the_worker_definitions(
    stepflow: StepFlowProcesses, pair_workers: list[SdkWorker]
) -> None:
    def pair_definitions() -> list[dict[str, Any]]:
        listed = httpx.get(f"{api(stepflow)}/worker_definitions", params={"size": 100}).json()["data"]
        return [entry for entry in listed if entry["queue_name"] == "job_pair"]

    (definition,) = eventually(pair_definitions, "the job_pair worker definition", stepflow)
    assert definition["label"] == "copy_worker", "two workers of one version: one definition"
    assert definition["short_description"] == "", "SDK 2.x descriptions have none"
    assert "sleep_ms" in definition["parameters"]["properties"], "the SDK's JSON Schema"


def test_two_workers_on_one_queue_complete_twenty_workflows_launched_at_once(
    stepflow: StepFlowProcesses, pair_workers: list[SdkWorker], e2e_dir: Path
) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        workflow_ids = list(pool.map(lambda _: launch(stepflow, "pair_copy"), range(20)))
    for workflow_id in workflow_ids:
        done = wait_for_status(stepflow, workflow_id, "completed", timeout=180)
        assert [job["state"] for job in done["jobs"]] == ["completed", "completed"]
    job_ids = {job["id"] for workflow_id in workflow_ids for job in view(stepflow, workflow_id)["jobs"]}
    orders = [entry for entry in read_order_log(e2e_dir / "orders-job_pair.jsonl") if entry["job_id"] in job_ids]
    assert {entry["job_id"] for entry in orders} == job_ids
    assert len({entry["pid"] for entry in orders}) == 2, "both workers took orders"


def test_a_busy_worker_shows_its_job_and_stop_makes_it_answer_job_stopped(
    stepflow: StepFlowProcesses, pair_workers: list[SdkWorker]
) -> None:
    eventually(
        lambda: [entry for entry in workers_of(stepflow, "job_pair") if entry["activity"] == "Idle"],
        "an idle job_pair worker",
        stepflow,
    )
    workflow_id = launch(stepflow, "pair_sleep")
    job = running_job(stepflow, workflow_id)
    (busy,) = eventually(
        lambda: [
            entry
            for entry in workers_of(stepflow, "job_pair")
            if entry["activity"] == "Busy" and (entry["current_job"] or {}).get("job_id") == job["id"]
        ],
        "the worker Busy with the job",
        stepflow,
    )
    response = httpx.post(f"{api(stepflow)}/workflows/{workflow_id}/events", json={"event": "stop"})
    assert response.status_code == 200, response.text
    stopped = wait_for(
        stepflow, workflow_id, lambda current: current["jobs"][0]["state"] == "stopped", "job stopped", timeout=30
    )
    assert stopped["status"] == "aborted"
    assert stopped["jobs"][0]["status"][-1]["description"] == {}, "ended by the worker's job_stopped"
    eventually(
        lambda: (
            [e for e in workers_of(stepflow, "job_pair") if e["instance_id"] == busy["instance_id"]][0]["activity"]
            == "Idle"
        ),
        "the worker Idle again",
        stepflow,
    )


def test_stop_and_resume_consuming_through_put_workers(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> None:
    suspendable = worker(stepflow, amqp, e2e_dir, work_dir, "job_suspend")
    try:
        (listed,) = eventually(lambda: workers_of(stepflow, "job_suspend"), "the job_suspend worker", stepflow)
        instance_id = listed["instance_id"]

        def shown() -> dict[str, Any]:
            return httpx.get(f"{api(stepflow)}/workers/{instance_id}").json()

        put_worker(stepflow, instance_id, "stop_consuming_jobs")
        eventually(lambda: shown()["activity"] == "Suspended", "Suspended", stepflow)
        seen = shown()["last_seen_at"]
        eventually(lambda: shown()["last_seen_at"] > seen, "a later status broadcast answered", stepflow)
        assert shown()["activity"] == "Suspended", "it stays suspended"
        # Not launched while suspended: SDK 2.2.1 then keeps the order it refuses unacked on its
        # channel (nack + requeue, redelivered to the consumer it is cancelling) until it exits.
        put_worker(stepflow, instance_id, "resume_consuming_jobs")
        eventually(lambda: shown()["activity"] == "Idle", "Idle again", stepflow)
        workflow_id = launch(stepflow, "suspend_copy")
        wait_for_status(stepflow, workflow_id, "completed", timeout=60)
    finally:
        suspendable.stop()


def test_a_worker_killed_mid_job_leaves_its_job_to_another_worker(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> None:
    first = worker(stepflow, amqp, e2e_dir, work_dir, "job_crash")
    second: SdkWorker | None = None
    try:
        workflow_id = launch(stepflow, "crash_sleep")
        job = running_job(stepflow, workflow_id)
        second = worker(stepflow, amqp, e2e_dir, work_dir, "job_crash", consumers=2)
        first.kill()  # SIGKILL: no answer, the broker gives the unacked order to the other worker
        wait_for_status(stepflow, workflow_id, "completed", timeout=60)
        runs = [
            entry["pid"] for entry in read_order_log(e2e_dir / "orders-job_crash.jsonl") if entry["job_id"] == job["id"]
        ]
        assert runs == [first.pid, second.pid]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_job_whose_only_worker_was_killed_ends_in_error_after_its_lease(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> None:
    lonely = worker(stepflow, amqp, e2e_dir, work_dir, "job_lonely")
    try:
        workflow_id = launch(stepflow, "lonely_sleep")
        job = running_job(stepflow, workflow_id)
        (alive,) = eventually(lambda: workers_of(stepflow, "job_lonely"), "the job_lonely worker", stepflow)
        time.sleep(LONELY_LEASE + 2)
        assert view(stepflow, workflow_id)["jobs"][0]["state"] == "processing", "status answers renew the lease"
        lonely.kill()
        failed = wait_for_status(stepflow, workflow_id, "error", timeout=30)
        (ended,) = failed["jobs"]
        assert ended["id"] == job["id"] and ended["state"] == "error"
        assert ended["status"][-1]["description"] == {"message": "no news from worker"}
        shown = httpx.get(f"{api(stepflow)}/workers/{alive['instance_id']}").json()
        assert shown["activity"] == "Lost"
    finally:
        lonely.stop()
