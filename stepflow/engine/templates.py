"""Templates: bindings built from the workflow, the step and the job's input, and rendering.

A template is text with ``{name}`` placeholders and EEx-style ``<%= expression %>`` tags
(engine.md §6). Bindings keep their JSON types (decision Q12); how ``{name}`` prints a value
depends on where the value came from, as in the original (see :class:`Bindings`). Tags are
evaluated by :mod:`stepflow.engine.expressions`, never as code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stepflow.engine.expressions import (
    MAX_STRING_LENGTH,
    Budget,
    ExpressionError,
    basename,
    evaluate,
    inspect,
    to_string,
)
from stepflow.engine.expressions import extname as extension

__all__ = [
    "Bindings",
    "ConditionError",
    "ExpressionError",
    "WorkflowContext",
    "bindings",
    "effective_value",
    "evaluate_condition",
    "extension",
    "render",
    "work_directory",
]

MAX_TEMPLATE_LENGTH = 100_000

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_WORKFLOW_BINDING_TYPES = frozenset({"string", "array_of_strings", "integer", "array_of_integers"})
_STEP_BINDING_TYPES = frozenset({"string", "integer"})


class ConditionError(ExpressionError):
    """A step condition that fails or gives neither true nor false; the message names it."""


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    """What every template of one workflow pass may refer to."""

    workflow_id: int
    reference: str | None
    parameters: Sequence[Mapping[str, Any]]
    work_directory: str
    now: datetime


class Bindings(Mapping[str, Any]):
    """Template names → JSON-typed values, and how ``{name}`` prints each of them.

    ``value(name)`` (also ``bindings[name]``) is the typed value that expressions see.
    ``text(name)`` is what ``{name}`` prints: for a workflow parameter the original's
    ``inspect`` text (a string as is, ``["a", "b"]``, ``5``, ``nil``), for any other name
    ``to_string`` (nil → "", a list → its strings concatenated).
    """

    __slots__ = ("_inspected", "_values")

    def __init__(self, values: Mapping[str, Any] | None = None, inspected: Iterable[str] = ()) -> None:
        self._values: dict[str, Any] = dict(values or {})
        self._inspected = frozenset(name for name in inspected if name in self._values)

    def value(self, name: str) -> Any:
        return self._values[name]

    def text(self, name: str, budget: Budget | None = None) -> str:
        value = self._values[name]
        if name in self._inspected and not isinstance(value, str):
            return inspect(value, budget)
        return to_string(value, budget)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Bindings({self._values!r}, inspected={sorted(self._inspected)!r})"


def effective_value(parameter: Mapping[str, Any]) -> Any:
    """``value`` when the key is present (even null), else ``default``."""
    return parameter["value"] if "value" in parameter else parameter.get("default")


def work_directory(step: Mapping[str, Any], context: WorkflowContext) -> str:
    return step.get("work_dir") or context.work_directory


def bindings(
    context: WorkflowContext,
    step: Mapping[str, Any],
    source: str | Sequence[str] | None = None,
) -> Bindings:
    """Template bindings, in increasing precedence: workflow parameters, built-in names,
    the source (a path, a list of paths, or none), then the step's string/integer parameters.
    Values keep their JSON types; only the workflow parameters print with ``inspect``.
    """
    values: dict[str, Any] = {}
    inspected: set[str] = set()
    for parameter in context.parameters:
        if parameter.get("type") in _WORKFLOW_BINDING_TYPES:
            values[parameter["id"]] = effective_value(parameter)
            inspected.add(parameter["id"])
    now = context.now.astimezone(UTC) if context.now.tzinfo is not None else context.now
    later: dict[str, Any] = dict(
        workflow_id=context.workflow_id,
        workflow_reference=context.reference,
        step_name=step.get("name", ""),
        work_directory=work_directory(step, context),
        date_time=now.strftime("%Y_%m_%d__%H_%M_%S"),
        date=now.strftime("%Y_%m_%d"),
    )
    if isinstance(source, str):
        filename = basename(source)
        ext = extension(source)
        later.update(
            source_path=source,
            filename=filename,
            extension=ext,
            name=filename[: len(filename) - len(ext)] if ext else filename,
        )
    elif source is not None:
        later["source_paths"] = list(source)
    for parameter in step.get("parameters") or []:
        if parameter.get("type") in _STEP_BINDING_TYPES:
            later[parameter["id"]] = effective_value(parameter)
    values.update(later)
    return Bindings(values, inspected - later.keys())


def render(template: str, names: Mapping[str, Any]) -> str:
    """Render ``template``: ``{name}`` placeholders outside tags, ``<%= expression %>`` tags.

    A ``{name}`` with a binding prints ``names.text(name)`` (``to_string`` for a plain
    mapping); an unknown one stays literal. A tag prints ``to_string`` of its value. ``<%%``
    is a literal ``<%`` and ``<%# … %>`` a comment, as in EEx; any other ``<%`` tag, or one
    without ``%>``, is an :class:`ExpressionError`. One work budget covers the whole template.
    """
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise ExpressionError(f"template longer than {MAX_TEMPLATE_LENGTH} characters")
    typed = names if isinstance(names, Bindings) else Bindings(names)
    budget = Budget()
    output: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > MAX_STRING_LENGTH:  # checked piece by piece, before joining
            raise ExpressionError(f"rendered template longer than {MAX_STRING_LENGTH} characters")
        output.append(text)

    def plain(text: str) -> None:
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            key = match.group(1)
            emit(text[position : match.start()])
            emit(typed.text(key, budget) if key in typed else match.group(0))
            position = match.end()
        emit(text[position:])

    position = 0
    while (start := template.find("<%", position)) >= 0:
        plain(template[position:start])
        if template.startswith("<%%", start):
            emit("<%")
            position = start + 3
            continue
        end = template.find("%>", start + 2)
        if end < 0:
            raise ExpressionError(f"<% at position {start} has no closing %>")
        marker = template[start + 2 : start + 3]
        if marker == "=":
            emit(to_string(evaluate(template[start + 3 : end], typed, budget), budget))
        elif marker != "#":
            raise ExpressionError(f"only <%= … %> tags are supported (position {start})")
        position = end + 2
    plain(template[position:])
    return "".join(output)


def _quoted(condition: str) -> str:
    return condition if len(condition) <= 100 else condition[:97] + "..."


def evaluate_condition(condition: str, names: Mapping[str, Any]) -> bool:
    """A step condition (engine.md §7): the expression printed as by ``<%= condition %>``.

    "true" → True, "false" → False; anything else, or a failure, raises
    :class:`ConditionError` naming the condition and the reason. Whether a step has a
    condition at all (absent, nil, 0, "") is the caller's business.
    """
    try:
        value = evaluate(condition, names)
        text = to_string(value)
    except ExpressionError as error:
        raise ConditionError(f'condition "{_quoted(condition)}" failed: {error}') from error
    if text in ("true", "false"):
        return text == "true"
    shown = inspect(value) if len(text) <= 60 else f"a {len(text)}-character text"
    raise ConditionError(f'condition "{_quoted(condition)}" failed: the result {shown} is not true or false')
