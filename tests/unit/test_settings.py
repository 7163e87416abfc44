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
        ({"STEPFLOW_NOTIFICATION_CREDENTIALS": '{"ops": ""}'}, "STEPFLOW_NOTIFICATION_CREDENTIALS"),
        ({"STEPFLOW_NOTIFICATION_CREDENTIALS": '{"ops": 1}'}, "STEPFLOW_NOTIFICATION_CREDENTIALS"),
        ({"STEPFLOW_METRICS_ENABLED": "sometimes"}, "STEPFLOW_METRICS_ENABLED"),
        ({"STEPFLOW_METRICS_SCALE": "fortnight"}, "STEPFLOW_METRICS_SCALE"),
        ({"STEPFLOW_METRICS_DELTA": "-1.5"}, "STEPFLOW_METRICS_DELTA"),
        ({"STEPFLOW_METRICS_BASIC_AUTH": "no-colon"}, "STEPFLOW_METRICS_BASIC_AUTH"),
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


def test_notification_credentials_stay_out_of_repr() -> None:
    settings = load_settings({"STEPFLOW_NOTIFICATION_CREDENTIALS": '{"ops": "Bearer very-secret"}'})
    assert settings.notification_credentials == {"ops": "Bearer very-secret"}
    assert "very-secret" not in repr(settings)


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


def test_metrics_are_on_by_default_over_the_last_day() -> None:
    settings = load_settings({})
    assert settings.metrics_enabled is True
    assert (settings.metrics_scale, settings.metrics_delta) == ("day", -1)
    assert settings.metrics_basic_auth is None and settings.prometheus_multiproc_dir is None


def test_metrics_settings_parse() -> None:
    settings = load_settings(
        {
            "STEPFLOW_METRICS_ENABLED": "false",
            "STEPFLOW_METRICS_SCALE": "Hours",
            "STEPFLOW_METRICS_DELTA": "-6",
            "STEPFLOW_METRICS_BASIC_AUTH": "prometheus:se:cret",
            "PROMETHEUS_MULTIPROC_DIR": "/run/stepflow-metrics",
        }
    )
    assert settings.metrics_enabled is False
    assert (settings.metrics_scale, settings.metrics_delta) == ("hour", -6)
    assert settings.metrics_basic_auth == ("prometheus", "se:cret")
    assert settings.prometheus_multiproc_dir == Path("/run/stepflow-metrics")
    assert "se:cret" not in repr(settings), "the scrapers' password stays out of repr"


def test_a_bad_metrics_password_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"STEPFLOW_METRICS_BASIC_AUTH": "hunter2"})
    assert "hunter2" not in str(error.value)
