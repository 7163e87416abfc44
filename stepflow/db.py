"""Database engines and session factories.

The web process uses the async engine (psycopg async); actors, bridge and clock use the sync
one. Both run the same ``select()`` statements (``stepflow.queries``), so nothing is written
twice.

Everything a StepFlow engine or session needs is installed on that engine or factory when it
is made, never on psycopg or SQLAlchemy as a whole: importing this module changes nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from stepflow.changes import session_class
from stepflow.settings import Settings


def _engine_options(settings: Settings) -> dict[str, Any]:
    """The options of both engines. JSONB columns (definitions, steps, parameters) are read on
    every view: msgspec decodes them several times faster than the standard library, and the
    dialect installs it on the engine's own psycopg adapters only."""
    return {
        "pool_size": settings.database_pool_size,
        "pool_pre_ping": True,
        "json_serializer": msgspec.json.encode,
        "json_deserializer": msgspec.json.decode,
    }


def sync_engine(settings: Settings) -> Engine:
    return create_engine(settings.database_url, **_engine_options(settings))


def async_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(settings.database_url, **_engine_options(settings))


def session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions on ``engine`` whose commits tell the change listeners (``stepflow.changes``);
    ``info`` is shared by all of them (``Session.info``: the process's caches, for example)."""
    return sessionmaker(engine, class_=session_class(), expire_on_commit=False, info=info)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Async sessions on ``engine`` whose commits tell the change listeners (``stepflow.changes``)."""
    return async_sessionmaker(engine, sync_session_class=session_class(), expire_on_commit=False)
