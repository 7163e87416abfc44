"""Turning one startable step into job plans: inputs, modes and job-order parameters.

``plan_step`` is the whole decision for a step: the caller gives it the step, the workflow
context and the parameters of the jobs of the steps it reads from (parents and ``required``),
and gets one ``JobPlan`` per job to create. Plans are keyed by ``input_index`` (the position in
the deterministic input list), which the database makes unique per workflow and step.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepflow.engine.graph import parent_ids
from stepflow.engine.states import JobState
from stepflow.engine.templates import (
    WorkflowContext,
    bindings,
    effective_value,
    evaluate_condition,
    render,
    work_directory,
)

Parameter = dict[str, Any]

SUPPORTED_MODES = ("one_for_one", "one_for_many", "notification")

# Types the engine consumes itself; never sent to a worker as they are (engine.md §5.6).
_CONSUMED_TYPES = frozenset({"filter", "template", "select_input", "array_of_templates"})


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A job to create: ``queued`` jobs get run (a worker order or, for ``kind``
    ``notification``, the notifier); ``skipped``/``error`` ones are final."""

    input_index: int
    state: JobState
    parameters: list[Parameter] = field(default_factory=list)
    message: str | None = None
    kind: str = "worker"


def _parameter(identifier: str, type_: str, value: Any) -> Parameter:
    return {"id": identifier, "type": type_, "value": value}


def _values(parameters: Iterable[Mapping[str, Any]], identifier: str) -> list[Any]:
    """Effective values of every parameter with this id, lists flattened, in order."""
    values: list[Any] = []
    for parameter in parameters:
        if parameter.get("id") != identifier:
            continue
        value = effective_value(parameter)
        values.extend(value if isinstance(value, list) else [value])
    return values


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    kept = []
    for value in values:
        if value is None or value in seen:
            continue
        seen.add(value)
        kept.append(value)
    return kept


def _ends_with(filter_value: Any) -> tuple[str, ...]:
    suffixes = filter_value.get("ends_with") if isinstance(filter_value, Mapping) else None
    if isinstance(suffixes, str):
        return (suffixes,)
    if isinstance(suffixes, list) and all(isinstance(s, str) for s in suffixes):
        return tuple(suffixes)
    raise ValueError("input_filter needs an ends_with string or list of strings")


def _apply_input_filters(step: Mapping[str, Any], paths: list[str]) -> list[str]:
    for parameter in step.get("parameters") or []:
        if parameter.get("id") == "input_filter":
            suffixes = _ends_with(effective_value(parameter))
            paths = [path for path in paths if path.endswith(suffixes)]
    return paths


def job_outputs(parameters: Iterable[Mapping[str, Any]]) -> list[str]:
    """The paths a finished job produced: its destination_path(s), then destination_paths."""
    parameters = list(parameters)
    return [
        value
        for value in _values(parameters, "destination_path") + _values(parameters, "destination_paths")
        if isinstance(value, str)
    ]


def source_paths(
    step: Mapping[str, Any],
    context: WorkflowContext,
    inputs: Mapping[int, Sequence[Sequence[Mapping[str, Any]]]],
) -> list[str]:
    """The step's inputs (engine.md §5.1).

    A root step reads its own ``source_paths`` parameters (templates rendered without a
    source); a child reads the outputs of its parents' jobs (``inputs``: step id → job
    parameter lists in creation order). Then duplicates and nulls go and ``input_filter``
    applies.
    """
    parents = parent_ids(step)
    if parents:
        paths = [
            path
            for parent in parents
            for job_parameters in inputs.get(parent, ())
            for path in job_outputs(job_parameters)
        ]
    else:
        names = bindings(context, step)
        paths = [
            render(value, names) if isinstance(value, str) else value
            for value in _values(step.get("parameters") or [], "source_paths")
        ]
    return _apply_input_filters(step, _unique(p for p in paths if isinstance(p, str)))


def _precompile(step: Mapping[str, Any], context: WorkflowContext, source: str | Sequence[str]) -> list[Parameter]:
    """The step's own parameters as sent: templates rendered, consumed types dropped."""
    names = bindings(context, step, source)
    plain = bindings(context, step)
    compiled: list[Parameter] = []
    for parameter in step.get("parameters") or []:
        kind = parameter.get("type")
        if kind == "template":
            rendered = {k: v for k, v in parameter.items() if k != "default"}
            rendered.update(type="string", value=render(str(effective_value(parameter) or ""), names))
            compiled.append(rendered)
        elif kind == "array_of_templates" and parameter.get("id") != "source_paths":
            rendered = {k: v for k, v in parameter.items() if k != "default"}
            templates = effective_value(parameter) or []
            rendered.update(type="array_of_strings", value=[render(str(t), plain) for t in templates])
            compiled.append(rendered)
        elif kind not in _CONSUMED_TYPES:
            compiled.append(dict(parameter))
    if step.get("keep_source_paths") is False:
        compiled = [p for p in compiled if not (p.get("id") == "source_paths" and p.get("type") == "array_of_strings")]
    return compiled


def _normalise_source_paths(parameters: list[Parameter]) -> list[Parameter]:
    """SDK 2.x workers declare ``source_paths`` as an array: wrap a rendered string (ours.md §4.2)."""
    for parameter in parameters:
        if parameter.get("id") == "source_paths" and parameter.get("type") == "string":
            parameter["type"] = "array_of_strings"
            parameter["value"] = [parameter["value"]]
    return parameters


def _split_requirements(parameters: list[Parameter]) -> tuple[list[Parameter], list[str]]:
    """Remove step-declared ``requirements`` and return their paths, to merge into ours."""
    kept, paths = [], []
    for parameter in parameters:
        if parameter.get("id") == "requirements":
            value = effective_value(parameter)
            if isinstance(value, Mapping):
                paths.extend(p for p in value.get("paths") or [] if isinstance(p, str))
        else:
            kept.append(parameter)
    return kept, paths


def _destination_filename_template(step: Mapping[str, Any]) -> str | None:
    templates = [
        p for p in step.get("parameters") or [] if p.get("id") == "destination_filename" and p.get("type") == "template"
    ]
    return str(effective_value(templates[0]) or "") if len(templates) == 1 else None


def _has_parameter(parameters: Iterable[Mapping[str, Any]], identifier: str) -> bool:
    return any(p.get("id") == identifier for p in parameters)


def _segments(step: Mapping[str, Any], context: WorkflowContext) -> list[Mapping[str, Any]] | None:
    """The media segments of ``multiple_jobs``, or None for a plain one_for_one step."""
    identifier = step.get("multiple_jobs")
    if not identifier:
        return None
    for parameter in context.parameters:
        if parameter.get("id") == identifier and parameter.get("type") == "array_of_media_segments":
            value = effective_value(parameter)
            return list(value) if isinstance(value, list) else []
    return None


def one_for_one(
    step: Mapping[str, Any], context: WorkflowContext, sources: list[str], required: list[str]
) -> list[JobPlan]:
    """One job per source (per media segment × source with ``multiple_jobs``), each requiring
    ``required`` plus the first sorted source's output (engine.md §5.3)."""
    base = f"{work_directory(step, context)}/{context.workflow_id}/"
    first_file = min(sources)
    filename_template = _destination_filename_template(step)
    segments = _segments(step, context)
    rounds: list[Mapping[str, Any] | None] = [None] if segments is None else list(segments)
    if not rounds:
        return [JobPlan(0, JobState.SKIPPED)]
    plans = []
    for round_index, segment in enumerate(rounds):
        for source_index, source in enumerate(sources):
            compiled, declared_requirements = _split_requirements(
                _normalise_source_paths(_precompile(step, context, source))
            )
            if segment is not None:
                compiled += [
                    _parameter("sdk_start_index", "integer", segment.get("start")),
                    _parameter("sdk_stop_index", "integer", segment.get("end")),
                ]
            if not step.get("skip_destination_path") and not _has_parameter(compiled, "destination_path"):
                filename = (
                    render(filename_template, bindings(context, step, source))
                    if filename_template is not None
                    else source
                )
                compiled.append(_parameter("destination_path", "string", base + posixpath.basename(filename)))
            sibling = [] if source == first_file else [base + posixpath.basename(first_file)]
            compiled.append(_parameter("source_path", "string", source))
            compiled.append(
                _parameter(
                    "requirements", "requirements", {"paths": _unique(declared_requirements + required + sibling)}
                )
            )
            plans.append(JobPlan(round_index * len(sources) + source_index, JobState.QUEUED, compiled))
    return plans


def _one_for_many(
    step: Mapping[str, Any], context: WorkflowContext, sources: list[str], required: list[str]
) -> list[JobPlan]:
    base = f"{work_directory(step, context)}/{context.workflow_id}/"
    step_parameters = step.get("parameters") or []
    selected = []
    for parameter in step_parameters:
        if parameter.get("type") == "select_input":
            suffixes = _ends_with(effective_value(parameter))
            match = next((path for path in sources if path.endswith(suffixes)), None)
            selected.append(_parameter(parameter["id"], "string", match))
    compiled, declared_requirements = _split_requirements(
        [p for p in _precompile(step, context, sources) if p.get("id") != "source_paths"]
    )
    filename_template = _destination_filename_template(step)
    if (
        filename_template is not None
        and not step.get("skip_destination_path")
        and not _has_parameter(compiled, "destination_path")
    ):
        filename = render(filename_template, bindings(context, step, sources))
        selected.append(_parameter("destination_path", "string", base + posixpath.basename(filename)))
    plain = bindings(context, step)
    templated = [
        render(str(template), plain)
        for parameter in step_parameters
        if parameter.get("id") == "source_paths" and parameter.get("type") == "array_of_templates"
        for template in effective_value(parameter) or []
    ]
    paths = templated or sources
    requirements = _unique(declared_requirements + required + paths)
    parameters = (
        compiled
        + selected
        + [
            _parameter("source_paths", "array_of_strings", paths),
            _parameter("requirements", "requirements", {"paths": requirements}),
        ]
    )
    return [JobPlan(0, JobState.QUEUED, parameters)]


def plan_step(
    step: Mapping[str, Any],
    context: WorkflowContext,
    inputs: Mapping[int, Sequence[Sequence[Mapping[str, Any]]]],
) -> list[JobPlan]:
    """The jobs that start ``step`` (engine.md §5, with the fixes of ours.md).

    ``inputs`` maps the id of every step named in ``parent_ids`` or ``required`` to the
    parameter lists of its jobs, in creation order. A false condition gives one skipped job;
    a condition that is neither true nor false, a bad template or an unsupported mode gives one
    error job whose message names the step and the reason (Q2, ours.md A13), never a silent skip.
    """
    mode = step.get("mode") or "one_for_one"
    if mode not in SUPPORTED_MODES:
        return [JobPlan(0, JobState.ERROR, message=f"mode {mode} is not supported")]
    try:
        sources = source_paths(step, context, inputs)
        condition = step.get("condition")
        if condition not in (None, 0, "") and not evaluate_condition(str(condition), bindings(context, step, sources)):
            return [JobPlan(0, JobState.SKIPPED)]
        if mode == "notification":
            # Runs even without inputs (engine.md §5.2); the notifier renders its templates.
            return [JobPlan(0, JobState.QUEUED, kind="notification")]
        if not sources:
            return [JobPlan(0, JobState.SKIPPED)]
        required = _unique(
            path
            for required_id in step.get("required") or []
            for job_parameters in inputs.get(required_id, ())
            for path in job_outputs(job_parameters)
        )
        if mode == "one_for_many":
            return _one_for_many(step, context, sources, required)
        return one_for_one(step, context, sources, required)
    except ValueError as error:  # a bad condition (Q2), template or filter: the step fails, visibly
        return [JobPlan(0, JobState.ERROR, message=f"step {step['id']} ({step['name']}): {error}")]


def input_steps(step: Mapping[str, Any]) -> list[int]:
    """Ids of the steps whose job outputs ``plan_step`` needs for this step."""
    return _unique([*parent_ids(step), *(step.get("required") or [])])
