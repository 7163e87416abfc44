"""The REST API against the real database: launch, read, definitions, principal, sessions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, Outbox, WorkflowStatus, WorkflowStep
from stepflow.security import hash_password
from stepflow.settings import Settings
from tests.support import CREATED_VIEW_FIELDS, TWO_STEPS, definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"


@pytest.fixture
def launched() -> list[int]:
    return []


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path, launched: list[int]
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, TWO_STEPS)
    with TestClient(create_app(settings, launcher=launched.append)) as test_client:
        yield test_client


def test_index_is_anonymous_and_reports_version_2(client: TestClient) -> None:
    response = client.get(PREFIX)
    assert response.status_code == 200
    assert response.json()["application"] == "Step Flow"
    assert tuple(int(part) for part in response.json()["version"].split(".")) >= (2, 0, 0)


def test_launch_persists_workflow_steps_status_and_outbox(
    client: TestClient, sessions: sessionmaker[Session], launched: list[int]
) -> None:
    response = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "ref-1"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["identifier"] == "two_steps" and data["reference"] == "ref-1"
    assert set(data) == CREATED_VIEW_FIELDS
    assert launched == [data["id"]]
    with sessions() as session:
        steps = session.scalars(select(WorkflowStep).where(WorkflowStep.workflow_id == data["id"])).all()
        assert sorted(row.step_id for row in steps) == [0, 1]
        assert [s.state for s in session.scalars(select(WorkflowStatus))] == ["pending"]
        outbox = session.scalars(select(Outbox)).one()
        assert outbox.payload == {"workflow_id": data["id"]} and outbox.sent_at is not None


def test_launch_alias_and_version_selection(client: TestClient, settings: Settings, definitions_folder: Path) -> None:
    write_definitions(definitions_folder, definition("two_steps", TWO_STEPS["steps"], version=(2, 0, 0)))
    assert client.post(f"{PREFIX}/definitions").status_code == 200
    latest = client.post(f"{PREFIX}/launch_workflow", json={"workflow_identifier": "two_steps", "reference": "r"})
    assert latest.status_code == 201
    assert latest.json()["data"]["version_major"] == 2
    older = client.post(
        f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r", "version": "1.0.0"}
    )
    assert older.json()["data"]["version_major"] == 1
    unknown = client.post(
        f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r", "version": "9.9.9"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["reason"] == "Unable to locate workflow with this identifier and version"
    malformed = client.post(
        f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r", "version": "2"}
    )
    assert malformed.status_code == 422 and "version" in malformed.json()["errors"]


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            {"reference": "r"},
            422,
            {"errors": [{"reason": "Missing Workflow identifier parameter", "message": "Incorrect parameters"}]},
        ),
        (
            {"workflow_identifier": "nope", "reference": "r"},
            422,
            {
                "errors": [
                    {"reason": "Unable to locate workflow with this identifier", "message": "Incorrect parameters"}
                ]
            },
        ),
        ({"workflow_identifier": "two_steps"}, 422, {"errors": {"reference": ["can't be blank"]}}),
        (
            {"workflow_identifier": "two_steps", "reference": "r", "parameters": []},
            422,
            {"errors": {"parameters": ["must be an object"]}},
        ),
    ],
)
def test_launch_rejects_bad_bodies(client: TestClient, body: dict, status: int, expected: dict) -> None:
    response = client.post(f"{PREFIX}/workflows", json=body)
    assert response.status_code == status
    assert response.json() == expected


def test_launch_rejects_non_object_and_invalid_json(client: TestClient) -> None:
    response = client.post(f"{PREFIX}/workflows", content=b"[1]", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "body" in response.json()["errors"]
    response = client.post(f"{PREFIX}/workflows", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "body" in response.json()["errors"]


def test_launch_parameters_merge_and_type_check(client: TestClient, definitions_folder: Path) -> None:
    document = definition(
        "with_parameters",
        [step(0, "job_test", [source_paths("a")])],
        parameters=[
            {"id": "name", "type": "string", "value": "default"},
            {"id": "count", "type": "integer", "value": 1},
        ],
    )
    write_definitions(definitions_folder, document)
    client.post(f"{PREFIX}/definitions")
    response = client.post(
        f"{PREFIX}/workflows",
        json={"workflow_identifier": "with_parameters", "reference": "r", "parameters": {"count": 5, "language": "fr"}},
    )
    assert response.status_code == 201
    assert response.json()["data"]["parameters"] == [
        {"id": "name", "type": "string", "value": "default"},
        {"id": "count", "type": "integer", "value": 5},
    ]
    bad = client.post(
        f"{PREFIX}/workflows",
        json={"workflow_identifier": "with_parameters", "reference": "r", "parameters": {"count": "five"}},
    )
    assert bad.status_code == 422
    assert bad.json() == {"errors": {"parameters.count": ["is invalid"]}}


def test_show_workflow_full_and_simple_views(client: TestClient) -> None:
    workflow_id = client.post(
        f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r"}
    ).json()["data"]["id"]
    full = client.get(f"{PREFIX}/workflows/{workflow_id}").json()["data"]
    assert full["id"] == workflow_id and full["jobs"] == [] and full["artifacts"] == []
    assert [s["status"] for s in full["steps"]] == ["queued", "queued"]
    assert full["steps"][0]["jobs"] == {
        "total": 0,
        "completed": 0,
        "errors": 0,
        "processing": 0,
        "queued": 0,
        "skipped": 0,
        "stopped": 0,
    }
    assert {r["action"] for r in full["rights"]} >= {"view", "create"}
    simple = client.get(f"{PREFIX}/workflows/{workflow_id}", params={"mode": "simple"}).json()["data"]
    assert simple["status"]["state"] == "pending"
    assert "steps" not in simple


def test_show_workflow_errors(client: TestClient) -> None:
    assert client.get(f"{PREFIX}/workflows/999999").status_code == 404
    assert client.get(f"{PREFIX}/workflows/999999").json() == {"errors": {"detail": "Workflow 999999 not found"}}
    assert client.get(f"{PREFIX}/workflows/abc").status_code == 422
    assert client.get(f"{PREFIX}/unknown/route").status_code == 404


def test_rights_are_enforced(settings: Settings, definitions_folder: Path, sessions: sessionmaker[Session]) -> None:
    restricted = definition(
        "restricted", [step(0, "job_test", [source_paths("a")])], rights=[{"action": "view", "groups": ["viewers"]}]
    )
    write_definitions(definitions_folder, restricted)
    viewer = dataclasses.replace(settings, auth_anonymous_groups=("viewers",))
    with TestClient(create_app(viewer, launcher=lambda _: None)) as client:
        response = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "restricted", "reference": "r"})
        assert response.status_code == 403
        assert response.json()["errors"][0]["reason"] == "Forbidden to create workflow with this identifier"
        assert client.get(f"{PREFIX}/definitions/restricted").status_code == 200
    outsider = dataclasses.replace(settings, auth_anonymous_groups=("nobody",))
    with TestClient(create_app(outsider, launcher=lambda _: None)) as client:
        assert client.get(f"{PREFIX}/definitions/restricted").status_code == 403


def test_without_credentials_every_route_but_the_index_is_401(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    closed = dataclasses.replace(settings, auth_anonymous=False)
    with TestClient(create_app(closed, launcher=lambda _: None)) as client:
        assert client.get(PREFIX).status_code == 200
        for method, path in [
            ("get", "/jobs"),
            ("get", "/workflows/1"),
            ("post", "/workflows"),
            ("get", "/definitions/x"),
            ("get", "/blacklist"),
        ]:
            response = getattr(client, method)(PREFIX + path)
            assert response.status_code == 401, path
            assert response.json() == {"errors": {"detail": "You need to login to view this resource"}}
        assert client.get(PREFIX + "/jobs", headers={"Authorization": "Bearer forged.token"}).status_code == 401


def test_sessions_issue_tokens_accepted_raw_and_as_bearer(settings: Settings, sessions: sessionmaker[Session]) -> None:
    from stepflow.settings import User

    users = {"worker@example.com": User("worker@example.com", hash_password("s3cret"), ("administrator",))}
    secured = dataclasses.replace(settings, auth_anonymous=False, auth_users=users, session_secret="test-secret")
    with TestClient(create_app(secured, launcher=lambda _: None)) as client:
        bad = client.post("/api/sessions", json={"session": {"email": "worker@example.com", "password": "wrong"}})
        assert bad.status_code == 401
        unknown = client.post("/api/sessions", json={"session": {"email": "x@example.com", "password": "s3cret"}})
        assert unknown.status_code == 401
        malformed = client.post("/api/sessions", json={"session": {"email": "worker@example.com"}})
        assert malformed.status_code == 422
        good = client.post("/api/sessions", json={"session": {"email": "worker@example.com", "password": "s3cret"}})
        assert good.status_code == 200
        token = good.json()["access_token"]
        assert good.json()["token_type"] == "bearer"
        assert client.get(PREFIX + "/blacklist", headers={"Authorization": token}).json() == {"data": [], "total": 0}
        assert client.get(PREFIX + "/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_definitions_reload_reports_loaded_skipped_and_invalid(client: TestClient, definitions_folder: Path) -> None:
    changed = dict(TWO_STEPS, label="changed label")
    (definitions_folder / "changed.json").write_text(json.dumps(changed))
    (definitions_folder / "broken.json").write_text("{not json")
    (definitions_folder / "notes.txt").write_text("ignored")
    body = client.post(f"{PREFIX}/definitions").json()
    assert [entry["identifier"] for entry in body["loaded"]] == ["two_steps"]
    assert [entry["file"].rsplit("/", 1)[-1] for entry in body["skipped"]] == ["changed.json"]
    assert [entry["file"].rsplit("/", 1)[-1] for entry in body["invalid"]] == ["broken.json"]
    shown = client.get(f"{PREFIX}/definitions/two_steps").json()["data"]
    assert shown["label"] == "two steps" and len(shown["steps"]) == 2
    assert client.get(f"{PREFIX}/definitions/nope").status_code == 422


def test_jobs_list_is_filtered_and_paginated(client: TestClient, sessions: sessionmaker[Session]) -> None:
    first = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "a"}).json()[
        "data"
    ]["id"]
    second = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "b"}).json()[
        "data"
    ]["id"]
    with sessions() as session, session.begin():
        for workflow_id in (first, second):
            for index in range(2):
                session.add(Job(workflow_id=workflow_id, step_id=0, input_index=index, name="job_test", parameters=[]))
    everything = client.get(f"{PREFIX}/jobs").json()
    assert everything["total"] == 4
    assert {
        "id",
        "workflow_id",
        "name",
        "step_id",
        "params",
        "status",
        "progressions",
        "inserted_at",
        "updated_at",
    } <= set(everything["data"][0])
    assert client.get(f"{PREFIX}/jobs", params={"workflow_id": first}).json()["total"] == 2
    page = client.get(f"{PREFIX}/jobs", params={"size": 3, "page": 1}).json()
    assert page["total"] == 4 and len(page["data"]) == 1
    assert client.get(f"{PREFIX}/jobs", params={"job_type": "other"}).json() == {"data": [], "total": 0}
    assert client.get(f"{PREFIX}/jobs", params={"page": "x"}).status_code == 422


def test_a_launch_the_broker_refuses_is_kept_for_the_clock(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    write_definitions(definitions_folder, TWO_STEPS)

    def broker_down(workflow_id: int) -> None:
        raise ConnectionError("RabbitMQ is down")

    with TestClient(create_app(settings, launcher=broker_down)) as client:
        response = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two_steps", "reference": "r"})
    assert response.status_code == 201, "an accepted workflow is never refused for a broker outage"
    with sessions() as session:
        outbox = session.scalars(select(Outbox)).one()
        assert outbox.payload == {"workflow_id": response.json()["data"]["id"]}
        assert outbox.sent_at is None
