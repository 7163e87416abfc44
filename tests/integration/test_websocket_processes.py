"""The notifications websocket across processes: real ``websockets`` clients over TCP against two
``stepflow serve`` processes, while a ``stepflow actors`` process launches the workflow and this
test process (in-process actors) runs its job: every change, made by whichever process, reaches
both web processes' sockets, in commit order.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from stepflow.models import Job
from tests.conftest import TEST_ENVIRONMENT
from tests.e2e.processes import StepFlowProcesses, free_port
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"
TOKEN = "websocket-processes-token"


def environment(definitions: Path, port: int) -> dict[str, str]:
    tokens = {"ui": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "groups": ["administrator"]}}
    return {
        **TEST_ENVIRONMENT,
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions),
        "STEPFLOW_AUTH_ANONYMOUS": "false",
        "STEPFLOW_AUTH_TOKENS": json.dumps(tokens),
        "STEPFLOW_LOG_LEVEL": "info",
    }


@pytest.fixture
def webs(
    sessions: sessionmaker[Session], amqp_url: str, definitions_folder: Path, tmp_path: Path
) -> Iterator[list[StepFlowProcesses]]:
    """Two web processes and one actors process on the run's database and vhost."""
    write_definitions(
        definitions_folder,
        definition("two", [step(0, "job_a", [source_paths("/a")]), step(1, "job_b", [], parent_ids=[0])]),
    )
    started = []
    try:
        for index in range(2):
            log_dir = tmp_path / f"web{index}"
            log_dir.mkdir()
            processes = StepFlowProcesses(environment(definitions_folder, free_port()), log_dir)
            started.append(processes)
            processes.start("serve", *(("actors",) if index == 0 else ()))
        yield started
    finally:
        for processes in started:
            processes.stop()


def socket_of(web: StepFlowProcesses, query: str = "", **headers: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{web.port}{PREFIX}/notifications{query}", additional_headers=headers)


def frames_until(socket: ClientConnection, event: str) -> list[tuple[str, dict[str, Any], float]]:
    """(event, body, arrival time) of every frame up to and including the first ``event``."""
    received = []
    while True:
        frame = json.loads(socket.recv(timeout=15))
        received.append((frame["event"], frame["payload"]["body"], time.monotonic()))
        if frame["event"] == event:
            return received


def test_changes_made_by_other_processes_reach_both_web_processes_in_commit_order(
    webs: list[StepFlowProcesses], actors: Any, sessions: sessionmaker[Session]
) -> None:
    first, second = webs
    with (
        socket_of(first, Authorization=f"Bearer {TOKEN}") as one,
        socket_of(second, f"?token={TOKEN}") as other,
    ):
        response = httpx.post(
            f"http://127.0.0.1:{first.port}{PREFIX}/workflows",
            json={"workflow_identifier": "two", "reference": "r"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201, response.text
        workflow_id = response.json()["data"]["id"]
        update = f"update_workflow_{workflow_id}"
        launched = frames_until(one, update)  # the actors process launched it
        with sessions() as session:
            job_id = session.scalars(select(Job.id).where(Job.workflow_id == workflow_id)).one()
        actors.job_progression.fn({"job_id": job_id, "progression": 50})
        committed = time.monotonic()
        actors.job_completed.fn({"job_id": job_id, "status": "completed"})
        run = frames_until(one, update)
        run += frames_until(one, update)
        on_the_other = frames_until(other, update) + frames_until(other, update) + frames_until(other, update)
    body = {"workflow_id": workflow_id}
    expected = [
        ("new_workflow", body),  # committed by the first web process
        (update, body),  # by the actors process
        ("job_progression", {**body, "job_id": job_id, "progression": 50}),  # by this process
        (update, body),
        (update, body),
    ]
    assert [(event, body) for event, body, _ in launched + run] == expected
    assert [(event, body) for event, body, _ in on_the_other] == expected
    latency = run[0][2] - committed
    print(f"commit to frame (job_progression, first web process): {latency * 1000:.0f} ms")
    assert latency < 5
    logs = [(web.log_dir / "serve.log").read_text() for web in webs]
    assert "notifications?token=[redacted]" in logs[1]  # uvicorn logs each websocket's path and query
    assert not any(TOKEN in log for log in logs)


def test_a_real_client_without_credentials_is_refused_at_the_upgrade(webs: list[StepFlowProcesses]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        socket_of(webs[0], "?token=not-a-token").close()
    assert refused.value.response.status_code == 403
