"""Every route × {no credentials, a user of the wrong group, a user of the right group}.

Without credentials every API route answers 401 (the public ones excepted); a user outside the
definition's groups gets 403 on an object, an empty page on a list, and 403 where a route needs
the administrator group; a user of the right groups gets its 2xx. The table must name every
route the app serves, so a new route cannot be added without saying who may call it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job
from stepflow.security import issue_token
from stepflow.settings import Settings
from stepflow.workers import upsert_worker_definition, upsert_worker_status
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"
SECRET = "route-walk-secret"
RIGHT = ("walkers", "administrator")
WRONG = ("outsiders",)
PUBLIC = {
    ("GET", PREFIX),
    ("GET", f"{PREFIX}/docs"),
    ("GET", f"{PREFIX}/docs/assets/{{file_path:path}}"),
    ("GET", f"{PREFIX}/swagger"),
    ("GET", f"{PREFIX}/swagger/index.html"),
    ("GET", f"{PREFIX}/openapi.json"),
    ("GET", f"{PREFIX}/openapi.json/openapi.json"),
    ("GET", f"{PREFIX}/openapi.json/{{path:str}}"),
    ("POST", "/api/sessions"),
    ("GET", f"{PREFIX}/metrics"),  # for scrapers, behind its own basic auth (tests/integration/test_metrics.py)
}

WALK = definition(
    "walk",
    [step(0, "job_walk", [source_paths("/in/a.mov")])],
    rights=[
        {"action": action, "groups": ["walkers"]} for action in ("view", "create", "retry", "abort", "delete", "update")
    ],
)
WORKER = {
    "type": "status",
    "job": None,
    "worker": {
        "activity": "Idle",
        "instance_id": "walker-1",
        "label": "walker",
        "name": "walker",
        "queue_name": "job_walk",
        "version": "1.0.0",
        "description": "",
        "direct_messaging_queue_name": "direct_messaging_walker-1",
        "sdk_version": "2.2.1",
        "system_info": {"docker_container_id": "walker-1"},
    },
}
NEW_WORKER_DEFINITION = {
    "queue_name": "job_new",
    "label": "new",
    "short_description": "new",
    "description": "new",
    "version": "1.0.0",
    "parameters": [],
}


def headers(groups: tuple[str, ...] | None) -> dict[str, str]:
    return {} if groups is None else {"Authorization": f"Bearer {issue_token(SECRET, 'walker', groups, 3600)}"}


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path) -> Iterator[TestClient]:
    write_definitions(definitions_folder, WALK)
    secured = dataclasses.replace(settings, auth_anonymous=False, session_secret=SECRET)
    with TestClient(create_app(secured, launcher=lambda _: None, send_owed=lambda _: 0)) as test_client:
        yield test_client


@pytest.fixture
def ids(client: TestClient, sessions: sessionmaker[Session]) -> dict[str, int | str]:
    launched = [
        client.post(
            f"{PREFIX}/workflows", json={"workflow_identifier": "walk", "reference": "r"}, headers=headers(RIGHT)
        )
        for _ in range(2)
    ]
    assert all(response.status_code == 201 for response in launched)
    workflow_id, doomed_id = (response.json()["data"]["id"] for response in launched)
    with sessions() as session, session.begin():
        session.add(Job(workflow_id=workflow_id, step_id=0, input_index=0, name="job_walk", parameters=[]))
        definition_id = upsert_worker_definition(session, {**NEW_WORKER_DEFINITION, "queue_name": "job_walk"})
        upsert_worker_status(session, WORKER)
    return {"workflow": workflow_id, "doomed": doomed_id, "definition": definition_id, "worker": "walker-1"}


def walk(ids: dict[str, int | str]) -> list[tuple[str, str, str, Any, int, int]]:
    """(method, route, path, body, wrong group's status, right group's status)."""
    w, doomed, d, worker = ids["workflow"], ids["doomed"], ids["definition"], ids["worker"]
    launch = {"workflow_identifier": "walk", "reference": "r"}
    return [
        ("GET", "/blacklist", "/blacklist", None, 200, 200),
        ("GET", "/definitions", "/definitions", None, 200, 200),
        ("POST", "/definitions", "/definitions", None, 403, 200),
        ("GET", "/definitions/{identifier:str}", "/definitions/walk", None, 403, 200),
        ("GET", "/workflows", "/workflows", None, 200, 200),
        ("POST", "/workflows", "/workflows", launch, 403, 201),
        ("POST", "/launch_workflow", "/launch_workflow", launch, 403, 201),
        ("GET", "/workflows/{workflow_id:str}", f"/workflows/{w}", None, 403, 200),
        ("PUT", "/workflows/{workflow_id:str}", f"/workflows/{w}", {}, 405, 405),
        ("PATCH", "/workflows/{workflow_id:str}", f"/workflows/{w}", {}, 405, 405),
        ("DELETE", "/workflows/{workflow_id:str}", f"/workflows/{doomed}", None, 403, 204),
        ("POST", "/workflows/{workflow_id:str}/events", f"/workflows/{w}/events", {"event": "pause"}, 403, 200),
        ("GET", "/jobs", "/jobs", None, 200, 200),
        ("GET", "/workflows_statistics", "/workflows_statistics", None, 200, 200),
        ("GET", "/worker_definitions", "/worker_definitions", None, 200, 200),
        ("POST", "/worker_definitions", "/worker_definitions", NEW_WORKER_DEFINITION, 403, 201),
        ("GET", "/worker_definitions/{definition_id:str}", f"/worker_definitions/{d}", None, 200, 200),
        ("GET", "/live_workers", "/live_workers", None, 200, 200),
        ("GET", "/workers", "/workers", None, 200, 200),
        ("GET", "/workers/{instance_id:str}", f"/workers/{worker}", None, 200, 200),
        ("PUT", "/workers/{instance_id:str}", f"/workers/{worker}", {"type": "status"}, 403, 204),
        ("PATCH", "/workers/{instance_id:str}", f"/workers/{worker}", {"type": "status"}, 403, 204),
    ]


def call(client: TestClient, method: str, path: str, body: Any, groups: tuple[str, ...] | None) -> Any:
    return client.request(method, PREFIX + path, json=body, headers=headers(groups))


def test_the_walk_names_every_route(client: TestClient, ids: dict[str, int | str]) -> None:
    served = {
        (method, route.path)
        for route in client.app.routes
        if isinstance(route, HTTPRoute)
        for method in route.methods
        if method not in ("OPTIONS", "HEAD")
    }
    walked = {(method, PREFIX + route) for method, route, *_ in walk(ids)}
    assert served - PUBLIC == walked


def test_every_route_by_credentials(client: TestClient, ids: dict[str, int | str]) -> None:
    for method, _, path, body, wrong, right in walk(ids):
        anonymous = call(client, method, path, body, None)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json() == {"errors": {"detail": "You need to login to view this resource"}}
        outsider = call(client, method, path, body, WRONG)
        assert outsider.status_code == wrong, (method, path, outsider.text)
        member = call(client, method, path, body, RIGHT)
        assert member.status_code == right, (method, path, member.text)


def test_lists_show_an_outsider_nothing_of_the_workflows(client: TestClient, ids: dict[str, int | str]) -> None:
    for path in ("/workflows", "/jobs", "/definitions"):
        assert call(client, "GET", path, None, WRONG).json() == {"data": [], "total": 0}, path
        assert call(client, "GET", path, None, RIGHT).json()["total"] >= 1, path


def test_public_routes_need_no_credentials(client: TestClient) -> None:
    assert client.get(PREFIX).status_code == 200
    assert client.get(f"{PREFIX}/openapi.json").status_code == 200
    assert client.get(f"{PREFIX}/docs").status_code == 200
    assert client.get(f"{PREFIX}/swagger", follow_redirects=False).status_code in (302, 307)
    assert client.post("/api/sessions", json={"session": {"email": "x@y", "password": "z"}}).status_code == 401
    assert re.match(r"\d+\.\d+\.\d+", client.get(PREFIX).json()["version"])
