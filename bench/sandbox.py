"""What every broker-and-database bench shares: a private database and vhost, and the
environment of StepFlow's processes on them.

    with sandbox() as box:
        processes = StepFlowProcesses(stepflow_environment(box, folder), folder)

The database and the vhost are named ``stepflow_bench_<8 hex>`` and removed when the block
ends, whatever happens in it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1/postgres"


@dataclass(frozen=True)
class Sandbox:
    """A private database and RabbitMQ vhost of one name."""

    name: str

    @property
    def database_url(self) -> str:
        """For SQLAlchemy (and StepFlow's ``DATABASE_URL``)."""
        return f"postgresql+psycopg://postgres@127.0.0.1/{self.name}"

    @property
    def dsn(self) -> str:
        """For psycopg directly (the bare anchors)."""
        return f"postgresql://postgres@127.0.0.1/{self.name}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    """Create the database and the vhost (guest may do everything there); drop both at the end."""
    box = Sandbox(f"stepflow_bench_{uuid.uuid4().hex[:8]}")
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{box.name}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", box.name], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", box.name, "guest", ".*", ".*", ".*"], check=True)
    try:
        yield box
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", box.name], check=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{box.name}" WITH (FORCE)'))
        admin.dispose()


def stepflow_environment(box: Sandbox, folder: Path, port: int) -> dict[str, str]:
    """The environment of StepFlow's processes on ``box``: definitions from ``folder/definitions``,
    work files under ``folder``, anonymous administrator access, the web on ``port``, warnings only."""
    return {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": box.database_url,
        "AMQP_URL": box.amqp_url,
        "PORT": str(port),
        "STEPFLOW_WORKFLOW_DEFINITIONS": str(folder / "definitions"),
        "STEPFLOW_WORKERS_WORK_DIRECTORY": str(folder),
        "STEPFLOW_AUTH_ANONYMOUS": "true",
        "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
        "STEPFLOW_SESSION_SECRET": "bench",
        "STEPFLOW_LOG_LEVEL": "warning",
        "STEPFLOW_HOST": "127.0.0.1",
    }
