"""Job-order parameter builders of the scenario catalogue (engine.md §13.0): SP, DP, SRC, REQ."""

from __future__ import annotations

from typing import Any


def SP(paths: list[str]) -> dict[str, Any]:
    return {"id": "source_paths", "type": "array_of_strings", "value": paths}


def DP(path: str) -> dict[str, Any]:
    return {"id": "destination_path", "type": "string", "value": path}


def SRC(path: str) -> dict[str, Any]:
    return {"id": "source_path", "type": "string", "value": path}


def REQ(paths: list[str]) -> dict[str, Any]:
    return {"id": "requirements", "type": "requirements", "value": {"paths": paths}}
