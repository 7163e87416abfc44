"""``{name}`` templates: bindings built from the workflow, the step and the job's input.

Only the plain ``{name}`` substitution lives here; a name without a binding stays literal
(as in the original). Values keep their JSON types in the bindings and are turned into
text only when rendered.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_WORKFLOW_BINDING_TYPES = frozenset({"string", "array_of_strings", "integer", "array_of_integers"})
_STEP_BINDING_TYPES = frozenset({"string", "integer"})


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    """What every template of one workflow pass may refer to."""

    workflow_id: int
    reference: str | None
    parameters: Sequence[Mapping[str, Any]]
    work_directory: str
    now: datetime


def effective_value(parameter: Mapping[str, Any]) -> Any:
    """``value`` when the key is present (even null), else ``default``."""
    return parameter["value"] if "value" in parameter else parameter.get("default")


def inspect(value: Any) -> str:
    """Text of a workflow parameter value, as the original's ``inspect`` wrote it."""
    if isinstance(value, str):
        return value
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def to_text(value: Any) -> str:
    """Text printed for a bound value: nil → "", a list → its elements concatenated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "".join(to_text(item) for item in value)
    return value if isinstance(value, str) else str(value)


def extension(path: str) -> str:
    """The last ``.xxx`` of the basename; ``""`` for none and for dot-files like ``.bashrc``."""
    base = posixpath.basename(path)
    dot = base.rfind(".")
    return base[dot:] if dot > 0 else ""


def work_directory(step: Mapping[str, Any], context: WorkflowContext) -> str:
    return step.get("work_dir") or context.work_directory


def bindings(
    context: WorkflowContext,
    step: Mapping[str, Any],
    source: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Template bindings, in increasing precedence: workflow parameters, built-in names,
    the source (a path, a list of paths, or none), then the step's string/integer parameters.
    """
    names: dict[str, Any] = {}
    for parameter in context.parameters:
        if parameter.get("type") in _WORKFLOW_BINDING_TYPES:
            names[parameter["id"]] = inspect(effective_value(parameter))
    now = context.now.astimezone(UTC) if context.now.tzinfo is not None else context.now
    names.update(
        workflow_id=context.workflow_id,
        workflow_reference=context.reference,
        step_name=step.get("name", ""),
        work_directory=work_directory(step, context),
        date_time=now.strftime("%Y_%m_%d__%H_%M_%S"),
        date=now.strftime("%Y_%m_%d"),
    )
    if isinstance(source, str):
        filename = posixpath.basename(source)
        ext = extension(source)
        names.update(
            source_path=source,
            filename=filename,
            extension=ext,
            name=filename[: len(filename) - len(ext)] if ext else filename,
        )
    elif source is not None:
        names["source_paths"] = list(source)
    for parameter in step.get("parameters") or []:
        if parameter.get("type") in _STEP_BINDING_TYPES:
            names[parameter["id"]] = effective_value(parameter)
    return names


def render(template: str, names: Mapping[str, Any]) -> str:
    """Replace every ``{name}`` that has a binding; unknown names stay literal."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        return to_text(names[key]) if key in names else match.group(0)

    return _PLACEHOLDER.sub(substitute, template)
