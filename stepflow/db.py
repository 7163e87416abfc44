"""Database engines and session factories.

The web process uses the async engine (psycopg async); actors, bridge and clock use the sync
one. Both run the same ``select()`` statements (``stepflow.queries``), so nothing is written
twice.
"""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from stepflow.settings import Settings

# JSONB columns (definitions, steps, parameters) are read on every view: msgspec decodes
# them several times faster than the standard library.
set_json_loads(msgspec.json.decode)
set_json_dumps(msgspec.json.encode)


def sync_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
    )


def async_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
    )


def session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker:
    """Sessions on ``engine``; ``info`` is shared by all of them (``Session.info``: the
    process's caches, for example)."""
    return sessionmaker(engine, expire_on_commit=False, info=info)


def async_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
