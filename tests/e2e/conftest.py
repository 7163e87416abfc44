"""End-to-end fixtures: one StepFlow stack (web, actors, bridge, clock as processes) per run,
real MCAI SDK workers, a work directory shared with them, and a local HTTP server for webhooks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepflow.security import hash_password
from tests.conftest import VHOST, fresh_vhost
from tests.e2e.processes import StepFlowProcesses, free_port
from tests.e2e.stack import (
    EXPOSED_DOMAIN,
    INPUTS,
    LONELY_LEASE,
    WORKER_EMAIL,
    WORKER_PASSWORD,
    copy_workflow,
    showcase_workflow,
    sleeping,
    worker,
)
from tests.e2e.workers import SdkWorker
from tests.http_server import RecordingServer
from tests.support import definition, source_paths, step, write_definitions


@pytest.fixture(scope="package")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="package")
def work_dir(e2e_dir: Path) -> Path:
    folder = e2e_dir / "work"
    (folder / "in").mkdir(parents=True)
    for name in INPUTS:
        (folder / "in" / name).write_text(f"content of {name}\n")
    return folder


@pytest.fixture(scope="package")
def webhooks() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        server.reply("/hook", (200, "ok"))
        server.reply("/slack/chat.postMessage", (200, '{"ok": true}'))
        yield server


@pytest.fixture(scope="package")
def e2e_amqp_url() -> Iterator[str]:
    """Its own vhost, so nothing the stack leaves behind reaches the integration tests."""
    with fresh_vhost(f"{VHOST}_e2e") as url:
        yield url


@pytest.fixture(scope="package")
def stepflow(
    database_url: str, e2e_amqp_url: str, e2e_dir: Path, work_dir: Path, webhooks: RecordingServer
) -> Iterator[StepFlowProcesses]:
    def inputs(*names: str) -> list[str]:
        return [str(work_dir / "in" / name) for name in names]

    definitions = write_definitions(
        e2e_dir / "definitions",
        copy_workflow("copy_twice", "job_copy", inputs("b.txt", "a.txt")),
        definition("failing", [step(0, "job_fail", [source_paths(*inputs("b.txt"))])]),
        definition("nobody", [step(0, "job_nobody", [source_paths(*inputs("b.txt"))])]),
        copy_workflow("copy_later", "job_copy", inputs("c.txt")),
        showcase_workflow(inputs("a.txt", "b.txt"), webhooks.url("/hook")),
        copy_workflow("pair_copy", "job_pair", inputs("a.txt")),
        sleeping("pair_sleep", "job_pair", 30000, inputs("x.txt")),
        sleeping("crash_sleep", "job_crash", 4000, inputs("x.txt")),
        sleeping("lonely_sleep", "job_lonely", 60000, inputs("x.txt")),
        copy_workflow("suspend_copy", "job_suspend", inputs("c.txt")),
        sleeping("long_running", "job_copy", 30000, inputs("x.txt", "y.txt")),
    )
    users = {WORKER_EMAIL: {"password_hash": hash_password(WORKER_PASSWORD), "groups": ["administrator"]}}
    environment = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "AMQP_URL": e2e_amqp_url,
        "PORT": str(free_port()),
        "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions),
        "STEPFLOW_WORKERS_WORK_DIRECTORY": str(work_dir),
        "STEPFLOW_AUTH_ANONYMOUS": "true",
        "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
        "STEPFLOW_AUTH_USERS": json.dumps(users),
        "STEPFLOW_SESSION_SECRET": "e2e-secret",
        "STEPFLOW_CLOCK_INTERVAL": "0.5",
        "STEPFLOW_WORKERS_STATUS_INTERVAL": "1",
        "STEPFLOW_OUTBOX_RESEND_AFTER": "2",
        "STEPFLOW_DISPATCH_RESEND_AFTER": "5",
        "STEPFLOW_JOB_LEASES": json.dumps({"job_lonely": LONELY_LEASE}),
        "SLACK_API_URL": webhooks.url("/slack"),
        "SLACK_API_TOKEN": "xoxb-e2e",
        "SLACK_API_CHANNEL": "e2e-alerts",
        "EXPOSED_DOMAIN_NAME": EXPOSED_DOMAIN,
        "STEPFLOW_LOG_LEVEL": "info",
    }
    processes = StepFlowProcesses(environment, e2e_dir)
    processes.start("serve", "actors", "bridge", "clock")
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture(scope="package")
def amqp(e2e_amqp_url: str) -> dict[str, Any]:
    vhost = e2e_amqp_url.rsplit("/", 1)[1]
    return {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest", "vhost": vhost}


@pytest.fixture(scope="package")
def copy_worker(
    stepflow: StepFlowProcesses, amqp: dict[str, Any], e2e_dir: Path, work_dir: Path
) -> Iterator[SdkWorker]:
    started = worker(stepflow, amqp, e2e_dir, work_dir, "job_copy")
    yield started
    started.stop()
