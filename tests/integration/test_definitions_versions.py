"""Later standard versions through the API: rights from the settings, hooks stored and copied at launch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Right, Workflow, WorkflowDefinition
from stepflow.settings import Settings
from tests.support import versioned_definition

PREFIX = "/api/step_flow"

ENDPOINT = "https://hooks.example.org/stepflow"
NEWSROOM_CREDENTIALS = {"NEWSROOM": "Bearer newsroom-token"}
NEWSROOM_RIGHTS: tuple[dict[str, Any], ...] = (
    {"action": "view", "groups": ["administrator"]},
    {"action": "create", "groups": ["administrator", "newsroom"]},
)
DEFAULT_RIGHTS: tuple[dict[str, Any], ...] = ({"action": "view", "groups": ["administrator"]},)


HOOKED = versioned_definition(
    "hooked",
    "1.13",
    [
        {
            "label": "Newsroom",
            "endpoint": ENDPOINT,
            "credentials": "NEWSROOM",
            "conditions": {"workflow_completed": True, "job_error": True, "workflow_error": False},
        },
        {"label": "Audit", "endpoint": ENDPOINT + "/audit", "conditions": {"workflow_aborted": True}},
    ],
)
EXPECTED_HOOKS = [
    {
        "label": "Newsroom",
        "endpoint": ENDPOINT,
        "credentials": "NEWSROOM",
        "events": ["job_error", "workflow_completed"],
    },
    {"label": "Audit", "endpoint": ENDPOINT + "/audit", "credentials": None, "events": ["workflow_aborted"]},
]


def write(folder: Path, name: str, content: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(content))


def rights_of(session: Session, **owner: int) -> list[dict[str, Any]]:
    column = Right.definition_id if "definition_id" in owner else Right.workflow_id
    rows = session.scalars(select(Right).where(column == next(iter(owner.values()))).order_by(Right.id))
    return [{"action": row.action, "groups": list(row.groups)} for row in rows]


def test_a_1_13_definition_takes_settings_rights_and_its_launch_copies_rights_and_hooks(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    write(definitions_folder, "hooked.json", HOOKED)
    write(
        definitions_folder,
        "plain.json",
        versioned_definition("plain", "1.10", [{"label": "Ops", "endpoint": ENDPOINT}]),
    )
    unknown_event = versioned_definition(
        "unknown_event", "1.13", [{"label": "X", "endpoint": ENDPOINT, "conditions": {"x": True}}]
    )
    write(definitions_folder, "unknown_event.json", unknown_event)
    unknown_credentials = versioned_definition(
        "unknown_credentials", "1.10", [{"label": "X", "endpoint": ENDPOINT, "credentials": "NOPE"}]
    )
    write(definitions_folder, "unknown_credentials.json", unknown_credentials)
    configured = dataclasses.replace(
        settings,
        default_rights=DEFAULT_RIGHTS,
        rights_overrides={"hooked": NEWSROOM_RIGHTS},
        notification_credentials=NEWSROOM_CREDENTIALS,
    )
    launched: list[int] = []
    with TestClient(create_app(configured, launcher=launched.append)) as client:
        body = client.post(f"{PREFIX}/definitions").json()
        assert sorted(entry["identifier"] for entry in body["loaded"]) == ["hooked", "plain"]
        invalid = {Path(entry["file"]).name: entry["error"] for entry in body["invalid"]}
        assert invalid["unknown_event.json"].startswith("notification_hooks[0].conditions: 'x' is not one of")
        assert invalid["unknown_credentials.json"] == (
            "notification_hooks[0].credentials: unknown notification credentials 'NOPE'"
        )
        assert len(invalid) == 2

        with sessions() as session:
            hooked = session.scalars(select(WorkflowDefinition).where(WorkflowDefinition.identifier == "hooked")).one()
            plain = session.scalars(select(WorkflowDefinition).where(WorkflowDefinition.identifier == "plain")).one()
            assert hooked.schema_version == "1.13"
            assert hooked.notification_hooks == EXPECTED_HOOKS
            assert rights_of(session, definition_id=hooked.id) == list(NEWSROOM_RIGHTS)
            assert plain.notification_hooks == [
                {
                    "label": "Ops",
                    "endpoint": ENDPOINT,
                    "credentials": None,
                    "events": ["workflow_aborted", "workflow_completed", "workflow_error"],
                }
            ]
            assert rights_of(session, definition_id=plain.id) == list(DEFAULT_RIGHTS)

        response = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "hooked", "reference": "ref"})
        assert response.status_code == 201, response.text
        workflow_id = response.json()["data"]["id"]
        assert response.json()["data"]["schema_version"] == "1.13"
        assert launched == [workflow_id]
        # The default rights give no `create`: a 1.9+ definition without an override is view-only.
        refused = client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "plain", "reference": "ref"})
        assert refused.status_code == 403

    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        assert workflow.notification_hooks == EXPECTED_HOOKS
        assert rights_of(session, workflow_id=workflow_id) == list(NEWSROOM_RIGHTS)


def test_settings_rights_follow_the_settings_from_one_load_to_the_next(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    write(definitions_folder, "hooked.json", HOOKED)
    before = dataclasses.replace(
        settings, default_rights=DEFAULT_RIGHTS, rights_overrides={}, notification_credentials=NEWSROOM_CREDENTIALS
    )
    with TestClient(create_app(before, launcher=lambda _: None)) as client:
        assert (
            client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "hooked", "reference": "r"}).status_code
            == 403
        )
    after = dataclasses.replace(before, rights_overrides={"hooked": NEWSROOM_RIGHTS})
    with TestClient(create_app(after, launcher=lambda _: None)) as client:
        body = client.post(f"{PREFIX}/definitions").json()
        assert [entry["identifier"] for entry in body["loaded"]] == ["hooked"] and body["skipped"] == []
        assert (
            client.post(f"{PREFIX}/workflows", json={"workflow_identifier": "hooked", "reference": "r"}).status_code
            == 201
        )
    with sessions() as session:
        [stored] = session.scalars(select(WorkflowDefinition)).all()
        assert rights_of(session, definition_id=stored.id) == list(NEWSROOM_RIGHTS)
        assert stored.notification_hooks == EXPECTED_HOOKS
