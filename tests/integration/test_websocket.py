"""``GET {prefix}/notifications`` on the real app (Litestar's test client), with in-process actors
changing state: frames, commit order, who sees what, credentials, the workflow filter and the
heartbeat. The cross-process relay (real ``stepflow serve`` processes) is in
``test_websocket_processes.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient, WebSocketTestSession
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from stepflow import changes
from stepflow.api.app import create_app
from stepflow.feed import CHANNEL
from stepflow.models import Job
from stepflow.settings import Settings, load_settings
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"
TOKENS = {"admin": "admin-token", "outsider": "outsider-token"}
"""Static tokens: ``admin`` is in group administrator, ``outsider`` in group outsider."""
HEARTBEAT = {"event": "heartbeat"}
POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012


def rights(view: list[str]) -> list[dict[str, Any]]:
    return [{"action": "view", "groups": view}] + [
        {"action": action, "groups": ["administrator"]} for action in ("create", "retry", "abort", "delete")
    ]


def secured(definitions_folder: Path, **env: str) -> Settings:
    tokens = {
        name: {
            "sha256": hashlib.sha256(token.encode()).hexdigest(),
            "groups": ["administrator" if name == "admin" else name],
        }
        for name, token in TOKENS.items()
    }
    return load_settings(
        {
            **os.environ,
            "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions_folder),
            "STEPFLOW_AUTH_ANONYMOUS": "false",
            "STEPFLOW_AUTH_TOKENS": json.dumps(tokens),
            **env,
        }
    )


@pytest.fixture
def app_for(
    actors: Any, database_url: str, sessions: sessionmaker[Session], definitions_folder: Path
) -> Iterator[Callable[..., TestClient]]:
    """Starts StepFlow apps (``env`` overrides settings) on one database; launches run in-process."""
    write_definitions(
        definitions_folder,
        definition("private", [step(0, "job_a", [source_paths("/a")]), step(1, "job_b", [], parent_ids=[0])]),
        definition("shared", [step(0, "job_a", [source_paths("/a")])], rights=rights(["administrator", "outsider"])),
    )
    started: list[TestClient] = []

    def start(**env: str) -> TestClient:
        client = TestClient(create_app(secured(definitions_folder, **env), launcher=actors.launch_workflow.fn))
        started.append(client.__enter__())
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture
def api(app_for: Callable[..., TestClient]) -> TestClient:
    return app_for()


def connect(client: TestClient, query: str = "", **headers: str) -> WebSocketTestSession:
    return client.websocket_connect(f"{PREFIX}/notifications{query}", headers=headers)


def launch(client: TestClient, identifier: str) -> int:
    response = client.post(
        f"{PREFIX}/workflows",
        json={"workflow_identifier": identifier, "reference": "ref"},
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def first_job(sessions: sessionmaker[Session], workflow_id: int) -> int:
    with sessions() as session:
        return session.scalars(select(Job.id).where(Job.workflow_id == workflow_id).order_by(Job.id)).first()


def workers_changed(sessions: sessionmaker[Session]) -> None:
    """A change every user sees: what a test sends last, so what came before it has come."""
    with sessions() as session, session.begin():
        session.execute(text("SELECT 1"))
        changes.record(session, changes.Change(changes.WORKERS_STATUS))


def frames_until_workers(socket: WebSocketTestSession) -> list[dict[str, Any]]:
    """Every frame up to the ``workers_status_updated`` that :func:`workers_changed` sends (excluded)."""
    received = []
    while True:
        frame = json.loads(socket.receive_text(timeout=10))
        if frame.get("event") == "workers_status_updated":
            return received
        received.append(frame)


def settle(sessions: sessionmaker[Session], *sockets: WebSocketTestSession) -> None:
    """Read away the frames of what committed just before the sockets opened: the listener may
    hand those over after the socket subscribed (it polls every 0.1 s)."""
    workers_changed(sessions)
    for socket in sockets:
        frames_until_workers(socket)


def events(frames: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(frame["event"], frame["payload"]["body"]) for frame in frames]


def test_a_launch_and_a_run_arrive_frame_by_frame_in_commit_order(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    with connect(api, Authorization=f"Bearer {TOKENS['admin']}") as socket:
        workflow_id = launch(api, "private")
        job_id = first_job(sessions, workflow_id)
        actors.job_progression.fn({"job_id": job_id, "progression": 30})
        actors.job_completed.fn({"job_id": job_id, "status": "completed"})
        workers_changed(sessions)
        frames = frames_until_workers(socket)
    update = f"update_workflow_{workflow_id}"
    body = {"workflow_id": workflow_id}
    assert events(frames) == [
        ("new_workflow", body),  # the POST's transaction
        (update, body),  # the launch: job_a queued, the workflow processing
        ("job_progression", {**body, "job_id": job_id, "progression": 30}),  # one transaction, two notices
        (update, body),
        (update, body),  # job_a completed, job_b queued: one notice for both
    ]
    assert all(
        frame["topic"] == "notifications:all" and set(frame) == {"topic", "event", "payload"} for frame in frames
    )


def test_retry_and_delete_have_their_frames(actors: Any, api: TestClient, sessions: sessionmaker[Session]) -> None:
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    workflow_id = launch(api, "private")
    job_id = first_job(sessions, workflow_id)
    actors.job_error.fn({"job_id": job_id, "status": "error", "message": "broken"})
    with connect(api, **admin) as socket:
        settle(sessions, socket)
        events_url = f"{PREFIX}/workflows/{workflow_id}/events"
        assert api.post(events_url, json={"event": "retry", "job_id": job_id}, headers=admin).status_code == 200
        assert api.post(events_url, json={"event": "delete"}, headers=admin).status_code == 200
        workers_changed(sessions)
        frames = frames_until_workers(socket)
    body = {"workflow_id": workflow_id}
    assert events(frames) == [
        ("retry_job", {**body, "job_id": job_id}),
        (f"update_workflow_{workflow_id}", body),
        (f"update_workflow_{workflow_id}", body),  # the delete aborts the running workflow first
        ("delete_workflow", body),
    ]


def test_a_user_gets_no_frame_of_a_workflow_they_may_not_view(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    with (
        connect(api, Authorization=TOKENS["outsider"]) as outsider,
        connect(api, Authorization=TOKENS["admin"]) as admin,
    ):
        private = launch(api, "private")
        shared = launch(api, "shared")
        workers_changed(sessions)
        seen_by_admin = {frame["payload"]["body"]["workflow_id"] for frame in frames_until_workers(admin)}
        seen_by_outsider = {frame["payload"]["body"]["workflow_id"] for frame in frames_until_workers(outsider)}
    assert (seen_by_admin, seen_by_outsider) == ({private, shared}, {shared})


def test_a_notice_too_long_for_its_groups_is_checked_against_the_stored_ones(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    private = launch(api, "private")
    with (
        connect(api, Authorization=TOKENS["outsider"]) as outsider,
        connect(api, Authorization=TOKENS["admin"]) as admin,
    ):
        settle(sessions, outsider, admin)
        with sessions() as session, session.begin():
            for workflow_id in (private, private + 1000):  # the second one does not exist (deleted)
                notice = json.dumps({"event": "update_workflow", "workflow_id": workflow_id})
                session.execute(text("SELECT pg_notify(:channel, :notice)"), {"channel": CHANNEL, "notice": notice})
        workers_changed(sessions)
        assert events(frames_until_workers(admin)) == [(f"update_workflow_{private}", {"workflow_id": private})]
        assert frames_until_workers(outsider) == []


def test_the_workflow_filter_keeps_one_workflow(api: TestClient, sessions: sessionmaker[Session]) -> None:
    first = launch(api, "private")
    with connect(api, f"?workflow_id={first + 1}", Authorization=TOKENS["admin"]) as socket:
        launch(api, "private")
        second = launch(api, "private")
        assert second == first + 2
        workers_changed(sessions)
        received = {frame["payload"]["body"]["workflow_id"] for frame in frames_until_quiet(socket)}
    assert received == {first + 1}


def frames_until_quiet(socket: WebSocketTestSession) -> list[dict[str, Any]]:
    """A filtered socket never gets the workers' frame: read what arrives until it is quiet."""
    received = []
    try:
        while True:
            received.append(json.loads(socket.receive_text(timeout=1)))
    except queue.Empty:
        return received


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("", {"Authorization": "Bearer wrong-token"}),
        ("?token=wrong-token", {}),
    ],
    ids=["no credentials", "a wrong token", "a wrong ?token="],
)
def test_a_socket_without_valid_credentials_is_refused(api: TestClient, query: str, headers: dict[str, str]) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        connect(api, query, **headers).__enter__()
    assert refused.value.code == POLICY_VIOLATION
    assert refused.value.detail == "401 You need to login to view this resource"


def test_a_malformed_workflow_filter_is_refused(api: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        connect(api, f"?workflow_id=abc&token={TOKENS['admin']}").__enter__()
    assert refused.value.code == POLICY_VIOLATION


def test_the_token_may_come_in_the_query(api: TestClient, sessions: sessionmaker[Session]) -> None:
    with connect(api, f"?token={TOKENS['admin']}") as socket:
        workflow_id = launch(api, "private")
        workers_changed(sessions)
        assert events(frames_until_workers(socket))[0] == ("new_workflow", {"workflow_id": workflow_id})


def test_anonymous_sockets_need_anonymous_access(app_for: Callable[..., TestClient]) -> None:
    open_app = app_for(STEPFLOW_AUTH_ANONYMOUS="true", STEPFLOW_WEBSOCKET_HEARTBEAT="0.1")
    with connect(open_app) as socket:
        assert json.loads(socket.receive_text(timeout=5)) == HEARTBEAT


def test_heartbeats_come_at_the_configured_interval(app_for: Callable[..., TestClient]) -> None:
    client = app_for(STEPFLOW_WEBSOCKET_HEARTBEAT="0.2")
    with connect(client, Authorization=TOKENS["admin"]) as socket:
        start = time.monotonic()
        beats = [json.loads(socket.receive_text(timeout=5)) for _ in range(3)]
        elapsed = time.monotonic() - start
    assert beats == [HEARTBEAT] * 3
    assert 0.4 <= elapsed < 2.0  # three intervals of 0.2 s


def test_two_web_processes_both_relay_every_change(
    app_for: Callable[..., TestClient], sessions: sessionmaker[Session]
) -> None:
    first, second = app_for(), app_for()  # two apps, two LISTEN connections
    with (
        connect(first, Authorization=TOKENS["admin"]) as one,
        connect(second, Authorization=TOKENS["admin"]) as other,
    ):
        workflow_id = launch(first, "private")
        workers_changed(sessions)
        expected = [
            ("new_workflow", {"workflow_id": workflow_id}),
            (f"update_workflow_{workflow_id}", {"workflow_id": workflow_id}),
        ]
        assert events(frames_until_workers(one)) == expected
        assert events(frames_until_workers(other)) == expected


def test_a_lost_listener_reconnects_and_closes_its_sockets_so_clients_fetch_again(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    with connect(api, Authorization=TOKENS["admin"]) as socket:
        with sessions() as session, session.begin():
            killed = session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        assert killed == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text(timeout=10)
    assert closed.value.code == SERVICE_RESTART
    with connect(api, Authorization=TOKENS["admin"]) as socket:
        workflow_id = launch(api, "private")
        workers_changed(sessions)
        assert events(frames_until_workers(socket))[0] == ("new_workflow", {"workflow_id": workflow_id})
