"""Metrics without services: the multiprocess directory, basic auth, counting committed changes
and the actors' middleware (values read from this process's registry)."""

from __future__ import annotations

import base64
import os
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from stepflow.api.metrics.controller import authorized, basic_credentials
from stepflow.changes import JOB_STATE, WORKFLOW_CREATED, WORKFLOW_STATUS, Change, JobRef, WorkflowRef
from stepflow.metrics.counting import count
from stepflow.metrics.directory import default_multiprocess_dir, export_multiprocess_dir
from stepflow.metrics.instruments import PROCESS_REGISTRY
from stepflow.metrics.messages import MessageMetrics, actor_middleware, bridge_observer, ignore_bridge, observe_bridge
from stepflow.settings import load_settings


def value(name: str, **labels: str) -> float:
    return PROCESS_REGISTRY.get_sample_value(name, labels) or 0.0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_command_exports_a_default_directory_per_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what gettempdir() answers
    environ: dict[str, str] = {}
    one = load_settings({"DATABASE_URL": "postgresql://postgres@db/one"})
    exported = export_multiprocess_dir(one, environ)
    directory = exported.prometheus_multiproc_dir
    assert directory is not None and directory.is_dir() and directory.parent == tmp_path
    assert str(os.getuid()) in directory.name
    assert environ == {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    assert default_multiprocess_dir(one) == directory, "every process of a host finds the same directory"
    other = load_settings({"DATABASE_URL": "postgresql://postgres@db/other"})
    assert default_multiprocess_dir(other) != directory, "another StepFlow on the host counts apart"


def test_the_command_keeps_a_configured_directory_and_exports_nothing_when_disabled(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    chosen = tmp_path / "metrics" / "here"
    settings = load_settings({"PROMETHEUS_MULTIPROC_DIR": str(chosen)})
    assert export_multiprocess_dir(settings, environ).prometheus_multiproc_dir == chosen
    assert chosen.is_dir() and environ == {"PROMETHEUS_MULTIPROC_DIR": str(chosen)}
    disabled = load_settings({"STEPFLOW_METRICS_ENABLED": "false"})
    environ.clear()
    assert export_multiprocess_dir(disabled, environ) is disabled and environ == {}


def test_basic_credentials_are_read_and_compared() -> None:
    assert basic_credentials(basic("scraper", "pa:ss")) == ("scraper", "pa:ss")
    assert basic_credentials("basic " + base64.b64encode(b"a:b").decode()) == ("a", "b")
    for header in (None, "", "Bearer token", "Basic not-base64!", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert basic_credentials(header) is None, header
    expected = ("scraper", "pa:ss")
    assert authorized(basic("scraper", "pa:ss"), expected)
    assert not authorized(basic("scraper", "wrong"), expected)
    assert not authorized(basic("other", "pa:ss"), expected)
    assert not authorized(None, expected)
    assert authorized(None, None), "no basic auth configured: anyone may scrape"


def workflow(identifier: str, status: str) -> WorkflowRef:
    return WorkflowRef(1, identifier, "1.0.0", "r", status, ())


def test_committed_changes_are_counted() -> None:
    name = f"count_{uuid.uuid4().hex[:8]}"
    queue = f"job_{name}"
    count(
        [
            Change(WORKFLOW_CREATED, workflow(name, "pending")),
            Change(JOB_STATE, workflow(name, "pending"), JobRef(1, queue, 0, "queued")),
            Change(WORKFLOW_STATUS, workflow(name, "processing"), previous="pending"),
            Change(JOB_STATE, workflow(name, "processing"), JobRef(1, queue, 0, "error", "boom"), "queued"),
            Change(WORKFLOW_STATUS, workflow(name, "error"), previous="processing"),
            Change(JOB_STATE, workflow(name, "error"), JobRef(1, queue, 0, "retrying"), "error"),
            Change(WORKFLOW_STATUS, workflow(name, "processing"), previous="error"),
            Change(JOB_STATE, workflow(name, "processing"), JobRef(1, queue, 0, "completed"), "retrying"),
            Change(WORKFLOW_STATUS, workflow(name, "completed"), previous="processing"),
        ]
    )
    assert value("stepflow_workflows_created_total", identifier=name) == 1
    assert value("stepflow_workflows_error_total", identifier=name) == 1
    assert value("stepflow_workflows_completed_total", identifier=name) == 1
    assert value("stepflow_workflows_aborted_total", identifier=name) == 0
    for state in ("queued", "error", "retrying", "completed"):
        assert value("stepflow_jobs_total", queue=queue, status=state) == 1, state
    count([Change(WORKFLOW_STATUS, workflow(name, "aborted"), previous="paused")])
    assert value("stepflow_workflows_aborted_total", identifier=name) == 1


def test_the_actors_middleware_counts_and_times_each_message() -> None:
    middleware = MessageMetrics()
    actor = f"actor_{uuid.uuid4().hex[:8]}"
    labels = {"process": "actors", "queue": "stepflow.jobs", "actor": actor}
    for message_id, outcome in (("m1", "success"), ("m2", "error")):
        message = SimpleNamespace(message_id=message_id, queue_name="stepflow.jobs", actor_name=actor)
        middleware.before_process_message(None, message)  # type: ignore[arg-type]
        exception = RuntimeError("boom") if outcome == "error" else None
        middleware.after_process_message(None, message, exception=exception)  # type: ignore[arg-type]
    skipped = SimpleNamespace(message_id="m3", queue_name="stepflow.jobs", actor_name=actor)
    middleware.after_skip_message(None, skipped)  # type: ignore[arg-type]
    for outcome in ("success", "error", "skipped"):
        assert value("stepflow_messages_total", **labels, outcome=outcome) == 1, outcome
    assert value("stepflow_message_seconds_count", **labels, outcome="success") == 1
    assert value("stepflow_message_seconds_count", **labels, outcome="skipped") == 0, "never started: not timed"


def test_disabled_metrics_add_no_middleware_and_observe_nothing() -> None:
    disabled = load_settings({"STEPFLOW_METRICS_ENABLED": "false"})
    assert actor_middleware(disabled) == []
    assert bridge_observer(disabled) is ignore_bridge
    enabled = load_settings({})
    assert [type(middleware) for middleware in actor_middleware(enabled)] == [MessageMetrics]
    assert bridge_observer(enabled) is observe_bridge
