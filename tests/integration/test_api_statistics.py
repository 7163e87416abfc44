"""GET /workflows_statistics (api.md §7.1; §13 tests 32–34) with ours' ``aborted``/``paused`` keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Right, Workflow, WorkflowStatus
from stepflow.security import issue_token
from stepflow.settings import Settings

PREFIX = "/api/step_flow"
SECRET = "statistics-test-secret"
ZEROS = {"completed": 0, "error": 0, "processing": 0, "pending": 0, "aborted": 0, "paused": 0}


def user(*groups: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, 'tester', tuple(groups), 3600)}"}


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    secured = dataclasses.replace(settings, auth_anonymous=False, session_secret=SECRET)
    with TestClient(create_app(secured, launcher=lambda _: None)) as test_client:
        yield test_client


def insert_workflow(sessions: sessionmaker[Session], identifier: str, view_group: str = "user_view") -> int:
    with sessions() as session, session.begin():
        workflow = Workflow(
            schema_version="1.8",
            identifier=identifier,
            version_major=1,
            version_minor=2,
            version_micro=3,
            reference=identifier,
            steps=[],
            rights=[Right(action="view", groups=[view_group])],
        )
        session.add(workflow)
        session.flush()
        return workflow.id


def add_status(sessions: sessionmaker[Session], workflow_id: int, state: str, at: datetime) -> None:
    with sessions() as session, session.begin():
        session.add(WorkflowStatus(workflow_id=workflow_id, state=state, inserted_at=at))


def second(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def stats(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/workflows_statistics", params=params, headers=headers or user("user_view"))
    assert response.status_code == 200, response.text
    return response.json()


def test_bins_count_status_rows_back_from_end_date(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 test 32 (second precision: a row at T.5 belongs to the second T)."""
    workflow_id = insert_workflow(sessions, "id")
    moment = (datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=500_000)
    add_status(sessions, workflow_id, "processing", moment)
    s, e = second(moment - timedelta(seconds=1)), second(moment)
    assert stats(client, **{"identifiers[]": "id", "start_date": s, "end_date": e, "time_interval": 1}) == {
        "data": {
            **ZEROS,
            "processing": 1,
            "bins": [{"bin": 0, "start_date": s, "end_date": e, **ZEROS, "processing": 1}],
        }
    }
    later = moment + timedelta(seconds=1)
    add_status(sessions, workflow_id, "completed", later)
    s2, e2 = second(later - timedelta(seconds=1)), second(later)
    assert stats(client, **{"identifiers[]": "id", "start_date": s2, "end_date": e2, "time_interval": 1}) == {
        "data": {
            **ZEROS,
            "processing": 1,
            "completed": 1,
            "bins": [
                {"bin": 0, "start_date": s2, "end_date": e2, **ZEROS, "completed": 1},
                {"bin": 1, "start_date": s, "end_date": e, **ZEROS, "processing": 1},
            ],
        }
    }


def test_swapped_or_empty_windows_are_all_zeros(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """api.md §13 tests 33 and 34."""
    workflow_id = insert_workflow(sessions, "id")
    now = datetime.now(UTC)
    add_status(sessions, workflow_id, "processing", now - timedelta(seconds=5))
    swapped = stats(client, start_date=second(now), end_date=second(now - timedelta(minutes=1)), time_interval=1)
    assert swapped == {"data": {**ZEROS, "bins": []}}
    assert stats(client, start_date=second(now + timedelta(seconds=1))) == {"data": {**ZEROS, "bins": []}}


def test_defaults_rights_identifiers_and_states(client: TestClient, sessions: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    first = insert_workflow(sessions, "alpha")
    other = insert_workflow(sessions, "beta")
    hidden = insert_workflow(sessions, "alpha", view_group="administrator")
    for state in ("pending", "processing", "retrying", "skipped", "paused", "aborted"):
        add_status(sessions, first, state, now - timedelta(minutes=10))
    add_status(sessions, other, "error", now - timedelta(hours=2))
    add_status(sessions, other, "completed", now - timedelta(hours=30))  # outside the default 24 h
    add_status(sessions, hidden, "completed", now - timedelta(minutes=10))
    # Defaults: the last 24 h in 60 bins of 1440 s.
    data = stats(client)["data"]
    assert {key: data[key] for key in ZEROS} == {
        **ZEROS,
        "pending": 1,
        "processing": 1,
        "paused": 1,
        "aborted": 1,
        "error": 1,
    }
    assert [entry["bin"] for entry in data["bins"]] == sorted(entry["bin"] for entry in data["bins"])
    assert len(data["bins"]) == 2
    recent = data["bins"][0]
    start, end = (datetime.fromisoformat(recent[key]) for key in ("start_date", "end_date"))
    assert (end - start).total_seconds() == 1440 and recent["pending"] == 1
    # identifiers in the three list forms.
    assert stats(client, identifiers="beta")["data"]["error"] == 1
    assert stats(client, identifiers="beta")["data"]["pending"] == 0
    assert stats(client, **{"identifiers[]": ["alpha", "beta"]})["data"]["error"] == 1
    assert stats(client, identifiers="alpha,beta")["data"]["pending"] == 1
    # Rights: the administrator sees only the workflow its group may view.
    admin = stats(client, user("administrator"))["data"]
    assert {key: admin[key] for key in ZEROS} == {**ZEROS, "completed": 1}
    assert stats(client, user())["data"] == {**ZEROS, "bins": []}


def test_a_wide_interval_gathers_everything_in_bin_0(client: TestClient, sessions: sessionmaker[Session]) -> None:
    workflow_id = insert_workflow(sessions, "id")
    now = datetime.now(UTC)
    for minutes in (1, 5, 50):
        add_status(sessions, workflow_id, "processing", now - timedelta(minutes=minutes))
    data = stats(client, start_date=second(now - timedelta(hours=1)), end_date=second(now), time_interval=3600)["data"]
    assert data["processing"] == 3 and [(b["bin"], b["processing"]) for b in data["bins"]] == [(0, 3)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "2021-07-08"}, "start_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2021-13-01 00:00:00"}, "end_date"),
        ({"time_interval": "x"}, "time_interval"),
        ({"time_interval": "1.5"}, "time_interval"),
    ],
)
def test_malformed_parameters_are_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    response = client.get(f"{PREFIX}/workflows_statistics", params=params, headers=user("user_view"))
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]


def test_statistics_need_credentials(client: TestClient) -> None:
    response = client.get(f"{PREFIX}/workflows_statistics")
    assert response.status_code == 401
    assert response.json() == {"errors": {"detail": "You need to login to view this resource"}}
