"""Integration fixtures: settings for the run's database and vhost, a clean database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from stepflow import listeners
from stepflow.actors import Actors, declare
from stepflow.actors.broker import build_broker
from stepflow.db import session_factory, sync_engine
from stepflow.models import Base
from stepflow.resources import Resources
from stepflow.settings import Settings, load_settings
from stepflow.wire.topology import JOB_SUBMIT
from tests.integration.broker import Capture


@pytest.fixture
def definitions_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "definitions"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(database_url: str, amqp_url: str, definitions_folder: Path) -> Settings:
    return load_settings({**os.environ, "STEPFLOW_WORKFLOW_DEFINITIONS": str(definitions_folder)})


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sync sessions on the run's database, emptied before the test."""
    engine = sync_engine(settings)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield session_factory(engine)
    engine.dispose()


def declare_actors(settings: Settings) -> Actors:
    """Every actor bound to resources of ``settings``, on a broker of its own, with the
    process's change listeners installed (as ``stepflow actors`` does)."""
    resources = Resources.open(settings)
    listeners.install(settings, resources.hand_over)
    return declare(build_broker(settings), resources)


@pytest.fixture(scope="session")
def actors() -> Actors:
    """The actors, run in-process through their ``.fn``, on the run's settings."""
    return declare_actors(load_settings())


@pytest.fixture
def orders(amqp_url: str) -> Iterator[Capture]:
    """Every job order published on ``job_submit`` (bound to "#", so none is unroutable)."""
    capture = Capture(amqp_url, JOB_SUBMIT, ["#"], declare_exchange=True)
    yield capture
    capture.close()
