"""Importing StepFlow changes nothing global: what a process needs (JSON codecs, the change
listeners' session hooks, the broker, logging) is installed by the process that starts, on
what it makes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib, json, logging, pkgutil

    import dramatiq.broker
    import psycopg
    import structlog
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import Pool

    def listeners(target):
        # Every listener registered on the class of ``target`` or on one of its subclasses,
        # per event name (a class-level registration on Session covers every session).
        found = {}
        for name in target.dispatch._event_names:
            for owner, registered in getattr(target.dispatch, name)._clslevel.items():
                if registered:
                    found[f"{owner.__module__}.{owner.__qualname__}:{name}"] = [repr(fn) for fn in registered]
        return found

    def adapters():
        # psycopg's global adapters: every dumper and loader class by what it adapts, by
        # identity (psycopg makes new classes of the same name for JSON functions set on a
        # context), with the JSON function it calls (set globally on the class by
        # set_json_loads/set_json_dumps), and the global type registry.
        def named(cls):
            codec = getattr(cls, "_loads", None) or getattr(cls, "_dumps", None)
            return f"{cls.__module__}.{cls.__qualname__} at {id(cls):x} calling {codec!r}"

        global_map = psycopg.adapters
        dumpers = {f"{fmt}:{key}": named(cls) for fmt, by in global_map._dumpers.items() for key, cls in by.items()}
        loaders = {f"{fmt}:{oid}": named(cls) for fmt, by in enumerate(global_map._loaders) for oid, cls in by.items()}
        types = sorted(repr(info) for info in global_map.types)
        return {"dumpers": dumpers, "loaders": loaders, "types": types}

    def snapshot():
        return {
            "session events": listeners(Session),
            "engine events": listeners(Engine),
            "pool events": listeners(Pool),
            "psycopg adapters": adapters(),
            "dramatiq broker": repr(dramatiq.broker.global_broker),
            "logging handlers": repr(logging.root.handlers),
            "structlog configured": structlog.is_configured(),
        }

    before = snapshot()
    import stepflow
    modules = [module.name for module in pkgutil.walk_packages(stepflow.__path__, "stepflow.")]
    for module in modules:
        importlib.import_module(module)
    print(json.dumps({"modules": len(modules), "before": before, "after": snapshot()}))
    """
)


def test_importing_every_module_of_stepflow_changes_nothing_global() -> None:
    """In a fresh interpreter: SQLAlchemy's session, engine and pool event registries, psycopg's
    global adapters, Dramatiq's global broker and the logging set-up are the same before and
    after importing every ``stepflow`` module."""
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(run.stdout)
    assert found["modules"] > 50
    for what, before in found["before"].items():
        assert found["after"][what] == before, what
