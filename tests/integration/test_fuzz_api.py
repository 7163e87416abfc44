"""schemathesis against the app's own OpenAPI document: no generated request gets a 5xx.

In-process (ASGI), anonymous access as an administrator, no-op launcher and owed sender:
no network. Every operation the document describes is fuzzed, with valid (positive) and
invalid (negative) data, from a fixed seed; the requests the app really receives are
counted and must reach ``MIN_REQUESTS``. Run alone with::

    .venv/bin/pytest tests/integration/test_fuzz_api.py -q -s -p no:warnings
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
import structlog
from hypothesis import HealthCheck, Phase
from hypothesis.errors import HypothesisException
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.settings import Settings
from tests.support import TWO_STEPS, write_definitions

PREFIX = "/api/step_flow"
SEED = 20240917
MIN_REQUESTS = 2000
# Requests aimed at (a little above the minimum: small operations exhaust their input space early).
TARGET_REQUESTS = 3000
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

pytestmark = pytest.mark.timeout(600)


class CountingApp:
    """The ASGI app, counting the HTTP requests it receives (the document's own fetch aside)."""

    def __init__(self, app: Any, document_path: str) -> None:
        self.app = app
        self.document_path = document_path
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != self.document_path:
            self.requests += 1
        await self.app(scope, receive, send)


@dataclasses.dataclass
class ServerErrorReport:
    operation: str
    status: int
    request: str
    response: str


def cause(entry: dict[str, Any]) -> str:
    """An ``unhandled error`` log entry as the exception and the innermost StepFlow frame that raised it."""
    error = entry.get("exc_info")
    if not isinstance(error, BaseException):
        return f"{entry.get('method')} {entry.get('path')}: {error!r}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if "/stepflow/" in frame.filename]
    where = (
        f" at {frames[-1].filename.rsplit('/stepflow/', 1)[-1]}:{frames[-1].lineno} ({frames[-1].line})"
        if frames
        else ""
    )
    return f"{entry.get('method')} {entry.get('path')}: {type(error).__name__}: {str(error).splitlines()[0]}{where}"


def fuzz(operation: Any, mode: schemathesis.GenerationMode, examples: int, found: list[ServerErrorReport]) -> None:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.seed(SEED)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call()
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, FailureGroup):
            found.append(
                ServerErrorReport(
                    operation=operation.label,
                    status=response.status_code,
                    request=case.as_curl_command(),
                    response=response.text[:300],
                )
            )

    try:
        run()
    except HypothesisException as error:  # e.g. no negative data for an operation without parameters
        print(f"  {operation.label} [{mode.value}]: {type(error).__name__}")


def test_no_server_error_on_generated_requests(
    settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path
) -> None:
    write_definitions(definitions_folder, TWO_STEPS)
    anonymous = dataclasses.replace(settings, auth_anonymous=True, auth_anonymous_groups=("administrator",))
    document_path = f"{PREFIX}/openapi.json"
    app = CountingApp(create_app(anonymous, launcher=lambda _: None, send_owed=lambda _: 0), document_path)
    found: list[ServerErrorReport] = []
    started = time.monotonic()
    try:
        schema = schemathesis.openapi.from_asgi(document_path, app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert operations, "the document describes no operation"
        examples = math.ceil(TARGET_REQUESTS / (len(operations) * len(MODES)))
        with structlog.testing.capture_logs() as logs:
            for operation in operations:
                for mode in MODES:
                    fuzz(operation, mode, examples, found)
    finally:
        shutdown_lifespans()
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {app.requests} requests on {len(operations)} operations "
        f"({examples} examples per operation and mode) in {elapsed:.1f}s, {len(found)} server errors"
    )
    causes = [cause(entry) for entry in logs if entry.get("event") == "unhandled error"]
    reports = dict.fromkeys(f"{report.status} {report.operation}: {report.request}" for report in found)
    assert not found, "server errors:\n" + "\n".join(reports) + "\ncauses:\n" + "\n".join(dict.fromkeys(causes))
    assert app.requests >= MIN_REQUESTS
