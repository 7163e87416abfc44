"""Builders shared by the tests: inline definitions (never read from elsewhere), worker messages, minimal rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stepflow.models import Workflow

ALL_RIGHTS = [
    {"action": action, "groups": ["administrator"]}
    for action in ("view", "create", "retry", "abort", "delete", "update")
]


CREATED_VIEW_FIELDS = frozenset(
    {
        "schema_version",
        "id",
        "identifier",
        "version_major",
        "version_minor",
        "version_micro",
        "tags",
        "reference",
        "parameters",
        "created_at",
    }
)
"""The fields of the view ``POST /workflows`` answers with (api.md §8.3)."""


def step(step_id: int, name: str, parameters: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": name, "label": name, "icon": "step_icon", "parameters": parameters or [], **fields}


def definition(
    identifier: str,
    steps: list[dict[str, Any]],
    *,
    version: tuple[int, int, int] = (1, 0, 0),
    parameters: list[dict[str, Any]] | None = None,
    rights: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    major, minor, micro = version
    return {
        "schema_version": "1.8",
        "identifier": identifier,
        "label": identifier.replace("_", " "),
        "icon": "custom_icon",
        "version_major": major,
        "version_minor": minor,
        "version_micro": micro,
        "tags": ["test"],
        "parameters": parameters or [],
        "rights": ALL_RIGHTS if rights is None else rights,
        "steps": steps,
    }


def write_definitions(folder: Path, *documents: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        version = f"{document['version_major']}.{document['version_minor']}.{document['version_micro']}"
        (folder / f"{document['identifier']}-{version}.json").write_text(json.dumps(document))
    return folder


def source_paths(*paths: str) -> dict[str, Any]:
    return {"id": "source_paths", "type": "array_of_strings", "value": list(paths)}


TWO_STEPS = definition(
    "two_steps",
    [
        step(0, "job_test", [source_paths("a.mov", "b.mov")]),
        step(1, "job_next", [], parent_ids=[0]),
    ],
)


def versioned_definition(identifier: str, version: str, hooks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A one-step definition of standard ``version``, without rights (1.9+)."""
    found: dict[str, Any] = {
        "schema_version": version,
        "identifier": identifier,
        "label": identifier,
        "icon": "webhook",
        "version_major": 1,
        "version_minor": 0,
        "version_micro": 0,
        "tags": ["hooks"],
        "parameters": [],
        "steps": [
            {
                "id": 0,
                "name": "job_transfer",
                "label": "Transfer",
                "icon": "file_download",
                "parameters": [{"id": "source_paths", "type": "array_of_strings", "value": ["a.mov"]}],
            }
        ],
    }
    if hooks is not None:
        found["notification_hooks"] = hooks
    return found


def worker_status_message(instance_id: str, queue: str, job_id: int | None) -> dict[str, Any]:
    """A ``worker_status`` answer of an SDK worker of ``queue``: Idle, or Busy with ``job_id``."""
    job = None if job_id is None else {"execution_duration": 1.0, "job_id": job_id, "status": "processing"}
    worker = {"activity": "Idle" if job is None else "Busy", "instance_id": instance_id, "queue_name": queue}
    return {"type": "status", "job": job, "worker": {**worker, "label": queue, "version": "1.0.0"}}


def stored_workflow(session: Session) -> Workflow:
    """A minimal workflow row, flushed: for tests that only need jobs to belong somewhere."""
    workflow = Workflow(
        schema_version="1.8", identifier="w", version_major=1, version_minor=0, version_micro=0, reference="r"
    )
    session.add(workflow)
    session.flush()
    return workflow
