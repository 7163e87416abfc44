"""GET /definitions, GET /workflows (filters, views, rights), show, DELETE, PUT/PATCH, GET /jobs.

Ports api.md §13 (tests 3, 4, 12, 13, 17–19, 28–31, 41, 48, 49) with README's API decisions
applied: 401 without credentials, "delete" in DELETE's 403, 405 for PUT/PATCH, lists in the
three forms, 422 naming the field for malformed input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.outbox import Owed
from stepflow.api.app import create_app
from stepflow.models import (
    Artifact,
    Job,
    JobStatus,
    Outbox,
    Progression,
    Right,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from stepflow.models.base import utcnow
from stepflow.security import issue_token
from stepflow.settings import Settings
from tests.support import CREATED_VIEW_FIELDS, definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"
SECRET = "lists-test-secret"
REFERENCE = "9A9F48E4-5585-4E8E-9199-CEFECF85CE14"


def user(*groups: str) -> dict[str, str]:
    """Headers of a user holding ``groups`` (a session token)."""
    return {"Authorization": f"Bearer {issue_token(SECRET, 'tester', tuple(groups), 3600)}"}


def rights_of(action: str, group: str) -> list[dict[str, Any]]:
    return [{"action": action, "groups": [group]}]


SIMPLE_STEPS = [step(0, "job_test", [source_paths("a.mov")])]
SIMPLE_0_0_1 = definition(
    "simple_workflow",
    SIMPLE_STEPS,
    version=(0, 0, 1),
    rights=[
        {"action": action, "groups": [f"administrator_{action}"]}
        for action in ("view", "create", "retry", "abort", "delete")
    ],
)
SIMPLE_0_1_0 = {
    **definition(
        "simple_workflow",
        SIMPLE_STEPS,
        version=(0, 1, 0),
        parameters=[{"id": "audio_source_filename", "type": "string", "value": "to_change.mp4"}],
        rights=[
            {"action": action, "groups": [f"user_{action}"]}
            for action in ("view", "create", "retry", "abort", "delete")
        ],
    ),
    "tags": ["speech_to_text"],
}
OTHER = definition("other_flow", SIMPLE_STEPS, version=(2, 0, 0), rights=rights_of("view", "user_view"))


@pytest.fixture
def owed() -> list[Owed]:
    return []


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path, owed: list[Owed]
) -> Iterator[TestClient]:
    write_definitions(definitions_folder, SIMPLE_0_0_1, SIMPLE_0_1_0, OTHER)
    secured = dataclasses.replace(settings, auth_anonymous=False, session_secret=SECRET)
    with TestClient(create_app(secured, launcher=lambda _: None, send_owed=owed.append)) as test_client:
        yield test_client


def insert_workflow(
    sessions: sessionmaker[Session],
    rights: list[dict[str, Any]],
    *,
    identifier: str = REFERENCE,
    reference: str = REFERENCE,
    status: str = "pending",
    is_live: bool = False,
    version: tuple[int, int, int] = (1, 2, 3),
    steps: list[dict[str, Any]] | None = None,
    inserted_at: datetime | None = None,
) -> int:
    """api.md §13's fixture ``W(rights)``, inserted directly, with its first status row."""
    with sessions() as session, session.begin():
        workflow = Workflow(
            schema_version="1.8",
            identifier=identifier,
            version_major=version[0],
            version_minor=version[1],
            version_micro=version[2],
            tags=[],
            is_live=is_live,
            reference=reference,
            steps=steps or [],
            parameters=[],
            status=status,
            rights=[Right(action=right["action"], groups=right["groups"]) for right in rights],
        )
        if inserted_at is not None:
            workflow.inserted_at = inserted_at
        session.add(workflow)
        session.flush()
        for entry in steps or []:
            session.add(WorkflowStep(workflow_id=workflow.id, step_id=entry["id"], name=entry["name"]))
        session.add(WorkflowStatus(workflow_id=workflow.id, state=status))
        return workflow.id


def set_status(sessions: sessionmaker[Session], workflow_id: int, state: str) -> None:
    with sessions() as session, session.begin():
        session.get_one(Workflow, workflow_id).status = state
        session.add(WorkflowStatus(workflow_id=workflow_id, state=state))


def total(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> int:
    response = client.get(PREFIX + path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["total"]


# --- GET /definitions ---------------------------------------------------------------------


def test_definitions_list_follows_the_view_right(client: TestClient) -> None:
    """api.md §13 tests 12 and 13."""
    body = client.get(f"{PREFIX}/definitions", headers=user("user_view")).json()
    assert body["total"] == 2
    assert [(d["identifier"], d["version_minor"]) for d in body["data"]] == [("other_flow", 0), ("simple_workflow", 1)]
    assert client.get(f"{PREFIX}/definitions", headers=user()).json() == {"data": [], "total": 0}
    assert total(client, "/definitions", user("administrator_view")) == 1
    assert total(client, "/definitions", user("user_view"), right_action="create") == 0
    assert total(client, "/definitions", user("user_create"), right_action="create") == 1
    # The groups always come from the principal, never from the query.
    assert total(client, "/definitions", user(), rights="user_view") == 0


def test_definitions_list_full_and_simple_views(client: TestClient) -> None:
    full = client.get(f"{PREFIX}/definitions", params={"search": "simple"}, headers=user("user_view")).json()
    assert full["data"] == [
        {
            "schema_version": "1.8",
            "id": full["data"][0]["id"],
            "identifier": "simple_workflow",
            "label": "simple workflow",
            "icon": "custom_icon",
            "is_live": False,
            "version_major": 0,
            "version_minor": 1,
            "version_micro": 0,
            "tags": ["speech_to_text"],
            "start_parameters": [],
            "parameters": [{"id": "audio_source_filename", "type": "string", "value": "to_change.mp4"}],
        }
    ]
    for params in ({"mode": "simple"}, {"mode[]": "simple"}):
        simple = client.get(f"{PREFIX}/definitions", params=params, headers=user("user_view")).json()["data"]
        assert {key for item in simple for key in item} == {
            "id",
            "identifier",
            "is_live",
            "label",
            "version_major",
            "version_minor",
            "version_micro",
        }
    response = client.get(f"{PREFIX}/definitions", params={"mode": "other"}, headers=user("user_view"))
    assert response.status_code == 422 and "mode" in response.json()["errors"]


def test_definitions_versions_search_and_pagination(client: TestClient) -> None:
    both = user("user_view", "administrator_view")
    assert total(client, "/definitions", both) == 3
    latest = client.get(f"{PREFIX}/definitions", params={"versions[]": "latest"}, headers=both).json()
    assert [(d["identifier"], d["version_minor"]) for d in latest["data"]] == [
        ("other_flow", 0),
        ("simple_workflow", 1),
    ]
    assert latest["total"] == 2
    # "latest" is computed after the rights filter.
    only_old = client.get(f"{PREFIX}/definitions", params={"versions": "latest"}, headers=user("administrator_view"))
    assert [d["version_micro"] for d in only_old.json()["data"]] == [1]
    assert total(client, "/definitions", both, **{"versions[]": "0.0.1"}) == 1
    assert total(client, "/definitions", both, versions="0.0.1,0.1.0") == 2
    response = client.get(f"{PREFIX}/definitions?versions=0.0.1&versions=2.0.0", headers=both)
    assert response.json()["total"] == 2
    assert total(client, "/definitions", both, versions="") == 3
    # search: label contains, or identifier ILIKE (no added wildcards).
    assert total(client, "/definitions", both, search="SIMPLE") == 2
    assert total(client, "/definitions", both, search="Simple_Workflow") == 2
    assert total(client, "/definitions", both, search="flows") == 0
    # Ordering: version descending, then id; size=-1 gives everything.
    everything = client.get(f"{PREFIX}/definitions", params={"size": -1}, headers=both).json()
    assert [d["version_major"] * 100 + d["version_minor"] * 10 + d["version_micro"] for d in everything["data"]] == [
        200,
        10,
        1,
    ]
    second = client.get(f"{PREFIX}/definitions", params={"size": 1, "page": 1}, headers=both).json()
    assert second["total"] == 3 and [d["version_minor"] for d in second["data"]] == [1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"versions": "1.0"}, "versions"),
        ({"versions[]": ["latest", "0.0.1"]}, "versions"),
        ({"size": "0"}, "size"),
        ({"size": "-2"}, "size"),
        ({"page": "x"}, "page"),
        ({"page": "-1"}, "page"),
    ],
)
def test_definitions_list_rejects_malformed_parameters(client: TestClient, params: dict, field: str) -> None:
    response = client.get(f"{PREFIX}/definitions", params=params, headers=user("user_view"))
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]


# --- GET /workflows -----------------------------------------------------------------------


def test_workflows_list_follows_the_view_right(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 tests 17 and 18."""
    viewer = user("user_view")
    assert client.get(f"{PREFIX}/workflows", headers=viewer).json() == {"data": [], "total": 0}
    assert client.get(f"{PREFIX}/workflows", headers=user("unauthorized")).json() == {"data": [], "total": 0}
    insert_workflow(sessions, rights_of("view", "user_view"))
    assert total(client, "/workflows", viewer) == 1
    assert total(client, "/workflows", user("user_update")) == 0
    assert client.get(f"{PREFIX}/workflows", headers=user("unauthorized")).json() == {"data": [], "total": 0}


def test_workflows_list_items_are_full_views(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 test 41 (index form), plus jobs, statuses, progressions and artifacts per item."""
    steps = [step(0, "job_test"), step(1, "job_next", parent_ids=[0])]
    first = insert_workflow(sessions, rights_of("view", "user_view"), identifier="id", reference="some id", steps=steps)
    second = insert_workflow(sessions, rights_of("view", "user_view"), steps=steps)
    with sessions() as session, session.begin():
        for workflow_id, count in ((first, 1), (second, 2)):
            for index in range(count):
                job = Job(workflow_id=workflow_id, step_id=0, input_index=index, name="job_test", state="completed")
                session.add(job)
                session.flush()
                session.add(JobStatus(job_id=job.id, state="completed"))
                session.add(Progression(job_id=job.id, reported_at=utcnow(), docker_container_id="c", progression=100))
            row = session.get_one(WorkflowStep, (workflow_id, 0))
            row.completed = count
        session.add(Artifact(workflow_id=first, resources={}))
    body = client.get(f"{PREFIX}/workflows", headers=user("user_view")).json()
    assert body["total"] == 2
    newest, oldest = body["data"]
    assert (newest["id"], oldest["id"]) == (second, first)
    assert set(oldest) == CREATED_VIEW_FIELDS | {
        "is_live",
        "status",
        "steps",
        "artifacts",
        "jobs",
        "rights",
    }
    assert oldest["identifier"] == "id" and oldest["reference"] == "some id" and oldest["status"] == "pending"
    assert [right["action"] for right in oldest["rights"]] == ["view"]
    assert [len(newest["jobs"]), len(oldest["jobs"])] == [2, 1]
    assert all(job["workflow_id"] == second for job in newest["jobs"])
    job = oldest["jobs"][0]
    assert [s["state"] for s in job["status"]] == ["completed"]
    assert [p["progression"] for p in job["progressions"]] == [100]
    assert [a["resources"] for a in oldest["artifacts"]] == [{}] and newest["artifacts"] == []
    assert [s["status"] for s in newest["steps"]] == ["completed", "queued"]
    assert newest["steps"][0]["jobs"]["completed"] == 2 and newest["steps"][0]["jobs"]["total"] == 2


def test_workflows_list_costs_a_fixed_number_of_queries(client: TestClient, sessions: sessionmaker[Session]) -> None:
    steps = [step(0, "job_test")]

    def statements_for_a_page() -> int:
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(Engine, "before_cursor_execute", count)
        try:
            response = client.get(f"{PREFIX}/workflows", params={"size": 50}, headers=user("user_view"))
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(seen)

    def add_workflows(count: int) -> None:
        for _ in range(count):
            workflow_id = insert_workflow(sessions, rights_of("view", "user_view"), steps=steps)
            with sessions() as session, session.begin():
                for index in range(3):
                    job = Job(workflow_id=workflow_id, step_id=0, input_index=index, name="job_test")
                    session.add(job)
                    session.flush()
                    session.add(JobStatus(job_id=job.id, state="queued"))
                session.add(Artifact(workflow_id=workflow_id, resources={}))

    add_workflows(2)
    few = statements_for_a_page()
    add_workflows(20)
    many = statements_for_a_page()
    assert few == many <= 8, (few, many)


def test_workflows_list_filters(client: TestClient, sessions: sessionmaker[Session]) -> None:
    viewer = user("user_view")
    view = rights_of("view", "user_view")
    now = datetime.now(UTC)
    file_id = insert_workflow(
        sessions, view, identifier="alpha", reference="Media-42", inserted_at=now - timedelta(minutes=3)
    )
    live_id = insert_workflow(
        sessions,
        view,
        identifier="beta",
        reference="media-7",
        is_live=True,
        version=(2, 0, 1),
        inserted_at=now - timedelta(minutes=2),
    )
    other_id = insert_workflow(
        sessions, view, identifier="gamma_%", reference="x", status="completed", inserted_at=now - timedelta(minutes=1)
    )
    hidden = insert_workflow(sessions, rights_of("view", "administrator"), identifier="alpha")

    def ids(**params: Any) -> list[int]:
        response = client.get(f"{PREFIX}/workflows", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert ids() == [other_id, live_id, file_id]
    assert hidden not in ids(identifier="alpha") and ids(identifier="alpha") == [file_id]
    assert ids(identifier="") == [other_id, live_id, file_id]
    assert ids(version_major=2) == [live_id]
    assert ids(version_major=1, version_minor=2, version_micro=3) == [other_id, file_id]
    assert ids(is_live="true") == [live_id]
    assert ids(is_live="false") == [other_id, file_id]
    assert ids(mode="live") == [live_id]
    assert ids(**{"mode[]": "file"}) == [other_id, file_id]
    for both in ({"mode[]": ["file", "live"]}, {"mode": "live,file"}, {"mode": ["file", "live"]}):
        assert ids(**both) == [other_id, live_id, file_id]
    assert ids(mode="live", is_live="false") == []
    assert ids(**{"states[]": "completed"}) == [other_id]
    assert ids(states="pending,completed") == [other_id, live_id, file_id]
    assert ids(states="aborted") == []
    assert ids(**{"ids[]": [str(file_id), str(live_id)]}) == [live_id, file_id]
    assert ids(ids=f"{file_id},{other_id}") == [other_id, file_id]
    assert ids(ids=[str(live_id), str(hidden)]) == [live_id]
    assert ids(**{"workflow_ids[]": "beta"}) == [live_id]
    assert ids(workflow_ids="alpha,beta") == [live_id, file_id]
    # search (ours): reference or identifier, case-insensitive substring; wildcards are literal.
    assert ids(search="MEDIA") == [live_id, file_id]
    assert ids(search="et") == [live_id]
    assert ids(search="_%") == [other_id]
    assert ids(search="%") == [other_id]
    # Pagination keeps the order, total counts everything.
    page = client.get(f"{PREFIX}/workflows", params={"size": 2, "page": 1}, headers=viewer).json()
    assert page["total"] == 3 and [item["id"] for item in page["data"]] == [file_id]


def test_workflows_states_filter_uses_the_current_status(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 test 48, with ours' ``paused`` and ``aborted``."""
    viewer = user("user_view")
    workflow_id = insert_workflow(sessions, rights_of("view", "user_view"))
    assert total(client, "/workflows", viewer, **{"states[]": "pending"}) == 1
    for state in ("error", "processing", "paused", "completed", "aborted"):
        set_status(sessions, workflow_id, state)
        assert total(client, "/workflows", viewer, **{"states[]": state}) == 1, state
        assert total(client, "/workflows", viewer, **{"states[]": "pending"}) == 0
    assert total(client, "/workflows", viewer, states=["retrying", "skipped"]) == 0


def test_workflows_date_filters(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 test 49."""
    viewer = user("user_view")
    insert_workflow(sessions, rights_of("view", "user_view"))
    now = datetime.now(UTC)
    today = now.date()
    for params, expected in [
        ({"before_date": today.isoformat()}, 1),
        ({"before_date": (now + timedelta(seconds=2)).isoformat()}, 1),
        ({"before_date": (now + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")}, 1),
        ({"before_date": (today - timedelta(days=1)).isoformat()}, 0),
        ({"before_date": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")}, 0),
        ({"after_date": (today - timedelta(days=1)).isoformat()}, 1),
        ({"after_date": (now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")}, 1),
        ({"after_date": (today + timedelta(days=1)).isoformat()}, 0),
        ({"after_date": (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}, 0),
        ({"after_date": today.isoformat(), "before_date": today.isoformat()}, 1),
    ]:
        assert total(client, "/workflows", viewer, **params) == expected, params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "x"}, "page"),
        ({"size": "0"}, "size"),
        ({"size": "-1"}, "size"),
        ({"version_major": "x"}, "version_major"),
        ({"is_live": "maybe"}, "is_live"),
        ({"mode": "simple"}, "mode"),
        ({"mode[]": ["live", "other"]}, "mode"),
        ({"states[]": "bogus"}, "states"),
        ({"ids": "1,a"}, "ids"),
        ({"after_date": "yesterday"}, "after_date"),
        ({"before_date": "2021-02-30"}, "before_date"),
    ],
)
def test_workflows_list_rejects_malformed_values(client: TestClient, params: dict, field: str) -> None:
    response = client.get(f"{PREFIX}/workflows", params=params, headers=user("user_view"))
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]) == [field]


# --- GET /workflows/:id, PUT/PATCH, DELETE --------------------------------------------------


def test_show_workflow_rights_and_modes(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 tests 19, 28 and 29."""
    workflow_id = insert_workflow(sessions, rights_of("view", "user_view"))
    set_status(sessions, workflow_id, "completed")
    simple = client.get(f"{PREFIX}/workflows/{workflow_id}", params={"mode": "simple"}, headers=user("user_view"))
    assert simple.status_code == 200 and simple.json()["data"]["status"]["state"] == "completed"
    full = client.get(f"{PREFIX}/workflows/{workflow_id}", headers=user("user_view")).json()["data"]
    assert full["identifier"] == REFERENCE and full["reference"] == REFERENCE
    guarded = insert_workflow(sessions, rights_of("view", "administrator"))
    denied = client.get(f"{PREFIX}/workflows/{guarded}", headers=user("unauthorized"))
    assert denied.status_code == 403
    assert denied.json() == {
        "errors": [{"reason": "Forbidden to view workflow with this identifier", "message": "Incorrect parameters"}]
    }
    wrong_mode = client.get(f"{PREFIX}/workflows/{workflow_id}", params={"mode": "other"}, headers=user("user_view"))
    assert wrong_mode.status_code == 422 and "mode" in wrong_mode.json()["errors"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_put_and_patch_are_not_allowed(client: TestClient, sessions: sessionmaker[Session], method: str) -> None:
    """api.md §13 test 30 under README decision 5: 405 with a JSON error and ``Allow``."""
    workflow_id = insert_workflow(sessions, rights_of("update", "user_update"))
    response = getattr(client, method)(
        f"{PREFIX}/workflows/{workflow_id}",
        json={"workflow": {"reference": "updated reference"}},
        headers=user("user_update"),
    )
    assert response.status_code == 405
    assert response.json() == {"errors": {"detail": "Method not allowed"}}
    assert {part.strip() for part in response.headers["allow"].split(",")} == {"GET", "DELETE"}


def test_delete_needs_the_delete_right(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 test 31 under README decision 4."""
    workflow_id = insert_workflow(sessions, rights_of("delete", "user_delete"))
    denied = client.delete(f"{PREFIX}/workflows/{workflow_id}", headers=user("user_update"))
    assert denied.status_code == 403
    assert denied.json() == {
        "errors": [{"reason": "Forbidden to delete workflow with this identifier", "message": "Incorrect parameters"}]
    }
    deleted = client.delete(f"{PREFIX}/workflows/{workflow_id}", headers=user("user_delete"))
    assert deleted.status_code == 204 and deleted.content == b""
    with sessions() as session:
        assert session.get(Workflow, workflow_id) is None
        assert session.scalars(select(WorkflowStatus)).all() == []
        assert session.scalars(select(Right).where(Right.workflow_id.is_not(None))).all() == []
    again = client.delete(f"{PREFIX}/workflows/{workflow_id}", headers=user("user_delete"))
    assert again.status_code == 404
    assert again.json() == {"errors": {"detail": f"Workflow {workflow_id} not found"}}
    assert client.delete(f"{PREFIX}/workflows/abc", headers=user("user_delete")).status_code == 422


def test_delete_aborts_a_running_workflow_first(
    client: TestClient, sessions: sessionmaker[Session], owed: list[Owed]
) -> None:
    steps = [step(0, "job_test"), step(1, "job_next", parent_ids=[0])]
    workflow_id = insert_workflow(sessions, rights_of("delete", "user_delete"), status="processing", steps=steps)
    with sessions() as session, session.begin():
        job = Job(workflow_id=workflow_id, step_id=0, input_index=0, name="job_test", dispatched_at=utcnow())
        session.add(job)
        session.flush()
        job_id = job.id
        session.get_one(WorkflowStep, (workflow_id, 0)).queued = 1
    response = client.delete(f"{PREFIX}/workflows/{workflow_id}", headers=user("user_delete"))
    assert response.status_code == 204
    # The dispatched job was black-listed before the workflow went away.
    assert len(owed) == 1 and len(owed[0].direct_messages) == 1
    with sessions() as session:
        assert session.get(Workflow, workflow_id) is None and session.get(Job, job_id) is None
        message = session.get_one(Outbox, owed[0].direct_messages[0])
        assert message.payload["body"] == {"type": "add_to_black_list", "job_id": job_id}


# --- GET /jobs ------------------------------------------------------------------------------


def test_jobs_list(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 tests 3 and 4, plus ours' rule 13 (jobs of viewable workflows only)."""
    viewer = user("user_view")
    assert client.get(f"{PREFIX}/jobs", headers=viewer).json() == {"data": [], "total": 0}
    visible = insert_workflow(sessions, rights_of("view", "user_view"))
    hidden = insert_workflow(sessions, rights_of("view", "administrator"))
    parameters = [{"id": "direct_messaging_queue_name", "type": "string", "value": "job_live"}]
    with sessions() as session, session.begin():
        live = Job(workflow_id=visible, step_id=0, input_index=0, name="job_live", parameters=parameters)
        session.add_all(
            [
                live,
                Job(workflow_id=visible, step_id=1, input_index=0, name="job_test"),
                Job(workflow_id=hidden, step_id=0, input_index=0, name="job_live", parameters=parameters),
            ]
        )
        session.flush()
        live_id = live.id
    assert total(client, "/jobs", viewer) == 2
    queue = client.get(
        f"{PREFIX}/jobs", params={"direct_messaging_queue_name": "direct_messaging_job_live"}, headers=viewer
    ).json()
    assert queue["total"] == 1 and queue["data"][0]["id"] == live_id
    assert total(client, "/jobs", viewer, step_id=1) == 1
    assert total(client, "/jobs", viewer, job_type="job_live", workflow_id=visible) == 1
    assert total(client, "/jobs", user("administrator"), workflow_id=hidden) == 1
    for params, field in (
        ({"workflow_id": "x"}, "workflow_id"),
        ({"step_id": "1.5"}, "step_id"),
        ({"size": 0}, "size"),
    ):
        response = client.get(f"{PREFIX}/jobs", params=params, headers=viewer)
        assert response.status_code == 422 and list(response.json()["errors"]) == [field]


# --- credentials ----------------------------------------------------------------------------


def test_list_routes_need_credentials(client: TestClient, sessions: sessionmaker[Session]) -> None:
    workflow_id = insert_workflow(sessions, rights_of("delete", "user_delete"))
    for method, path in [
        ("get", "/definitions"),
        ("get", "/workflows"),
        ("delete", f"/workflows/{workflow_id}"),
        ("put", f"/workflows/{workflow_id}"),
        ("get", "/jobs"),
    ]:
        response = getattr(client, method)(PREFIX + path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"errors": {"detail": "You need to login to view this resource"}}
