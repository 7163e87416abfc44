"""StepFlow mounted in a host Litestar app with routes of its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import StepFlow
from stepflow.settings import Settings
from tests.support import TWO_STEPS, write_definitions


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def test_the_plugin_mounts_stepflow_beside_the_host_routes(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    write_definitions(definitions_folder, TWO_STEPS)
    mounted = dataclasses.replace(settings, api_prefix="/media/step_flow")
    host = Litestar(route_handlers=[health], plugins=[StepFlow(mounted, launcher=lambda _: None)])
    with TestClient(host) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/media/step_flow").json()["application"] == "Step Flow"
        launched = client.post(
            "/media/step_flow/workflows", json={"workflow_identifier": "two_steps", "reference": "r"}
        )
        assert launched.status_code == 201, launched.text
        assert client.get(f"/media/step_flow/workflows/{launched.json()['data']['id']}").status_code == 200
        missing = client.get("/media/step_flow/workflows/999999")
        assert missing.json() == {"errors": {"detail": "Workflow 999999 not found"}}
        assert client.post("/media/sessions", json={"session": {"email": "a@b", "password": "c"}}).status_code == 401
