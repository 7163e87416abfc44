"""Settings: defaults, the original's names, and one-line errors naming the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepflow.settings import SettingsError, load_settings


def test_defaults_match_the_development_services() -> None:
    settings = load_settings({})
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/stepflow"
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.port == 4000
    assert settings.api_prefix == "/api/step_flow"
    assert settings.sessions_path == "/api/sessions"
    assert settings.auth_anonymous is False


def test_original_names_build_the_urls() -> None:
    settings = load_settings(
        {
            "DATABASE_HOSTNAME": "db",
            "DATABASE_USERNAME": "user",
            "DATABASE_PASSWORD": "p@ss",
            "DATABASE_NAME": "flows",
            "RABBITMQ_HOSTNAME": "mq",
            "RABBITMQ_VIRTUAL_HOST": "media",
            "RABBITMQ_USERNAME": "u",
            "RABBITMQ_PASSWORD": "pw",
        }
    )
    assert settings.database_url == "postgresql+psycopg://user:p%40ss@db:5432/flows"
    assert settings.amqp_url == "amqp://u:pw@mq:5672/media"
    assert "p%40ss" not in repr(settings) and "pw@" not in repr(settings), "secrets stay out of repr"


def test_database_url_accepts_plain_postgresql_scheme() -> None:
    assert load_settings({"DATABASE_URL": "postgres://a@h/d"}).database_url == "postgresql+psycopg://a@h/d"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"STEPFLOW_AUTH_ANONYMOUS": "maybe"}, "STEPFLOW_AUTH_ANONYMOUS"),
        ({"STEPFLOW_AUTH_USERS": "[1]"}, "STEPFLOW_AUTH_USERS"),
        ({"STEPFLOW_AUTH_USERS": json.dumps({"a@b": {"password_hash": "x"}})}, "STEPFLOW_SESSION_SECRET"),
        ({"STEPFLOW_WORKFLOW_DEFINITIONS": "/does/not/exist"}, "STEPFLOW_WORKFLOW_DEFINITIONS"),
        ({"AMQP_URL": "http://x"}, "AMQP_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"STEPFLOW_API_PREFIX": "/"}, "STEPFLOW_API_PREFIX"),
        ({"STEPFLOW_JOB_LEASES": '{"job_a": 0}'}, "STEPFLOW_JOB_LEASES"),
        ({"STEPFLOW_JOB_LEASES": '{"job_a": "10"}'}, "STEPFLOW_JOB_LEASES"),
        ({"STEPFLOW_JOB_LEASES": "[60]"}, "STEPFLOW_JOB_LEASES"),
        ({"STEPFLOW_JOB_LEASE": "0"}, "STEPFLOW_JOB_LEASE"),
        ({"STEPFLOW_WEBSOCKET_HEARTBEAT": "0"}, "STEPFLOW_WEBSOCKET_HEARTBEAT"),
        ({"STEPFLOW_WEBSOCKET_HEARTBEAT": "soon"}, "STEPFLOW_WEBSOCKET_HEARTBEAT"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_setting(environment: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environment)
    assert str(error.value).startswith(named)
    assert "\n" not in str(error.value)


def test_leases_default_to_ten_minutes_and_may_differ_per_queue() -> None:
    assert load_settings({}).job_lease == 600
    settings = load_settings({"STEPFLOW_JOB_LEASE": "90", "STEPFLOW_JOB_LEASES": '{"job_transcode": 7200}'})
    assert (settings.job_lease, settings.job_leases) == (90, {"job_transcode": 7200.0})


def test_the_websocket_heartbeat_defaults_to_thirty_seconds() -> None:
    assert load_settings({}).websocket_heartbeat == 30
    assert load_settings({"STEPFLOW_WEBSOCKET_HEARTBEAT": "0.5"}).websocket_heartbeat == 0.5


def test_definition_folders_split_on_colon(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings = load_settings({"STEPFLOW_WORKFLOW_DEFINITIONS": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})
    assert settings.workflow_definitions == (tmp_path / "a", tmp_path / "b")


def test_users_and_tokens_parse() -> None:
    settings = load_settings(
        {
            "STEPFLOW_AUTH_USERS": json.dumps({"w@x": {"password_hash": "scrypt$1$1$1$a$b", "groups": ["worker"]}}),
            "STEPFLOW_SESSION_SECRET": "s",
            "STEPFLOW_AUTH_TOKENS": json.dumps({"ci": {"sha256": "AB", "groups": ["admin"]}}),
            "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "a, b,,c",
        }
    )
    assert settings.auth_users["w@x"].groups == ("worker",)
    assert settings.auth_tokens["ci"].sha256 == "ab"
    assert settings.auth_anonymous_groups == ("a", "b", "c")


def test_the_command_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stepflow.cli import main

    monkeypatch.setenv("PORT", "nope")
    with pytest.raises(SystemExit) as exit_:
        main(["migrate"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "stepflow: PORT: cannot parse 'nope' (invalid literal for int() with base 10: 'nope')"
    ]
