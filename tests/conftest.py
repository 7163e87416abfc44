"""Test isolation: one PostgreSQL database and one RabbitMQ vhost per test run.

The names are chosen when this file is imported and put in the environment before any
StepFlow module reads its settings, so every process of the run (in-process actors, the
end-to-end subprocesses) talks to them. Tests that need a service fail loudly without it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from stepflow.logs import configure_logging

RUN_ID = uuid.uuid4().hex[:10]
DATABASE_NAME = f"stepflow_test_{RUN_ID}"
VHOST = f"stepflow_test_{RUN_ID}"
ADMIN_DATABASE_URL = os.environ.get(
    "STEPFLOW_TEST_ADMIN_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE_URL = ADMIN_DATABASE_URL.rsplit("/", 1)[0] + f"/{DATABASE_NAME}"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"

TEST_ENVIRONMENT = {
    "DATABASE_URL": DATABASE_URL,
    "AMQP_URL": AMQP_URL,
    "STEPFLOW_AUTH_ANONYMOUS": "true",
    "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
    "STEPFLOW_WORKERS_WORK_DIRECTORY": "/test_work_dir",
    "STEPFLOW_LOG_LEVEL": "warning",
}
os.environ.update(TEST_ENVIRONMENT)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database with every migration applied, dropped at the end of the run."""
    from sqlalchemy import create_engine, text

    from stepflow.migrate import upgrade

    admin = create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{DATABASE_NAME}"'))
    try:
        upgrade(DATABASE_URL)
        yield DATABASE_URL
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_vhost(name: str) -> Iterator[str]:
    """A new RabbitMQ vhost (guest has every permission), deleted afterwards; yields its URL."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The run's vhost, shared by the unit and integration tests (and in-process actors)."""
    with fresh_vhost(VHOST) as url:
        assert url == AMQP_URL
        yield url


def pytest_configure(config: pytest.Config) -> None:
    """The test run is a StepFlow process too: it configures logging once, as each process's
    entry point does (structlog through the standard library, so ``caplog`` sees every line)."""
    configure_logging("info")
