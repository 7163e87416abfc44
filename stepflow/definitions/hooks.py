"""A definition's ``notification_hooks``, normalised to one shape whatever the standard version (ours §3.6).

The standard wrote hooks three ways:
  * 1.10: ``{"label", "endpoint", "credentials"?}``, no ``conditions``: the hook fires on
    ``workflow_completed``, ``workflow_error`` and ``workflow_aborted`` (``DEFAULT_EVENTS``);
  * 1.11 and 1.12: ``"conditions": ["job_error", "workflow_completed", …]``, a non-empty array, read
    as a set (duplicates collapse);
  * 1.13: ``"conditions": {"job_error": true, "workflow_completed": false, …}``: the keys set to
    ``true``.

The shape of ``conditions`` decides, not ``schema_version``: the schemas already tie each shape to
its versions, and a site schema (``STEPFLOW_WORKFLOW_SCHEMA``) may be looser. ``workflow_aborted``
is our extension, allowed in every shape. An event outside ``EVENTS`` is an error, as is an
``endpoint`` that is not an absolute http(s) URL or a ``credentials`` name that is empty or holds
white space.

Normalised, a hook is plain JSON, stored as is (``notification_hooks`` columns)::

    {"label": str, "endpoint": str, "credentials": str | None, "events": [sorted event names]}

Pure functions: no settings, no database. Whether a ``credentials`` name exists among the
configured notification credentials is for the caller to check (``unknown_credentials``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

EVENTS: tuple[str, ...] = ("job_completed", "job_error", "workflow_aborted", "workflow_completed", "workflow_error")
"""Every event a hook can name; ``workflow_aborted`` is a StepFlow extension."""

DEFAULT_EVENTS: tuple[str, ...] = ("workflow_aborted", "workflow_completed", "workflow_error")
"""Events of a hook without ``conditions`` (the 1.10 shape), sorted."""

FIELD: str = "notification_hooks"


class HookError(ValueError):
    """The hooks of a definition cannot be normalised; ``errors`` lists why, each naming its JSON path."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def hook_errors(document: Mapping[str, Any]) -> list[str]:
    """Why ``document``'s ``notification_hooks`` cannot be normalised; empty when they can (or are absent)."""
    hooks = document.get(FIELD)
    if hooks is None:
        return []
    if not isinstance(hooks, list):
        return [f"{FIELD}: expected an array of hooks"]
    errors: list[str] = []
    for index, hook in enumerate(hooks):
        errors.extend(_hook_errors(f"{FIELD}[{index}]", hook))
    return errors


def normalise_hooks(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The hooks of ``document`` in the normalised shape (module doc), in definition order.

    ``[]`` when the document has none. Raises ``HookError`` when ``hook_errors`` finds anything.
    """
    errors = hook_errors(document)
    if errors:
        raise HookError(errors)
    return [
        {
            "label": hook.get("label", ""),
            "endpoint": hook["endpoint"],
            "credentials": hook.get("credentials"),
            "events": sorted(_events(hook.get("conditions"))),
        }
        for hook in document.get(FIELD) or []
    ]


def silent_hooks(document: Mapping[str, Any]) -> list[str]:
    """Warnings for valid hooks that can never fire (a 1.13 ``conditions`` with no key set to true)."""
    if hook_errors(document):
        return []
    return [
        f"{FIELD}[{index}]: hook {hook.get('label', '')!r} has no condition set to true, it never fires"
        for index, hook in enumerate(document.get(FIELD) or [])
        if not _events(hook.get("conditions"))
    ]


def unknown_credentials(hooks: Sequence[Mapping[str, Any]], known: Collection[str]) -> list[str]:
    """Errors for normalised ``hooks`` whose ``credentials`` name is not among ``known``."""
    return [
        f"{FIELD}[{index}].credentials: unknown notification credentials {hook['credentials']!r}"
        for index, hook in enumerate(hooks)
        if hook.get("credentials") is not None and hook["credentials"] not in known
    ]


def _events(conditions: Any) -> set[str]:
    """Events of a valid ``conditions`` value (absent, array or object)."""
    if conditions is None:
        return set(DEFAULT_EVENTS)
    if isinstance(conditions, list):
        return set(conditions)
    return {event for event, enabled in conditions.items() if enabled is True}


def _hook_errors(path: str, hook: Any) -> list[str]:
    if not isinstance(hook, Mapping):
        return [f"{path}: a hook is an object"]
    errors: list[str] = []
    label = hook.get("label")
    if label is not None and not isinstance(label, str):
        errors.append(f"{path}.label: expected a string")
    endpoint = hook.get("endpoint")
    if endpoint is None:
        errors.append(f"{path}: 'endpoint' is required")
    elif not _is_http_url(endpoint):
        errors.append(f"{path}.endpoint: {_short(endpoint)} is not an absolute http(s) URL")
    credentials = hook.get("credentials")
    if credentials is not None and (
        not isinstance(credentials, str) or not credentials or any(char.isspace() for char in credentials)
    ):
        errors.append(f"{path}.credentials: {_short(credentials)} is not a credentials name")
    errors.extend(_condition_errors(f"{path}.conditions", hook.get("conditions", None)))
    return errors


def _condition_errors(path: str, conditions: Any) -> list[str]:
    if conditions is None:
        return []
    if isinstance(conditions, list):
        if not conditions:
            return [f"{path}: no event listed (leave `conditions` out for the default events)"]
        names = conditions
        errors = [f"{path}: {_short(name)} is not an event name" for name in names if not isinstance(name, str)]
        names = [name for name in names if isinstance(name, str)]
    elif isinstance(conditions, Mapping):
        names = list(conditions)
        errors = [
            f"{path}.{name}: {_short(value)} is not a boolean"
            for name, value in conditions.items()
            if not isinstance(value, bool)
        ]
    else:
        return [f"{path}: expected an array (1.11, 1.12) or an object (1.13) of events"]
    known = ", ".join(EVENTS)
    errors.extend(f"{path}: unknown event {name!r} (known: {known})" for name in names if name not in EVENTS)
    return errors


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
