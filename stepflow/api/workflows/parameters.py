"""Launch parameters: merged into the definition's parameters, type-checked (ours.md A8)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from stepflow.api.errors import invalid

log = structlog.get_logger(__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _is_segment(value: Any) -> bool:
    return isinstance(value, dict) and _is_int(value.get("start")) and _is_int(value.get("end"))


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": _is_str,
    "credential": _is_str,
    "template": _is_str,
    "integer": _is_int,
    "boolean": lambda value: isinstance(value, bool),
    "array_of_strings": _list_of(_is_str),
    "array_of_templates": _list_of(_is_str),
    "array_of_integers": _list_of(_is_int),
    "array_of_media_segments": _list_of(_is_segment),
    "requirements": lambda value: isinstance(value, dict),
    "filter": lambda value: isinstance(value, dict),
    "select_input": lambda value: isinstance(value, dict),
}
"""Per declared type, what a launch value must be; types not listed accept any JSON value."""


def merge_parameters(declared: list[dict[str, Any]], given: Any) -> list[dict[str, Any]]:
    """The workflow's parameters: each declared one, its ``value`` replaced when given.

    Unknown keys are ignored (UIs send start-parameter ids) and logged; a value of the
    wrong type is a 422 naming ``parameters.<id>``.
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise invalid("parameters", "must be an object")
    known = {parameter["id"] for parameter in declared}
    unknown = sorted(set(given) - known)
    if unknown:
        log.info("unknown launch parameters ignored", parameters=unknown)
    merged = []
    for parameter in declared:
        parameter = dict(parameter)
        if parameter["id"] in given:
            value = given[parameter["id"]]
            check = TYPE_CHECKS.get(parameter.get("type", ""))
            if check is not None and not check(value):
                raise invalid(f"parameters.{parameter['id']}")
            parameter["value"] = value
        merged.append(parameter)
    return merged
