"""Live planning and stepping, pure (engine.md §10, scenario S24)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stepflow.engine.launch import JobPlan
from stepflow.engine.live import (
    LiveWorkerFacts,
    announced_queue_name,
    live_steps_to_start,
    plan_live_step,
    process_parameters,
    queue_name_of,
)
from stepflow.engine.status import StepCounts
from stepflow.engine.templates import WorkflowContext
from stepflow.engine.transitions import LIVE_REPORTS, Action, decide
from tests.unit.orders import DP, REQ, SP, SRC

NOW = datetime(2021, 6, 1, 10, 20, 30, tzinfo=UTC)
CONTEXT = WorkflowContext(workflow_id=7, reference="some id", parameters=[], work_directory="/test_work_dir", now=NOW)

ROOT = {
    "id": 0,
    "name": "job_live",
    "skip_destination_path": True,
    "parameters": [SP(["srt://:9999"]), DP("srt://:8888")],
}
CHILD = {
    "id": 1,
    "name": "job_live",
    "parent_ids": [0],
    "skip_destination_path": True,
    "parameters": [DP("srt://:7777")],
}


def QUEUE(name: str) -> dict[str, Any]:
    return {"id": "direct_messaging_queue_name", "type": "string", "value": name}


def test_s24_root_job_parameters() -> None:
    plan = plan_live_step(ROOT, CONTEXT, {}, "U0")
    assert plan == JobPlan(
        0, "queued", [SP(["srt://:9999"]), DP("srt://:8888"), QUEUE("U0"), SRC("srt://:9999"), REQ([])]
    )


def test_s24_child_reads_its_parents_destination_path() -> None:
    parent_job = [SP(["srt://:9999"]), DP("srt://:8888"), QUEUE("U0"), SRC("srt://:9999"), REQ([])]
    plan = plan_live_step(CHILD, CONTEXT, {0: [parent_job]}, "U1")
    assert plan == JobPlan(0, "queued", [DP("srt://:7777"), QUEUE("U1"), SRC("srt://:8888"), REQ([])])


def test_only_the_first_sorted_source_is_used_and_required_to_start_is_ignored() -> None:
    step = {**ROOT, "parameters": [SP(["srt://b:2", "srt://a:1"])], "required_to_start": [5], "mode": "one_for_many"}
    plan = plan_live_step(step, CONTEXT, {}, "U")
    assert plan.parameters == [SP(["srt://b:2", "srt://a:1"]), QUEUE("U"), SRC("srt://a:1"), REQ([])]


def test_the_condition_is_still_evaluated() -> None:
    assert plan_live_step({**ROOT, "condition": "1 > 2"}, CONTEXT, {}, "U") == JobPlan(0, "skipped")
    assert plan_live_step({**ROOT, "condition": "1 < 2"}, CONTEXT, {}, "U").state == "queued"


def test_no_source_is_a_visible_error() -> None:
    plan = plan_live_step({**ROOT, "parameters": []}, CONTEXT, {}, "U")
    assert plan.state == "error"
    assert plan.message == "step 0 (job_live): a live step needs a source"


def test_every_step_starts_in_one_pass_parents_first() -> None:
    steps = [CHILD, ROOT, {**CHILD, "id": 2, "parent_ids": [1], "required_to_start": [9]}]
    assert live_steps_to_start(steps, {}) == [ROOT]
    running = StepCounts(processing=1)
    assert live_steps_to_start(steps, {0: running}) == [CHILD]
    assert [s["id"] for s in live_steps_to_start(steps, {0: running, 1: running})] == [2]
    assert live_steps_to_start(steps, {0: running, 1: running, 2: running}) == []


def test_queue_names() -> None:
    assert queue_name_of([DP("x"), QUEUE("U0")]) == "U0"
    assert queue_name_of([DP("x")]) is None
    assert announced_queue_name("direct_messaging_U0") == "U0"


def moves_forward(current: str, target: str) -> bool:
    """Whether a worker's report of ``target`` moves a live job in ``current``."""
    return decide(LIVE_REPORTS[target], current, aborted=False).action is Action.MOVE


def test_reports_only_move_a_live_job_forward() -> None:
    assert moves_forward("queued", "ready_to_init")
    assert moves_forward("initializing", "ready_to_start")
    assert moves_forward("starting", "processing")
    assert not moves_forward("initializing", "ready_to_init")  # redelivered worker_created
    assert not moves_forward("processing", "processing")
    assert not moves_forward("stopped", "processing")
    assert not moves_forward("completed", "ready_to_start")


CREATED = LiveWorkerFacts("abcd-full-instance-id", NOW, ["1.2.3.4"], [8888, 9000])
ANONYMOUS = LiveWorkerFacts("", NOW, ["1.2.3.4"], [8888])
UNCREATED = LiveWorkerFacts("abcd", None, [], [])


def test_a_root_job_needs_its_worker_created_and_named() -> None:
    parameters = [SRC("srt://:9999"), QUEUE("U0")]
    assert process_parameters(ROOT, parameters, CREATED, None) == parameters
    assert process_parameters(ROOT, parameters, ANONYMOUS, None) is None  # S24: stays ready_to_start
    assert process_parameters(ROOT, parameters, UNCREATED, None) is None
    assert process_parameters(ROOT, parameters, None, None) is None


def test_a_child_reads_the_stream_of_its_first_parents_worker() -> None:
    parameters = [DP("srt://:7777"), QUEUE("U1"), SRC("srt://:8888"), SP(["srt://:8888"])]
    own = LiveWorkerFacts("child-id", NOW, [], [])
    rewritten = process_parameters(CHILD, parameters, own, CREATED)
    assert rewritten == [DP("srt://:7777"), QUEUE("U1"), SRC("srt://1.2.3.4:9000"), SP(["srt://1.2.3.4:9000"])]
    assert parameters[2] == SRC("srt://:8888"), "the input is not modified"
    assert process_parameters(CHILD, parameters, own, UNCREATED) is None
    assert process_parameters(CHILD, parameters, own, LiveWorkerFacts("p", NOW, [], [1])) is None
    assert process_parameters(CHILD, parameters, own, None) is None
    assert process_parameters(CHILD, parameters, ANONYMOUS, CREATED) is None, "nobody to address"
