"""Changes recorded by state changes reach the listeners when (and only when) they commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from stepflow import changes
from stepflow.api.app import create_app
from stepflow.changes import Change
from stepflow.models import Job
from stepflow.settings import Settings
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"


@pytest.fixture
def heard() -> Iterator[dict[str, list[Change]]]:
    """What a before-commit and an after-commit listener were told."""
    seen: dict[str, list[Change]] = {"before": [], "after": []}

    def before(session: Session, batch: Sequence[Change]) -> None:
        assert session.in_transaction()
        seen["before"].extend(batch)

    def after(batch: Sequence[Change]) -> None:
        seen["after"].extend(batch)

    changes.before_commit("test", before)
    changes.after_commit("test", after)
    yield seen
    changes.forget_listeners()


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> Iterator[TestClient]:
    write_definitions(
        definitions_folder,
        definition("two", [step(0, "job_a", [source_paths("/a")]), step(1, "job_b", [], parent_ids=[0])]),
    )
    with TestClient(create_app(settings, launcher=actors.launch_workflow.fn)) as client:
        yield client


def summary(batch: Sequence[Change]) -> list[tuple[Any, ...]]:
    return [
        (
            change.event,
            change.job.name if change.job else None,
            change.job.state if change.job else change.workflow.status if change.workflow else None,
            change.previous,
        )
        for change in batch
    ]


def test_a_launch_and_a_completion_are_heard_in_commit_order(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], heard: dict[str, list[Change]]
) -> None:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": "two", "reference": "r"})
    workflow_id = response.json()["data"]["id"]
    with sessions() as session:
        (job,) = session.scalars(select(Job).where(Job.workflow_id == workflow_id))
    actors.job_progression.fn({"job_id": job.id, "progression": 30})
    actors.job_completed.fn({"job_id": job.id, "status": "completed"})
    assert summary(heard["after"]) == [
        ("workflow_created", None, "pending", None),
        ("job_state", "job_a", "queued", None),
        ("workflow_status", None, "processing", "pending"),
        ("job_progression", "job_a", "queued", None),
        ("job_state", "job_a", "processing", "queued"),
        ("job_state", "job_a", "completed", "processing"),
        ("job_state", "job_b", "queued", None),
    ]
    assert heard["before"] == heard["after"]
    created = heard["after"][0].workflow
    assert created is not None and (created.id, created.identifier, created.version) == (workflow_id, "two", "1.0.0")
    assert heard["after"][3].progression == 30


def test_a_rolled_back_change_is_never_heard(sessions: sessionmaker[Session], heard: dict[str, list[Change]]) -> None:
    with sessions() as session:
        with session.begin():
            changes.record(session, Change(changes.WORKERS_STATUS))
            session.execute(text("SELECT 1"))
            session.rollback()
        with session.begin():
            session.execute(text("SELECT 1"))
    assert heard == {"before": [], "after": []}


def test_a_failing_after_commit_listener_changes_nothing(
    sessions: sessionmaker[Session], heard: dict[str, list[Change]]
) -> None:
    def broken(batch: Sequence[Change]) -> None:
        raise RuntimeError("listener down")

    changes.after_commit("broken", broken)
    with sessions() as session, session.begin():
        changes.record(session, Change(changes.WORKERS_STATUS))
    assert [change.event for change in heard["after"]] == ["workers_status"]
