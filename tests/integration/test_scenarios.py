"""engine.md §13 scenario catalogue, run through the real actors, API, database and broker.

Expected outputs follow ours.md §4.1 (no ``start_next`` return values: the tests assert the
state each message leaves), §3.4 (one bucket per job, step and workflow status), §3.5 (events),
A15/A16 (notifications) and the README's engine decisions Q1–Q12. Worker answers are the actors'
functions called directly; notification jobs run when the test calls the notifier actor, as its
Dramatiq worker would (eventual, not part of the advance that created them).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Progression, Update
from stepflow.settings import Settings
from stepflow.wire.topology import JOB_QUEUE_NOT_FOUND
from tests.http_server import RecordingServer
from tests.integration.broker import Capture, drain
from tests.integration.scenario import (
    DP,
    PREFIX,
    REQ,
    SP,
    SRC,
    Run,
    counters,
    fresh_queue_not_found,
    no_more_orders,
    string,
    take_orders,
)
from tests.support import definition, step, write_definitions

# ------------------------------------------------------------------------------ definitions


def job_test(
    step_id: int, parents: list[int] | None = None, parameters: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    """A ``job_test`` step; ``parents`` are both ``parent_ids`` and ``required_to_start``."""
    if parents is not None:
        fields = {"required_to_start": parents, "parent_ids": parents, **fields}
    return step(step_id, "job_test", parameters or [], **fields)


SLACK_BODY = "Workflow #<%= workflow_id %> - {step_name}\n\nFiles generated: <%= inspect source_paths %>"
SLACK_PARAMETERS = [
    string("service", "slack"),
    string("channel", "support"),
    {"id": "body", "type": "template", "value": SLACK_BODY},
]

PARALLEL_STEPS_WITH_NOTIFICATION = definition(  # S12
    "parallel_steps_with_notification",
    [
        job_test(0, parameters=[SP("my_file_1.mov")]),
        job_test(1, [0]),
        job_test(2, [0], SLACK_PARAMETERS, mode="notification"),
        job_test(3, [1, 2]),
    ],
)
CONDITIONAL_BRANCHED = definition(  # S13
    "conditional_branched",
    [
        job_test(0, parameters=[SP("my_file_1.mov")]),
        job_test(1, [0], condition="length(source_paths)==1"),
        job_test(2, [0], condition="length(source_paths) > 2"),
        job_test(3, [1, 2]),
    ],
)
SKIPPED_AND_VOID_BRANCHES = definition(  # S14
    "skipped_and_void_branches",
    [
        job_test(0, parameters=[SP("my_file_1.mov")]),
        job_test(2, [0], condition="length(source_paths) > 2"),
        job_test(3, [2]),
        job_test(4, [0, 3]),
    ],
)
SKIPPED_BRANCH = definition(  # S15
    "skipped_branch",
    [
        job_test(0, parameters=[SP("my_file_1.mov")]),
        job_test(1, [0], condition="length(source_paths)==1"),
        job_test(2, [0], condition="length(source_paths) > 2"),
        job_test(3, [2]),
        job_test(4, [1, 3]),
    ],
)
STATUS_STEPS = definition("status_steps", [job_test(0, parameters=[SP("my_file.mov")]), job_test(1, [0])])  # S16
QUEUE_NOT_FOUND = definition(  # S17
    "queue_not_found",
    [step(0, "job_with_queue_not_existing", [SP("my_file.mov")])],
)
UPDATE_STEP = definition(  # S18
    "update_step",
    [
        job_test(0, parameters=[SP("my_file.mov"), string("test", "toto")]),
        job_test(
            1,
            [0],
            [string("audio", "my_file.wav"), string("video", "my_file.mov"), string("disco", "my_file.dsc")],
        ),
    ],
)
SKIPPED_STEPS = definition(  # S19
    "skipped_steps",
    [
        step(0, "job_step", [SP()]),
        step(1, "job_step", [], required_to_start=[0], parent_ids=[0]),
        step(2, "job_test", [], required_to_start=[0], parent_ids=[0]),
        step(3, "job_test", [], required_to_start=[1, 2], parent_ids=[1, 2]),
    ],
)
WORKFLOW_STATUS = definition(  # S23
    "workflow_status",
    [job_test(0, parameters=[SP("coucou.mov")]), job_test(1, [0]), job_test(2, [0])],
)
SINGLE_STEP = definition("single_step", [job_test(0, parameters=[SP("my_file.mov")])])  # X2
ONE_FOR_MANY = definition(  # X5
    "one_for_many",
    [
        job_test(
            0,
            parameters=[
                SP("a.mov", "b.wav", "c.ttml"),
                {"id": "input_filter", "type": "filter", "value": {"ends_with": [".wav", ".ttml"]}},
                {"id": "audio", "type": "select_input", "value": {"ends_with": [".wav"]}},
                {"id": "destination_filename", "type": "template", "value": "out_<%= length(source_paths) %>.json"},
            ],
            mode="one_for_many",
        )
    ],
)
NOTIFICATION_SLACK = definition(  # N1
    "notification_slack", [step(0, "notification_step", SLACK_PARAMETERS, mode="notification")]
)
EVENTS_RIGHTS = [
    {"action": "view", "groups": ["administrator", "user_view"]},
    {"action": "create", "groups": ["administrator"]},
    {"action": "abort", "groups": ["user_abort"]},
    {"action": "delete", "groups": ["user_delete"]},
    {"action": "retry", "groups": ["user_retry"]},
]
WORKFLOW_EVENTS = definition(  # E
    "workflow_events", [job_test(0, parameters=[SP("my_file.mov")])], rights=EVENTS_RIGHTS
)
CONSUMERS = definition(  # C
    "consumers",
    [
        job_test(0, parameters=[SP("a.mov"), string("direct_messaging_queue_name", "job_live")]),
        job_test(1, parameters=[SP("b.mov")]),
        job_test(2, parameters=[SP("c.mov")]),
    ],
)
OUTPUT_PARAMETERS = definition(
    "output_parameters",
    [
        job_test(0, parameters=[SP("a.mov")]),
        job_test(1, [0], [{"id": "language", "type": "template", "value": "{lang}"}]),
    ],
)
BAD_CONDITION = definition(  # Q2, a name that is never bound
    "bad_condition",
    [job_test(0, parameters=[SP("my_file_1.mov")]), job_test(1, [0], condition="length(source_paths) > n")],
)
CONDITION_ON_TWO_INPUTS = definition(  # Q2: the condition's name is bound by a later output
    "condition_on_two_inputs",
    [
        step(0, "job_source", [SP("a.mov", "b.mov")]),
        step(1, "job_probe", [], parent_ids=[0]),
        step(2, "job_mov", [], parent_ids=[0], condition="length(source_paths) > n"),
    ],
)
CONDITION_ON_PARAMETER = definition(  # Q2, a launch parameter the condition reads
    "condition_on_parameter",
    [
        step(0, "job_source", [SP("a.mov")]),
        step(1, "job_probe", [], parent_ids=[0]),
        step(2, "job_mov", [], parent_ids=[0], condition='Path.extname(Enum.at(source_paths, index)) == ".mov"'),
    ],
    parameters=[{"id": "index", "type": "integer", "value": 0}],
)


def webhook_definitions(server: RecordingServer) -> list[dict[str, Any]]:
    base = server.url("/notification")
    webhook = [
        string("service", "webhook"),
        {"id": "url", "type": "template", "value": base + "{work_directory}"},
        string("method", "POST"),
        {"id": "body", "type": "template", "value": '{"workflow_id": {workflow_id}}'},
    ]
    headers = string("headers", '{"content-type": "application/json"}')
    return [
        definition(  # N2
            "notification_webhook", [step(0, "notification_step", [*webhook, headers], mode="notification")]
        ),
        definition(  # N3
            "notification_webhook_without_headers", [step(0, "notification_step", webhook, mode="notification")]
        ),
        definition(  # X3
            "notification_and_false_condition",
            [
                job_test(0, parameters=[SP("a.mov")]),
                step(
                    1,
                    "job_notification",
                    [string("url", server.url("/hook")), string("method", "POST")],
                    mode="notification",
                    required_to_start=[0],
                    parent_ids=[0],
                ),
                job_test(2, [0], condition="false"),
                job_test(3, parameters=[], required_to_start=[1, 2], parent_ids=[0]),
            ],
        ),
    ]


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def api(
    actors: Any, settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path, server: RecordingServer
) -> Iterator[TestClient]:
    write_definitions(
        definitions_folder,
        PARALLEL_STEPS_WITH_NOTIFICATION,
        CONDITIONAL_BRANCHED,
        SKIPPED_AND_VOID_BRANCHES,
        SKIPPED_BRANCH,
        STATUS_STEPS,
        QUEUE_NOT_FOUND,
        UPDATE_STEP,
        SKIPPED_STEPS,
        WORKFLOW_STATUS,
        SINGLE_STEP,
        ONE_FOR_MANY,
        NOTIFICATION_SLACK,
        WORKFLOW_EVENTS,
        CONSUMERS,
        OUTPUT_PARAMETERS,
        BAD_CONDITION,
        CONDITION_ON_TWO_INPUTS,
        CONDITION_ON_PARAMETER,
        *webhook_definitions(server),
    )
    with TestClient(create_app(settings, launcher=actors.launch_workflow.fn)) as client:
        yield client


@pytest.fixture
def run(api: TestClient, sessions: sessionmaker[Session], actors: Any) -> Any:
    """``run("identifier")`` launches a workflow and returns its :class:`Run`."""

    def start(identifier: str, parameters: dict[str, Any] | None = None) -> Run:
        return Run.start(api, sessions, actors, identifier, parameters)

    return start


def assert_order(orders: Capture, job_id: int, parameters: list[dict[str, Any]], queue: str, priority: int) -> None:
    """The next order on ``job_submit``, compared in full."""
    (order,) = take_orders(orders, 1)
    assert order.body == {"job_id": job_id, "parameters": parameters}
    assert (order.routing_key, order.priority, order.delivery_mode) == (queue, priority, 2)


# -------------------------------------------------------------------------------- scenarios


def test_s12_parallel_steps_with_notification(run: Any, orders: Capture) -> None:
    """S12 parallel_steps_with_notification_test. Changed by ours.md §4.1: the Slack step runs in
    the notifier actor (eventually, not inside the advance); without a token it is an error job
    "missing slack configuration" (A15), which puts the workflow in ``error``; step 3 waits for
    it. A completion of that error job wins (§3.4) and step 3 starts."""
    r = run("parallel_steps_with_notification")
    assert r.total == 1
    root = [SP("my_file_1.mov"), DP(r.wd("my_file_1.mov")), SRC("my_file_1.mov"), REQ()]
    assert_order(orders, r.job(0).id, root, "job_test", 0)

    r.complete_step(0)
    assert (r.count(1), r.count(2)) == (1, 1)
    notification = r.job(2)
    assert (notification.name, notification.parameters, notification.state) == ("job_test", [], "queued")
    assert r.counts(2) == counters(queued=1), "the notification waits for the notifier"
    assert_order(orders, r.job(1).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 1)
    assert no_more_orders(orders), "no job order for a notification step"

    r.notify(notification)
    assert r.history(notification) == [("error", {"message": "missing slack configuration"})]
    assert r.counts(2) == counters(errors=1)
    assert r.status == "error"

    r.progress(r.job(1))
    r.progress(r.job(1))
    assert r.counts(1) == counters(processing=1)
    r.complete_step(1)
    assert r.counts(1) == counters(completed=1) and r.counts(2) == counters(errors=1)
    assert r.total == 3, "step 3 waits for the failed notification"

    r.progress(notification)
    r.progress(notification)
    assert r.counts(2) == counters(errors=1), "progressions on an error job are history only"

    r.complete(notification)  # a manual completion of the failed notification
    assert [r.count(s) for s in range(4)] == [1, 1, 1, 1] and r.total == 4
    assert r.status == "processing"
    assert_order(orders, r.job(3).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 3)
    r.complete_step(3)
    assert r.status == "completed"
    assert r.status_history() == ["pending", "processing", "error", "processing", "completed"]
    assert no_more_orders(orders), "3 orders in all: steps 0, 1 and 3"


def test_s13_conditional_branches(run: Any, orders: Capture) -> None:
    """S13 conditional_branched_workflow_test. Changed by ours.md §4.1 (Q1): same jobs and counts;
    the "still_processing"/"started" labels are gone, so step 3 starts as soon as step 1 completes."""
    r = run("conditional_branched")
    assert r.total == 1
    take_orders(orders, 1)

    r.complete_step(0)
    assert r.count(1) == 1 and r.count(2) == 1 and r.total == 3
    assert r.job(1).state == "queued"
    assert (r.job(2).state, r.job(2).parameters) == ("skipped", [])
    assert r.counts(2) == counters(skipped=1) and r.step_status(2) == "skipped"
    assert_order(orders, r.job(1).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 1)

    r.progress(r.job(1))
    r.progress(r.job(1))
    assert r.total == 3 and r.counts(1) == counters(processing=1)

    r.complete_step(1)
    assert [r.count(s) for s in range(4)] == [1, 1, 1, 1] and r.total == 4
    assert_order(orders, r.job(3).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 3)

    r.complete_step(3)
    assert r.status == "completed" and r.total == 4
    assert no_more_orders(orders), "3 orders in all: steps 0, 1 and 3"


def test_s14_skipped_and_void_branches(run: Any, orders: Capture) -> None:
    """S14 conditional_branched_workflow_skipped_and_void_branches_test. Unchanged under ours.md
    (asserted as state): one completion skips step 2 (false condition), skips step 3 (no inputs)
    and launches step 4."""
    r = run("skipped_and_void_branches")
    take_orders(orders, 1)
    r.complete_step(0)
    assert [r.count(s) for s in (0, 2, 3, 4)] == [1, 1, 1, 1] and r.total == 4
    assert [r.job(s).state for s in (2, 3)] == ["skipped", "skipped"]
    assert r.step_status(3) == "skipped"
    assert_order(orders, r.job(4).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 4)

    r.complete_step(4)
    assert r.status == "completed" and r.total == 4
    assert no_more_orders(orders), "2 orders in all: steps 0 and 4"


def test_s15_skipped_branch(run: Any, orders: Capture) -> None:
    """S15 conditional_branched_workflow_skipped_branch_test. Changed by ours.md §4.1 (Q1):
    after complete(0) the total is 4 (step 3 is skipped in the same advance; no progression
    trick needed); complete(1) launches step 4 (total 5)."""
    r = run("skipped_branch")
    take_orders(orders, 1)
    r.complete_step(0)
    assert r.total == 4
    assert [r.count(s) for s in range(5)] == [1, 1, 1, 1, 0]
    assert [r.job(s).state for s in (1, 2, 3)] == ["queued", "skipped", "skipped"]
    assert_order(orders, r.job(1).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 1)

    r.progress(r.job(1))
    assert r.total == 4, "a progression starts nothing"

    r.complete_step(1)
    assert [r.count(s) for s in range(5)] == [1, 1, 1, 1, 1] and r.total == 5
    assert_order(orders, r.job(4).id, [DP(r.wd("my_file_1.mov")), SRC(r.wd("my_file_1.mov")), REQ()], "job_test", 4)

    r.complete_step(4)
    assert r.status == "completed" and r.total == 5
    assert no_more_orders(orders), "3 orders in all: steps 0, 1 and 4"


def test_s16_step_counters_follow_each_state_change(run: Any, orders: Capture) -> None:
    """S16 status_step_test. Changed by ours.md §3.4: the state is a column and each job is in one
    bucket, so the original's second-resolution timing does not apply: the counters follow each
    state change (retrying counts queued, a progression makes it processing, error counts errors,
    retry → queued). The API's view and the ``workflow_steps`` table agree at every point."""
    r = run("status_steps")
    assert r.total == 1 and r.counts(0) == counters(queued=1)

    def check(step_id: int, expected: dict[str, int], status: str) -> None:
        assert r.counts(step_id) == expected
        assert r.table_counts(step_id) == expected
        assert r.step_status(step_id) == status

    r.complete_step(0)
    check(0, counters(completed=1), "completed")
    check(1, counters(queued=1), "processing")
    assert r.count(1) == 1
    job = r.job(1)

    r.progress(job)
    check(1, counters(processing=1), "processing")
    r.fail(job)
    check(1, counters(errors=1), "error")
    assert r.retry(job).status_code == 200
    check(1, counters(queued=1), "processing")  # retrying counts as queued
    r.progress(job)
    check(1, counters(processing=1), "processing")
    r.fail(job)
    check(1, counters(errors=1), "error")
    assert r.retry(job).status_code == 200
    check(1, counters(queued=1), "processing")
    assert r.total == 2 and r.count(1) == 1, "a retry reuses the job"
    assert r.states(job) == ["processing", "error", "retrying", "processing", "error", "retrying"]

    r.complete(job)
    check(1, counters(completed=1), "completed")
    assert r.status == "completed"


def test_s17_queue_not_found_to_error(run: Any, amqp_url: str, sessions: sessionmaker[Session]) -> None:
    """S17 job_queue_not_found_to_error_test. The order goes to a routing key no queue is bound
    to; the broker's alternate exchange puts it in ``job_queue_not_found`` and its handler fails
    the job. Changed by ours.md §3.5: the original's ``set_status(retrying)`` is the retry event
    (→ counted queued, workflow processing); the re-sent order is dead-lettered again."""
    fresh_queue_not_found(amqp_url)
    r = run("queue_not_found")
    (job,) = r.jobs()

    def routed_order() -> dict[str, Any]:
        (message,) = drain(amqp_url, JOB_QUEUE_NOT_FOUND, expect=1)
        properties, body = message
        return json.loads(body)

    order = routed_order()
    expected = [SP("my_file.mov"), DP(r.wd("my_file.mov")), SRC("my_file.mov"), REQ()]
    assert order == {"job_id": job.id, "parameters": expected}
    r.actors.job_queue_not_found.fn(order)  # what the bridge hands over
    assert r.history(job) == [("error", {"message": "No worker is started with this queue name."})]
    assert r.counts(0) == counters(errors=1) and r.total == 1 and r.count(0) == 1
    assert r.status == "error"

    assert r.retry(job).status_code == 200
    assert r.counts(0) == counters(queued=1)
    assert r.status == "processing"
    again = routed_order()
    assert again == order, "the retry re-sends the same order"
    r.actors.job_queue_not_found.fn(again)
    assert r.counts(0) == counters(errors=1) and r.total == 1
    assert r.states(job) == ["error", "retrying", "error"]
    assert r.status == "error"


def test_s18_update_step_parameters(run: Any, orders: Capture, sessions: sessionmaker[Session]) -> None:
    """S18 update_step_workflow_test (Q8). Changed by ours.md §3.5/§4.1: ``update`` applies to
    jobs in error or stopped (a queued job answers 409), each one writes an ``update`` history
    row and an Update row, and, since ``update`` never changes the state, the step is neither
    relaunched nor recounted; the next retry sends the new values."""
    r = run("update_step")
    assert r.total == 1 and r.count(0) == 1
    job0 = r.job(0)
    original = [SP("my_file.mov"), string("test", "toto"), DP(r.wd("my_file.mov")), SRC("my_file.mov"), REQ()]
    assert job0.parameters == original
    assert_order(orders, job0.id, original, "job_test", 0)

    def update(job: Any, *values: tuple[str, str]) -> int:
        body = {"event": "update", "job_id": job.id, "parameters": [{"id": k, "value": v} for k, v in values]}
        return r.event(body).status_code

    assert update(job0, ("test", "tata")) == 409, "a queued job is not updatable"
    r.fail(job0)
    assert update(job0, ("test", "tata")) == 200
    assert r.job(0).parameters[1] == string("test", "tata")
    assert r.states(job0) == ["error", "update"]
    assert r.counts(0) == counters(errors=1)
    assert r.retry(job0).status_code == 200
    assert_order(orders, job0.id, [*original[:1], string("test", "tata"), *original[2:]], "job_test", 0)
    r.complete(r.job(0))

    assert r.count(1) == 1
    job1 = r.job(1)
    assert job1.parameters == [
        string("audio", "my_file.wav"),
        string("video", "my_file.mov"),
        string("disco", "my_file.dsc"),
        DP(r.wd("my_file.mov")),
        SRC(r.wd("my_file.mov")),
        REQ(),
    ]
    take_orders(orders, 1)
    r.fail(job1)
    assert update(job1, ("video", "my_new_file.mov")) == 200
    assert r.job(1).parameters[1]["value"] == "my_new_file.mov"
    assert r.counts(1) == counters(errors=1) and r.step_status(1) == "error"

    assert update(job1, ("audio", "audio_file.wav"), ("video", "video_file.mov"), ("disco", "disco_file.dsc")) == 200
    assert r.total == 2 and r.count(1) == 1, "an update relaunches nothing"
    assert [p["value"] for p in r.job(1).parameters[:3]] == ["audio_file.wav", "video_file.mov", "disco_file.dsc"]
    assert r.states(job1) == ["error", "update", "update"]
    assert r.counts(1) == counters(errors=1)
    assert no_more_orders(orders)
    with sessions() as session:
        updates = [u.parameters for u in session.scalars(select(Update).where(Update.job_id == job1.id))]
    assert updates == [
        [{"id": "video", "value": "my_new_file.mov"}],
        [
            {"id": "audio", "value": "audio_file.wav"},
            {"id": "video", "value": "video_file.mov"},
            {"id": "disco", "value": "disco_file.dsc"},
        ],
    ]


def test_s19_skipped_steps(run: Any, orders: Capture) -> None:
    """S19 skipped_steps_test: empty inputs propagate; the launch alone completes the workflow
    (4 skipped jobs with no parameters, one ``completed`` status and one artifact, no order)."""
    r = run("skipped_steps")
    jobs = r.jobs()
    assert [(j.step_id, j.name, j.state, j.parameters) for j in jobs] == [
        (0, "job_step", "skipped", []),
        (1, "job_step", "skipped", []),
        (2, "job_test", "skipped", []),
        (3, "job_test", "skipped", []),
    ]
    assert all(r.history(j) == [("skipped", {})] for j in jobs)
    assert r.status == "completed"
    assert r.status_history() == ["pending", "completed"]
    assert r.artifacts() == [{}]
    assert no_more_orders(orders)


def test_s23_workflow_status_lifecycle(run: Any, orders: Capture) -> None:
    """S23 workflows/status_test. Changed by ours.md §4.1 (lifecycle row): created → pending;
    step 0 dispatched → processing (progressions change nothing); an error → error; a retry →
    processing; job completions never go back to pending; error while any job is in error and
    not retried; the last completion → completed. One history row per change."""
    r = run("workflow_status")
    assert r.status == "processing", "step 0 was dispatched by the launch"
    job0 = r.job(0)
    r.progress(job0, 0)
    assert r.status == "processing"
    r.progress(job0, 50)
    r.fail(job0)
    assert r.status == "error"
    assert r.retry(job0).status_code == 200
    assert r.status == "processing"
    r.complete(job0)
    assert r.status == "processing" and r.count(1) == 1 and r.count(2) == 1
    job1, job2 = r.job(1), r.job(2)
    r.queue_not_found(job1)
    assert r.status == "error"
    r.fail(job2)
    assert r.status == "error"
    assert r.retry(job1).status_code == 200
    assert r.status == "error", "job 2 is still in error"
    assert r.retry(job2).status_code == 200
    assert r.status == "processing"
    r.complete(job1)
    assert r.status == "processing"
    r.complete(job2)
    assert r.status == "completed"
    assert r.status_causes() == [
        ("pending", None, None),
        ("processing", None, None),
        ("error", job0.id, "error"),
        ("processing", job0.id, "retrying"),
        ("error", job1.id, "error"),
        ("processing", job2.id, "retrying"),
        ("completed", job2.id, "completed"),
    ]
    assert r.artifacts() == [{}]


def test_x2_stopped_is_final(run: Any, orders: Capture) -> None:
    """X2 (Q3). Changed by ours.md §4.1: a stopped job is final; its step is ``stopped`` and is not
    relaunched, the workflow is ``error``; a retry re-dispatches the same job."""
    r = run("single_step")
    (job,) = r.jobs()
    order = [SP("my_file.mov"), DP(r.wd("my_file.mov")), SRC("my_file.mov"), REQ()]
    assert_order(orders, job.id, order, "job_test", 0)
    r.stop(job)
    assert r.total == 1 and r.counts(0) == counters(stopped=1)
    assert r.step_status(0) == "stopped"
    assert r.status == "error"
    assert no_more_orders(orders), "no second job"

    assert r.retry(job).status_code == 200
    (retried,) = r.jobs()
    assert (retried.id, retried.state, retried.attempt) == (job.id, "retrying", 2)
    assert_order(orders, job.id, order, "job_test", 0)
    assert r.status == "processing"
    r.complete(retried)
    assert r.status == "completed" and r.total == 1


def test_x3_notification_and_skip_never_stall(run: Any, orders: Capture, server: RecordingServer) -> None:
    """X3 (Q1). Changed by ours.md §4.1: a notification completing while a sibling is skipped no
    longer stalls the workflow: step 3 runs once the notification completes."""
    server.reply("/hook", (200, "ok"))
    r = run("notification_and_false_condition")
    take_orders(orders, 1)
    r.complete_step(0)
    assert r.job(2).state == "skipped"
    assert r.job(1).state == "queued" and r.count(3) == 0
    r.notify(r.job(1))
    assert [request.path for request in server.requests] == ["/hook"]
    assert r.history(r.job(1)) == [("completed", {})]
    assert r.count(3) == 1
    assert_order(orders, r.job(3).id, [DP(r.wd("a.mov")), SRC(r.wd("a.mov")), REQ()], "job_test", 3)
    r.complete_step(3)
    assert r.status == "completed"


def test_x5_one_for_many_with_filter_and_select_input(run: Any, orders: Capture) -> None:
    """X5: one_for_many with an input filter, a select_input and a destination_filename template.
    Changed by ours.md §4.2: the order carries one ``source_paths`` (the filtered inputs), not the
    definition's as well."""
    r = run("one_for_many")
    (job,) = r.jobs()
    expected = [
        string("destination_filename", "out_2.json"),
        string("audio", "b.wav"),
        DP(r.wd("out_2.json")),
        {"id": "source_paths", "type": "array_of_strings", "value": ["b.wav", "c.ttml"]},
        REQ("b.wav", "c.ttml"),
    ]
    assert job.parameters == expected
    assert_order(orders, job.id, expected, "job_test", 0)


def test_n1_slack_notification_without_token(run: Any, orders: Capture) -> None:
    """N1. Changed by ours.md §4.1/A15: the notifier actor runs the Slack step (eventually); with
    no token it is an error job "missing slack configuration" and the workflow is ``error``."""
    r = run("notification_slack")
    (job,) = r.jobs()
    assert (job.kind, job.state, r.history(job)) == ("notification", "queued", [])
    r.notify(job)
    assert r.history(job) == [("error", {"message": "missing slack configuration"})]
    assert r.status == "error"
    assert no_more_orders(orders)


def test_n2_webhook_notification(run: Any, server: RecordingServer) -> None:
    """N2. Changed by ours.md A16: any 2xx is a success, so the server's 204 (its "bad header"
    signal) would pass anyway; the test asserts the request it received instead. The job
    completes and so does the workflow."""
    server.reply("/notification/test_work_dir", (204, ""))
    r = run("notification_webhook")
    (job,) = r.jobs()
    r.notify(job)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/notification/test_work_dir")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"workflow_id": r.W}
    assert r.history(job) == [("completed", {})]
    assert r.total == 1 and r.status == "completed"


def test_n3_webhook_notification_not_found(run: Any, server: RecordingServer) -> None:
    """N3: the endpoint answers 404 with an empty body (a 4xx is permanent, A16): one error job
    with the original's message; the workflow is ``error`` (ours.md §3.4)."""
    server.reply("/bad_endpoint", (200, "ok"))
    server.reply("/notification/test_work_dir", (404, ""))
    r = run("notification_webhook_without_headers")
    (job,) = r.jobs()
    r.notify(job)
    assert len(server.requests) == 1, "a 4xx is not retried"
    assert r.history(job) == [("error", {"message": 'response status code: 404 with body: ""'})]
    assert r.total == 1 and r.status == "error"


def test_e_workflow_events(
    actors: Any, api: TestClient, settings: Settings, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """E api/workflow_events_test. Ported on a one-step workflow (a stepless one completes at
    launch, and its jobs were written by hand in the original). Unknown event → 422; abort, retry
    and delete need their right (403); a retry of a job in error → 200, job ``retrying``,
    workflow ``processing``, the same order re-sent. Changed by ours.md §4.1: the "tie" case
    becomes a job whose last state (by id) is ``processing`` → 409 JSON, not 403 text."""
    r = Run.start(api, sessions, actors, "workflow_events")
    (job,) = r.jobs()
    order = [SP("my_file.mov"), DP(r.wd("my_file.mov")), SRC("my_file.mov"), REQ()]
    assert_order(orders, job.id, order, "job_test", 0)
    allowed = dataclasses.replace(
        settings, auth_anonymous_groups=("user_view", "user_abort", "user_delete", "user_retry")
    )
    with TestClient(create_app(allowed, launcher=lambda _: None)) as user:
        unknown = r.event({"event": "unknown"}, user)
        assert (unknown.status_code, unknown.text) == (422, "event is not supported")

        for name in ("abort", "delete"):
            denied = r.event({"event": name})
            assert denied.status_code == 403
            assert denied.json() == {"status": "error", "message": f"Forbidden to {name} this workflow"}
        r.fail(job)
        denied = r.retry(job)
        assert denied.status_code == 403
        assert denied.json() == {"status": "error", "message": "Forbidden to retry this workflow"}

        retried = r.retry(job, user)
        assert (retried.status_code, retried.json()) == (200, {"status": "ok"})
        assert r.jobs()[0].state == "retrying" and r.states(job)[-1] == "retrying"
        assert r.status == "processing"
        assert_order(orders, job.id, order, "job_test", 0)

        r.progress(job)  # error, retrying, processing: the last state by id is processing
        tie = r.retry(job, user)
        assert tie.status_code == 409
        assert tie.json()["status"] == "error" and f"job {job.id} is processing" in tie.json()["message"]

        assert r.event({"event": "abort"}, user).status_code == 200
        assert r.status == "aborted"
        assert r.event({"event": "delete"}, user).status_code == 200
        assert user.get(f"{PREFIX}/workflows/{r.W}").status_code == 404


def test_c_consumers(run: Any, api: TestClient) -> None:
    """C consumers: ``job_stopped`` makes the job's last status ``stopped``; an SDK-shaped
    ``job_progression`` is accepted (one progression, the job ``processing``); ``GET /jobs``
    with ``direct_messaging_queue_name=direct_messaging_job_live`` finds the job whose order
    holds ``{"id":"direct_messaging_queue_name","type":"string","value":"job_live"}``."""
    r = run("consumers")
    live, stopped, progressed = r.job(0), r.job(1), r.job(2)

    r.stop(stopped)
    assert r.history(stopped)[-1] == ("stopped", {})
    assert r.job(1).state == "stopped"

    r.actors.job_progression.fn(
        {
            "job_id": progressed.id,
            "datetime": "2026-11-26T19:04:58.678833623Z",
            "docker_container_id": "5f2bc1f0e1a9",
            "progression": 42,
        }
    )
    with r.sessions() as session:
        rows = session.scalars(select(Progression).where(Progression.job_id == progressed.id)).all()
        assert [(row.progression, row.docker_container_id) for row in rows] == [(42, "5f2bc1f0e1a9")]
    assert r.job(2).state == "processing"

    found = api.get(f"{PREFIX}/jobs", params={"direct_messaging_queue_name": "direct_messaging_job_live"}).json()
    assert found["total"] == 1 and [job["id"] for job in found["data"]] == [live.id]


def test_output_parameters_feed_later_templates(run: Any, orders: Capture) -> None:
    """A ``job_completed`` carrying ``parameters`` appends them to the workflow's parameters
    (engine.md §1, §8.2); a later step's ``{lang}`` template then renders the new value."""
    r = run("output_parameters")
    take_orders(orders, 1)
    lang = string("lang", "fr")
    r.complete(r.job(0), parameters=[lang])
    assert r.parameters == [lang]
    assert r.view()["parameters"] == [lang]
    expected = [string("language", "fr"), DP(r.wd("a.mov")), SRC(r.wd("a.mov")), REQ()]
    assert r.job(1).parameters == expected
    assert_order(orders, r.job(1).id, expected, "job_test", 1)


def test_q2_failing_condition_is_an_error_job(run: Any, orders: Capture) -> None:
    """Q2: a condition that fails (an unknown name ``n``) gives the step an error job whose
    message names the condition; the workflow is ``error``. A retry re-evaluates it: with
    nothing changed, the same job fails again."""
    r = run("bad_condition")
    take_orders(orders, 1)
    r.complete_step(0)
    (job,) = r.jobs(1)
    ((state, description),) = r.history(job)
    assert state == "error" and job.parameters == []
    assert 'condition "length(source_paths) > n"' in description["message"]
    assert "n" in description["message"].split("failed:", 1)[1]
    assert r.counts(1) == counters(errors=1) and r.step_status(1) == "error"
    assert r.status == "error"

    assert r.retry(job).status_code == 200
    assert r.states(job) == ["error", "retrying", "error"]
    assert r.history(job)[-1] == (state, description)
    assert r.jobs(1)[0].attempt == 2 and r.total == 2
    assert r.status == "error"
    assert no_more_orders(orders)


def test_q2_a_retry_that_plans_the_step_again_creates_the_jobs_of_its_other_inputs(run: Any, orders: Capture) -> None:
    """A failed condition gives its step one error job (input 0); once a completion binds the
    condition's name, a retry plans the step again: input 0 goes into the same job, input 1
    gets a job of its own, each with its order (created in the retry's transaction)."""
    r = run("condition_on_two_inputs")
    take_orders(orders, 2)
    r.complete_step(0)
    probes = r.jobs(1)
    (job,) = r.jobs(2)
    assert len(probes) == 2 and job.state == "error"
    take_orders(orders, 2)
    r.complete(probes[0], parameters=[{"id": "n", "type": "integer", "value": 0}])
    assert r.retry(job).status_code == 200
    relaunched, created = r.jobs(2)
    assert (relaunched.id, relaunched.state, relaunched.attempt) == (job.id, "retrying", 2)
    assert (created.state, created.input_index) == ("queued", 1) and created.id > probes[1].id
    assert {order.body["job_id"] for order in take_orders(orders, 2)} == {relaunched.id, created.id}
    assert r.counts(2) == counters(queued=2) and r.status == "processing"
    assert no_more_orders(orders)


def test_q2_retry_reevaluates_the_condition(run: Any, orders: Capture) -> None:
    """Q2 retry with a workflow parameter the launch sets wrongly (``index`` 3 with one input):
    the condition fails → error job, workflow ``error``. Both outcomes a retry can reach:
    nothing changed → the same error again; once a completed job's output parameters set
    ``index`` to 0 → the condition holds and the step launches into the same job."""
    r = run("condition_on_parameter", {"index": 3})
    take_orders(orders, 1)
    r.complete_step(0)
    probe = r.job(1)
    (job,) = r.jobs(2)
    assert job.state == "error" and "Path.extname(Enum.at(source_paths, index))" in r.history(job)[0][1]["message"]
    assert r.status == "error"
    assert_order(orders, probe.id, [DP(r.wd("a.mov")), SRC(r.wd("a.mov")), REQ()], "job_probe", 1)

    assert r.retry(job).status_code == 200
    assert r.states(job) == ["error", "retrying", "error"]
    assert r.status == "error"
    assert no_more_orders(orders)

    r.complete(probe, parameters=[{"id": "index", "type": "integer", "value": 0}])
    assert r.status == "error", "the condition's job is still in error"
    assert r.retry(job).status_code == 200
    (relaunched,) = r.jobs(2)
    assert (relaunched.id, relaunched.state, relaunched.attempt) == (job.id, "retrying", 3)
    expected = [DP(r.wd("a.mov")), SRC(r.wd("a.mov")), REQ()]
    assert relaunched.parameters == expected
    assert_order(orders, job.id, expected, "job_mov", 2)
    assert r.status == "processing"
    r.complete(relaunched)
    assert r.status == "completed"
