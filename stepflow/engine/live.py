"""Live workflows (``is_live: true``, engine.md §10): planning and stepping, pure.

A live job is a streaming process: a worker manager creates a dedicated worker for it, then
StepFlow drives that worker with direct messages (``init_process``, ``start_process``…) as
the worker reports each stage. Every step starts at once; a child reads its parent's stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepflow.engine.graph import parent_ids
from stepflow.engine.launch import JobPlan, Parameter, one_for_one, source_paths
from stepflow.engine.states import JobState
from stepflow.engine.status import StepCounts
from stepflow.engine.templates import WorkflowContext, bindings, evaluate_condition

QUEUE_NAME_PARAMETER = "direct_messaging_queue_name"
DIRECT_MESSAGING_PREFIX = "direct_messaging_"


def live_steps_to_start(
    steps: Sequence[Mapping[str, Any]], counts: Mapping[int, StepCounts]
) -> list[Mapping[str, Any]]:
    """Steps without a job whose parents all have one, whatever their status (engine.md §10:
    ``required_to_start`` is ignored), in definition order; a child needs its parent's job to
    read the stream it publishes."""
    empty = StepCounts()
    known = {step["id"] for step in steps}
    return [
        step
        for step in steps
        if counts.get(step["id"], empty).total == 0
        and all(counts.get(parent, empty).total > 0 for parent in parent_ids(step) if parent in known)
    ]


def plan_live_step(
    step: Mapping[str, Any],
    context: WorkflowContext,
    inputs: Mapping[int, Sequence[Sequence[Mapping[str, Any]]]],
    queue_name: str,
) -> JobPlan:
    """The one live job of ``step`` (engine.md §10, S24).

    Its parameters are the step's own plus ``direct_messaging_queue_name`` (``queue_name``, the
    identity of the worker the manager creates), built one_for_one for the first sorted source
    only. A child's source is its parents' ``destination_path``. A false condition gives a
    skipped job; a bad condition, template or filter, or no source at all, an error job.
    """
    try:
        sources = source_paths(step, context, inputs)
        condition = step.get("condition")
        if condition not in (None, 0, "") and not evaluate_condition(str(condition), bindings(context, step, sources)):
            return JobPlan(0, JobState.SKIPPED)
        if not sources:
            raise ValueError("a live step needs a source")
        queue = {"id": QUEUE_NAME_PARAMETER, "type": "string", "value": queue_name}
        live = {**step, "multiple_jobs": None, "parameters": [*(step.get("parameters") or []), queue]}
        (plan,) = one_for_one(live, context, [min(sources)], [])
        return plan
    except ValueError as error:
        return JobPlan(0, JobState.ERROR, message=f"step {step['id']} ({step['name']}): {error}")


def queue_name_of(parameters: Sequence[Mapping[str, Any]]) -> str | None:
    """The ``direct_messaging_queue_name`` of a live job (None for any other job)."""
    for parameter in parameters:
        if parameter.get("id") == QUEUE_NAME_PARAMETER and isinstance(parameter.get("value"), str):
            return parameter["value"]
    return None


def announced_queue_name(direct_messaging_queue_name: str) -> str:
    """The job parameter value a worker's ``direct_messaging_queue_name`` stands for: the SDK
    prefixes the identifier it was given with ``direct_messaging_``."""
    return direct_messaging_queue_name.removeprefix(DIRECT_MESSAGING_PREFIX)


@dataclass(frozen=True, slots=True)
class LiveWorkerFacts:
    """What the stepping needs to know about a live worker."""

    instance_id: str
    creation_date: datetime | None
    ips: Sequence[str]
    ports: Sequence[int]


def process_parameters(
    step: Mapping[str, Any],
    parameters: Sequence[Parameter],
    worker: LiveWorkerFacts | None,
    parent: LiveWorkerFacts | None,
) -> list[Parameter] | None:
    """The parameters of an ``init_process`` / ``start_process`` for a live job, or None while
    that message cannot be generated (engine.md §10).

    The job's worker must have been created and have told its ``instance_id`` (the message is
    addressed to it). A child also needs its first parent's worker created with an address:
    its ``source_path`` / ``source_paths`` become ``srt://<first ip>:<last port>`` of it.
    """
    if worker is None or worker.creation_date is None or not worker.instance_id:
        return None
    if not parent_ids(step):
        return [dict(parameter) for parameter in parameters]
    if parent is None or parent.creation_date is None or not parent.ips or not parent.ports:
        return None
    stream = f"srt://{parent.ips[0]}:{parent.ports[-1]}"
    rewritten = []
    for parameter in parameters:
        if parameter.get("id") == "source_path":
            parameter = {**parameter, "value": stream}
        elif parameter.get("id") == "source_paths":
            parameter = {**parameter, "value": [stream]}
        rewritten.append(dict(parameter))
    return rewritten
