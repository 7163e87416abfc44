"""Checks on a definition that JSON Schema cannot express (ours A6 and A10).

Run them on documents that already passed the schema: they assume ``steps`` is a list of step
objects with integer ids and parameter lists, and only guard against what the schema allows.

Errors (the definition is rejected):
  * two steps with the same ``id``;
  * a cycle through ``parent_ids`` / ``required_to_start`` (a self-reference included): the step
    could never start, and the original's "force the first step" escape is dropped (A10);
  * a step parameter with neither ``value`` nor ``default``: the job order could not carry it (A6);
  * ``notification_hooks`` that cannot be normalised (``hooks.hook_errors``: an unknown event, an
    endpoint that is no http(s) URL…); the schemas catch most of it, a site schema may not.

Warnings (the definition is kept; the caller logs them):
  * ``parent_ids`` / ``required_to_start`` / ``required`` naming no step (the engine treats such an
    id as satisfied, as the original did);
  * ``multiple_jobs`` naming no workflow parameter of type ``array_of_media_segments``;
  * a step mode StepFlow loads but does not run (``workflow_one_for_one`` / ``workflow_one_for_many``,
    1.12+): its jobs will end in error (ours A13);
  * a notification hook whose ``conditions`` enable no event: it never fires.

Every message starts with the JSON path it is about, e.g. ``steps[2].parameters[0]: …``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepflow.definitions.hooks import hook_errors, silent_hooks

# Fields holding ids of other steps. Only the first two gate a step, so only they form cycles;
# `required` (our extension) just adds the listed steps' outputs to `requirements.paths`.
GATING_FIELDS: tuple[str, ...] = ("parent_ids", "required_to_start")
REFERENCE_FIELDS: tuple[str, ...] = (*GATING_FIELDS, "required")

UNSUPPORTED_MODES: tuple[str, ...] = ("workflow_one_for_one", "workflow_one_for_many")
"""Modes of the standard (1.12+) that load but that StepFlow does not run (ours A13)."""


@dataclass(frozen=True, slots=True)
class Findings:
    """What a check found: ``errors`` reject the definition, ``warnings`` only inform."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not count)."""
        return not self.errors


def check_semantics(document: Mapping[str, Any]) -> Findings:
    """Return the semantic errors and warnings of a schema-valid ``document`` (see the module doc)."""
    steps = [step for step in document.get("steps") or [] if isinstance(step, Mapping)]
    errors: list[str] = []
    warnings: list[str] = []

    duplicates = _duplicate_ids(steps)
    errors.extend(duplicates)
    errors.extend(_missing_values(steps))
    warnings.extend(_unknown_references(steps))
    warnings.extend(_bad_multiple_jobs(steps, document.get("parameters") or []))
    warnings.extend(_unsupported_modes(steps))
    errors.extend(hook_errors(document))
    warnings.extend(silent_hooks(document))
    # With duplicate ids the graph is ambiguous (which step does "2" mean?): a cycle reported
    # there could be an artefact of the merge, so cycles are checked once the ids are unique.
    if not duplicates:
        errors.extend(_cycles(steps))
    return Findings(errors=errors, warnings=warnings)


def _describe(step: Mapping[str, Any]) -> str:
    return f"{step.get('id')} ({step.get('name')})"


def _duplicate_ids(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    first_index: dict[Any, int] = {}
    errors: list[str] = []
    for index, step in enumerate(steps):
        step_id = step.get("id")
        if step_id in first_index:
            other = first_index[step_id]
            errors.append(
                f"steps[{index}]: duplicate step id {_describe(step)}, "
                f"already used by steps[{other}] ({steps[other].get('name')})"
            )
        else:
            first_index[step_id] = index
    return errors


def _missing_values(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    errors: list[str] = []
    for index, step in enumerate(steps):
        for position, parameter in enumerate(step.get("parameters") or []):
            # Key presence is what counts: an explicit `"value": null` is a value (engine §2.3).
            if isinstance(parameter, Mapping) and "value" not in parameter and "default" not in parameter:
                errors.append(
                    f"steps[{index}].parameters[{position}]: step {_describe(step)} "
                    f"parameter {parameter.get('id')} has no value or default"
                )
    return errors


def _unknown_references(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    known = {step.get("id") for step in steps}
    warnings: list[str] = []
    for index, step in enumerate(steps):
        for name in REFERENCE_FIELDS:
            for reference in _unique(step.get(name) or []):
                if reference not in known:
                    warnings.append(
                        f"steps[{index}].{name}: step {_describe(step)} refers to unknown step id {reference}"
                    )
    return warnings


def _bad_multiple_jobs(steps: Sequence[Mapping[str, Any]], parameters: Iterable[Any]) -> list[str]:
    segment_ids = {
        parameter.get("id")
        for parameter in parameters
        if isinstance(parameter, Mapping) and parameter.get("type") == "array_of_media_segments"
    }
    warnings: list[str] = []
    for index, step in enumerate(steps):
        target = step.get("multiple_jobs")
        if target is not None and target not in segment_ids:
            warnings.append(
                f"steps[{index}].multiple_jobs: step {_describe(step)} refers to {target!r}, "
                "which is not a workflow parameter of type array_of_media_segments"
            )
    return warnings


def _unsupported_modes(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"steps[{index}].mode: step {_describe(step)} has mode {step.get('mode')!r}, "
        "which StepFlow does not run: its jobs will end in error"
        for index, step in enumerate(steps)
        if step.get("mode") in UNSUPPORTED_MODES
    ]


def _cycles(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """One error per strongly connected component that contains a cycle, showing one cycle of it.

    Requires unique step ids. ``a -> b`` in a message means "a waits for b".
    """
    by_id = {step.get("id"): step for step in steps}
    graph: dict[Any, list[Any]] = {
        step_id: [
            dependency
            for dependency in _unique(reference for name in GATING_FIELDS for reference in step.get(name) or [])
            if dependency in by_id  # unknown ids are warnings, not edges
        ]
        for step_id, step in by_id.items()
    }
    position = {step_id: index for index, step_id in enumerate(by_id)}
    found: list[tuple[int, str]] = []
    for component in _strongly_connected_components(graph):
        start = min(component, key=position.__getitem__)
        if len(component) == 1 and start not in graph[start]:
            continue
        path = _cycle_through(start, graph, component)
        chain = " -> ".join(_describe(by_id[step_id]) for step_id in path)
        found.append((position[start], f"steps[{position[start]}]: cycle in parent_ids/required_to_start: {chain}"))
    return [message for _, message in sorted(found)]


def _strongly_connected_components(graph: Mapping[Any, Sequence[Any]]) -> list[set[Any]]:
    """Tarjan's algorithm, iterative so that a long chain of steps cannot hit the recursion limit."""
    index_of: dict[Any, int] = {}
    low: dict[Any, int] = {}
    on_stack: set[Any] = set()
    stack: list[Any] = []
    components: list[set[Any]] = []
    counter = 0
    for root in graph:
        if root in index_of:
            continue
        work: list[tuple[Any, int]] = [(root, 0)]
        while work:
            node, next_child = work.pop()
            if next_child == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if next_child < len(children):
                work.append((node, next_child + 1))
                child = children[next_child]
                if child not in index_of:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index_of[child])
                continue
            if low[node] == index_of[node]:
                component: set[Any] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_through(start: Any, graph: Mapping[Any, Sequence[Any]], component: set[Any]) -> list[Any]:
    """Shortest path ``start -> … -> start`` inside ``component`` (one exists: it is cyclic)."""
    previous: dict[Any, Any] = {}
    queue: deque[Any] = deque([start])
    while queue:
        node = queue.popleft()
        for child in graph[node]:
            if child not in component:
                continue
            if child == start:
                return _unwind(start, node, previous)
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError("a strongly connected component with an edge always holds a cycle")


def _unwind(start: Any, last: Any, previous: Mapping[Any, Any]) -> list[Any]:
    """Follow ``previous`` back from ``last`` to ``start``; return ``[start, …, last, start]``."""
    path = [last]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return [*reversed(path), start]


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))
