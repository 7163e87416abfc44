"""Actors against the real database and broker: launch, advance, worker messages, dispatch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.engine.launch import JobPlan
from stepflow.orchestration.decisions import JobAnswers, decide_batch
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.orchestration.outbox import Courier, Owed, undispatched
from stepflow.api.app import create_app
from stepflow.models import Artifact, Job, JobStatus, Outbox, Progression, Workflow, WorkflowStatus
from stepflow.models.base import utcnow
from stepflow.resources import Resources
from stepflow.settings import Settings
from stepflow.wire.topology import DEAD_LETTERS
from tests.integration.broker import Capture, drain
from tests.support import definition, source_paths, step, write_definitions

PREFIX = "/api/step_flow"

FORK_JOIN = definition(
    "fork_join",
    [
        step(0, "job_source", [source_paths("/in/a.mov")]),
        step(1, "job_left", [], parent_ids=[0]),
        step(2, "job_right", [], parent_ids=[0]),
        step(3, "job_join", [], parent_ids=[1, 2]),
    ],
)
TWO_INPUTS = definition(
    "two_inputs",
    [
        step(0, "job_first", [source_paths("/in/b.mov", "/in/a.mov")]),
        step(1, "job_second", [{"id": "message", "type": "string", "value": "hello"}], parent_ids=[0]),
    ],
)


@pytest.fixture
def api(settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path) -> Iterator[TestClient]:
    write_definitions(definitions_folder, FORK_JOIN, TWO_INPUTS)
    with TestClient(create_app(settings, launcher=lambda _: None)) as client:
        yield client


def create(api: TestClient, identifier: str) -> int:
    response = api.post(f"{PREFIX}/workflows", json={"workflow_identifier": identifier, "reference": "ref"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def jobs_of(sessions: sessionmaker[Session], workflow_id: int) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.workflow_id == workflow_id).order_by(Job.id)))


def workflow_of(sessions: sessionmaker[Session], workflow_id: int) -> Workflow:
    with sessions() as session:
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        return workflow


def complete(actors: Any, job: Job, outputs: list[str] | None = None) -> None:
    destination = [p["value"] for p in job.parameters if p["id"] == "destination_path"]
    actors.job_completed.fn(
        {"job_id": job.id, "status": "completed", "destination_paths": outputs if outputs is not None else destination}
    )


def test_launch_creates_and_dispatches_the_first_step(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    workflow_id = create(api, "two_inputs")
    actors.launch_workflow.fn(workflow_id)
    jobs = jobs_of(sessions, workflow_id)
    assert [(job.step_id, job.input_index, job.state) for job in jobs] == [(0, 0, "queued"), (0, 1, "queued")]
    assert actors.resources.marks.flush()
    assert all(job.dispatched_at is not None for job in jobs_of(sessions, workflow_id))
    base = f"/test_work_dir/{workflow_id}/"
    assert jobs[0].parameters == [
        source_paths("/in/b.mov", "/in/a.mov"),
        {"id": "destination_path", "type": "string", "value": base + "b.mov"},
        {"id": "source_path", "type": "string", "value": "/in/b.mov"},
        {"id": "requirements", "type": "requirements", "value": {"paths": [base + "a.mov"]}},
    ]
    received = orders.take(2)
    assert [body["job_id"] for _, body in received] == [job.id for job in jobs]
    assert received[0][1]["parameters"] == jobs[0].parameters
    assert all(props.delivery_mode == 2 and props.priority == 0 for props, _ in received)
    assert workflow_of(sessions, workflow_id).status == "processing"
    with sessions() as session:
        assert session.scalars(select(Outbox)).all() == []

    actors.launch_workflow.fn(workflow_id)  # a redelivered launch creates nothing
    assert len(jobs_of(sessions, workflow_id)) == 2
    assert orders.take(1, timeout=0.5) == []


def test_completions_advance_to_completion_once(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    workflow_id = create(api, "two_inputs")
    actors.launch_workflow.fn(workflow_id)
    first, second = jobs_of(sessions, workflow_id)
    complete(actors, first)
    assert len(jobs_of(sessions, workflow_id)) == 2, "the child waits for every job of its parent"
    complete(actors, second)
    complete(actors, second)  # duplicate delivery
    jobs = jobs_of(sessions, workflow_id)
    children = [job for job in jobs if job.step_id == 1]
    base = f"/test_work_dir/{workflow_id}/"
    assert [next(p["value"] for p in job.parameters if p["id"] == "source_path") for job in children] == [
        base + "b.mov",
        base + "a.mov",
    ]
    assert children[0].parameters[0] == {"id": "message", "type": "string", "value": "hello"}
    for child in children:
        complete(actors, child)
    assert workflow_of(sessions, workflow_id).status == "completed"
    for child in children:
        complete(actors, child)
    with sessions() as session:
        states = [row.state for row in session.scalars(select(WorkflowStatus).order_by(WorkflowStatus.id))]
        assert states == ["pending", "processing", "completed"]
        assert len(session.scalars(select(Artifact)).all()) == 1
        completed_rows = session.scalars(select(JobStatus).where(JobStatus.job_id == second.id)).all()
        assert [row.state for row in completed_rows] == ["completed"]
    view = api.get(f"{PREFIX}/workflows/{workflow_id}").json()["data"]
    assert [s["status"] for s in view["steps"]] == ["completed", "completed"]
    assert view["steps"][0]["jobs"]["completed"] == 2 and view["steps"][0]["jobs"]["total"] == 2
    assert len(view["artifacts"]) == 1


def test_error_then_late_completion(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    actors.job_progression.fn({"job_id": root.id, "progression": 0, "datetime": "2026-11-26T19:04:58.678833623Z"})
    actors.job_progression.fn({"job_id": root.id, "progression": 0, "datetime": "2026-11-26T19:04:58.678833623Z"})
    with sessions() as session:
        assert len(session.scalars(select(Progression)).all()) == 1
        assert session.get(Job, root.id).state == "processing"
    error = {
        "job_id": root.id,
        "status": "error",
        "parameters": [{"id": "message", "type": "string", "value": "RuntimeError: boom"}],
    }
    actors.job_error.fn(error)
    actors.job_error.fn(error)
    assert workflow_of(sessions, workflow_id).status == "error"
    with sessions() as session:
        rows = session.scalars(select(JobStatus).where(JobStatus.job_id == root.id)).all()
        assert [(row.state, row.description) for row in rows] == [
            ("processing", {}),
            ("error", {"message": "RuntimeError: boom"}),
        ]
    view = api.get(f"{PREFIX}/workflows/{workflow_id}").json()["data"]
    assert view["steps"][0]["status"] == "error" and view["steps"][0]["jobs"]["errors"] == 1
    complete(actors, root)  # the job did run: a completion wins over the error
    assert workflow_of(sessions, workflow_id).status == "processing"
    assert sorted(job.step_id for job in jobs_of(sessions, workflow_id)) == [0, 1, 2]


def test_unknown_job_messages_are_acked(actors: Any, sessions: sessionmaker[Session]) -> None:
    actors.job_completed.fn({"job_id": 987654, "status": "completed"})
    actors.job_error.fn({"job_id": 987654, "status": "error", "parameters": []})
    actors.job_error.fn({"message": "expected ident at line 1 column 2", "status": "error"})
    actors.job_progression.fn({"job_id": 987654, "progression": 10})


def test_queue_not_found_fails_the_job_and_dead_letters_unknown_ones(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], amqp_url: str
) -> None:
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    # Nobody consumes job_source in this vhost: the order went to job_queue_not_found.
    routed = drain(amqp_url, "job_queue_not_found", expect=1)
    assert routed, "the alternate exchange must catch an order nobody is bound for"
    actors.job_queue_not_found.fn({"job_id": root.id, "parameters": root.parameters})
    with sessions() as session:
        assert session.get(Job, root.id).state == "error"
        (row,) = session.scalars(select(JobStatus).where(JobStatus.job_id == root.id)).all()
        assert row.description == {"message": "No worker is started with this queue name."}
    assert workflow_of(sessions, workflow_id).status == "error"

    actors.job_queue_not_found.fn({"job_id": 424242, "parameters": []})
    (dead,) = drain(amqp_url, DEAD_LETTERS, expect=1)
    assert dead[0].headers["x-stepflow-reason"] == "unknown job"
    assert dead[0].headers["x-stepflow-source-queue"] == "job_queue_not_found"


@pytest.mark.parametrize("round_number", range(3))
def test_sibling_completions_never_start_a_join_twice(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture, round_number: int
) -> None:
    """Both branches of 12 fork/join workflows complete at the same moment, in threads: each
    join starts exactly once (the workflow row lock serialises the two decisions)."""
    workflow_ids = [create(api, "fork_join") for _ in range(12)]
    for workflow_id in workflow_ids:
        actors.launch_workflow.fn(workflow_id)
        (root,) = jobs_of(sessions, workflow_id)
        complete(actors, root)
    barrier = threading.Barrier(2 * len(workflow_ids))

    def complete_together(job: Job) -> None:
        barrier.wait()
        complete(actors, job)

    threads = [
        threading.Thread(target=complete_together, args=(job,))
        for workflow_id in workflow_ids
        for job in jobs_of(sessions, workflow_id)
        if job.step_id in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for workflow_id in workflow_ids:
        joins = [job for job in jobs_of(sessions, workflow_id) if job.step_id == 3]
        assert len(joins) == 1, f"workflow {workflow_id} started its join {len(joins)} times"
        base = f"/test_work_dir/{workflow_id}/"
        assert next(p["value"] for p in joins[0].parameters if p["id"] == "source_path") == base + "a.mov"


def test_the_sdk_busy_answer_sends_the_order_again_then_fails(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """SDK 2.2.1 answers "another job is already in progress" for a job it never ran: StepFlow
    sends the same order again after a backoff (bounded, recorded as automatic retries), not a
    job error."""
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    orders.take(1)
    busy = {
        "job_id": root.id,
        "status": "error",
        "parameters": [
            {"id": "message", "value": "Cannot initialize this job, an another job is already in progress."}
        ],
    }
    for attempt in range(1, 6):
        actors.job_error.fn(busy)
        assert orders.take(1, timeout=0.3) == [], "not at once: the same busy worker would get it"
        with sessions() as session:
            assert undispatched(session, older_than=30).orders == []
            send_after = session.get(Job, root.id).send_after
        backoff = (send_after - utcnow()).total_seconds()
        assert 2 * 2 ** (attempt - 1) - 1 < backoff <= 2 * 2 ** (attempt - 1), "2 s, doubling"
        with sessions() as session, session.begin():  # the backoff has passed: the clock sends it
            session.execute(update(Job).where(Job.id == root.id).values(send_after=utcnow() - timedelta(seconds=1)))
        with sessions() as session:
            actors.resources.send_owed(undispatched(session, older_than=30))
        ((_, body),) = orders.take(1)
        assert body == {"job_id": root.id, "parameters": root.parameters}
        assert workflow_of(sessions, workflow_id).status == "processing"
    with sessions() as session:
        rows = session.scalars(select(JobStatus).where(JobStatus.job_id == root.id).order_by(JobStatus.id)).all()
        assert [(row.state, row.description["attempt"]) for row in rows] == [("retrying", n) for n in range(1, 6)]
        assert session.get(Job, root.id).state == "retrying"
    actors.job_error.fn(busy)  # past the bound: the job fails
    assert orders.take(1, timeout=0.5) == []
    assert workflow_of(sessions, workflow_id).status == "error"
    complete(actors, root)  # and a completion still wins
    assert workflow_of(sessions, workflow_id).status == "processing"


def completion(job: Job) -> tuple[str, Any]:
    """``job``'s completion as a job answer: ``(queue, payload)``."""
    destination = [p["value"] for p in job.parameters if p["id"] == "destination_path"]
    return ("job_completed", {"job_id": job.id, "status": "completed", "destination_paths": destination})


@pytest.mark.parametrize("round_number", range(3))
def test_sibling_completions_in_concurrent_batches_start_each_join_once(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture, round_number: int
) -> None:
    """Twelve fork/join workflows; one batch holds every left branch's completion (in workflow
    order), another every right branch's (in reverse order), decided at the same moment in two
    threads: each join starts exactly once, and the batches, which lock the same workflows, do
    not deadlock (each locks them in id order)."""
    workflow_ids = [create(api, "fork_join") for _ in range(12)]
    for workflow_id in workflow_ids:
        actors.launch_workflow.fn(workflow_id)
        (root,) = jobs_of(sessions, workflow_id)
        complete(actors, root)
    branches = [jobs_of(sessions, workflow_id) for workflow_id in workflow_ids]
    left = [completion(job) for jobs in branches for job in jobs if job.step_id == 1]
    right = [completion(job) for jobs in reversed(branches) for job in jobs if job.step_id == 2]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def decide_together(batch: list[tuple[str, Any]]) -> None:
        barrier.wait()
        try:
            assert decide_batch(actors.resources, batch) == [True] * len(batch)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=decide_together, args=(batch,)) for batch in (left, right)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    for workflow_id in workflow_ids:
        joins = [job for job in jobs_of(sessions, workflow_id) if job.step_id == 3]
        assert len(joins) == 1, f"workflow {workflow_id} started its join {len(joins)} times"
    launched = {body["job_id"] for _, body in orders.take(12 * 4)} & {
        job.id for workflow_id in workflow_ids for job in jobs_of(sessions, workflow_id) if job.step_id == 3
    }
    assert len(launched) == 12, "every join's order was sent"


def test_a_batch_is_decided_in_arrival_order(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """A progression, the completion and a duplicate completion of one job in one batch: the
    job went through processing to completed, and its children were started once."""
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    assert [body["job_id"] for _, body in orders.take(1)] == [root.id]
    progression = ("job_progression", {"job_id": root.id, "progression": 50})
    assert decide_batch(actors.resources, [progression, completion(root), completion(root)]) == [True] * 3
    with sessions() as session:
        rows = session.scalars(select(JobStatus).where(JobStatus.job_id == root.id).order_by(JobStatus.id)).all()
        assert [row.state for row in rows] == ["processing", "completed"]
        assert session.scalar(select(Progression.progression).where(Progression.job_id == root.id)) == 50
    children = [job for job in jobs_of(sessions, workflow_id) if job.step_id != 0]
    assert [job.step_id for job in children] == [1, 2]
    assert sorted(body["job_id"] for _, body in orders.take(2)) == [job.id for job in children]
    assert orders.take(1, timeout=0.5) == []


def test_one_bad_answer_neither_fails_nor_delays_its_batch(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """A completion PostgreSQL cannot store (a NUL character in a JSON string) fails the batch's
    transaction: the other answers are then decided alone and committed, and the bad one alone
    is reported unsettled (the bridge rejects it into its retry loop); an answer for an unknown
    job is settled among them."""
    first, second = (create(api, "fork_join") for _ in range(2))
    roots = []
    for workflow_id in (first, second):
        actors.launch_workflow.fn(workflow_id)
        roots += jobs_of(sessions, workflow_id)
    orders.take(2)
    bad = completion(roots[0])
    bad[1]["parameters"] = [{"id": "note", "type": "string", "value": "a\u0000b"}]
    unknown = ("job_completed", {"job_id": 987654, "status": "completed"})
    assert decide_batch(actors.resources, [bad, unknown, completion(roots[1])]) == [False, True, True]
    assert [job.state for job in jobs_of(sessions, first)] == ["queued"]
    assert [job.state for job in jobs_of(sessions, second)] == ["completed", "queued", "queued"]
    assert len(orders.take(2)) == 2


def test_a_batch_costs_a_fixed_number_of_statements_whatever_it_starts(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """The statements a batch of job answers sends (in the deciding thread; the dispatch marks
    go in their own) do not grow with the batch: the jobs it creates are inserted together, so
    a lone completion that starts two steps and a batch of 19 such completions (38 jobs) pay
    about the same, not one INSERT per started step."""
    workflow_ids = [create(api, "fork_join") for _ in range(20)]
    roots = []
    for workflow_id in workflow_ids:
        actors.launch_workflow.fn(workflow_id)
        roots += jobs_of(sessions, workflow_id)
    orders.take(20)
    engine = actors.resources.sessions.kw["bind"]
    deciding = threading.get_ident()
    statements: list[str] = []

    def count(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == deciding:
            statements.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        decide_batch(actors.resources, [completion(roots[0])])
        lone = list(statements)
        statements.clear()
        decide_batch(actors.resources, [completion(root) for root in roots[1:]])
        batch = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(lone) <= 10, lone
    assert lone.count("INSERT INTO jobs") == 1, lone
    assert len(batch) <= len(lone) + 2, f"19 answers: {batch}; one: {lone}"
    assert batch.count("INSERT INTO jobs") <= 2, batch
    assert len(orders.take(2 * 20)) == 2 * 20
    assert all(len(jobs_of(sessions, workflow_id)) == 3 for workflow_id in workflow_ids)


def test_a_process_reads_a_workflows_counters_again_only_once_another_wrote_them(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture, settings: Settings
) -> None:
    """A process keeps the counters it committed (``CountersCache``): its next answer for the
    workflow reads no counter row. Once another process (its own resources, its own cache)
    moved a job of the workflow, the first reads them again: the join starts exactly once,
    from the right branch's completion, decided where the left one was not seen."""
    here = actors.resources
    engine = here.sessions.kw["bind"]
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    assert decide_batch(here, [completion(root)]) == [True]
    left, right = (job for job in jobs_of(sessions, workflow_id) if job.step_id != 0)
    counter_reads: list[str] = []

    def count(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "workflow_steps" in statement:
            counter_reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        progression = ("job_progression", {"job_id": left.id, "progression": 10})
        assert decide_batch(here, [progression]) == [True]
        assert counter_reads == [], "the counters this process committed are not read again"
        there = Resources.open(settings)
        try:
            assert decide_batch(there, [completion(left)]) == [True]
        finally:
            there.close()
        assert decide_batch(here, [completion(right)]) == [True]
        assert len(counter_reads) == 1, "another process wrote them: read once"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    joins = [job for job in jobs_of(sessions, workflow_id) if job.step_id == 3]
    assert len(joins) == 1
    with sessions() as session:
        # launch, root completed, left processing, left completed, right completed (join queued)
        assert session.get(Workflow, workflow_id).counters_version == 5  # type: ignore[union-attr]
    assert len(orders.take(4)) == 4  # root, both branches, the join


def test_rows_written_late_are_seen_by_the_transactions_next_read_and_kept_apart_on_rollback(
    actors: Any, api: TestClient, sessions: sessionmaker[Session]
) -> None:
    """The jobs a transaction creates and moves, and their history rows, are written just
    before its next statement (``WriteBehind``): that statement sees them, with the ids the
    transaction was given; a transaction that rolls back leaves nothing."""
    workflow_id = create(api, "two_inputs")
    actors.launch_workflow.fn(workflow_id)
    first, second = jobs_of(sessions, workflow_id)
    with actors.resources.transaction() as session:
        locked, job = LockedWorkflow.lock_jobs(session, [first.id])[first.id]
        status_id = locked.move_job(job, "processing", {"note": "late"})
        locked.set_parameters(job, [*job.parameters, {"id": "extra", "type": "string", "value": "x"}])
        step = next(s for s in locked.steps if s["id"] == 1)
        ((_, new_id),) = locked.create_jobs(step, [JobPlan(5, "skipped")])
        seen = session.execute(select(Job.id, Job.state).where(Job.workflow_id == workflow_id).order_by(Job.id)).all()
        history = session.execute(select(JobStatus.id, JobStatus.job_id, JobStatus.state, JobStatus.description)).all()
        assert seen == [(first.id, "processing"), (second.id, "queued"), (new_id, "skipped")]
        assert (status_id, first.id, "processing", {"note": "late"}) in history
        assert any(row[1:3] == (new_id, "skipped") for row in history)
        assert new_id > second.id and status_id > 0
    with sessions() as session:
        stored = session.get(Job, first.id)
        assert stored is not None and stored.state == "processing"
        assert stored.parameters[-1]["id"] == "extra" and stored.parameters[:-1] == first.parameters
    with pytest.raises(RuntimeError), actors.resources.transaction() as session:
        locked, job = LockedWorkflow.lock_jobs(session, [second.id])[second.id]
        locked.move_job(job, "error", {"message": "never"})
        raise RuntimeError("rolled back before any other statement")
    assert [job.state for job in jobs_of(sessions, workflow_id)] == ["processing", "queued", "skipped"]


def test_the_bridges_decider_settles_a_batch_without_waiting_for_the_broker(
    actors: Any, api: TestClient, sessions: sessionmaker[Session], orders: Capture
) -> None:
    """``JobAnswers`` hands what a committed batch owes to the resources' courier and reports
    the batch settled at once (the bridge acks it and decides the next one); the courier
    publishes the orders and their dispatch marks follow."""
    workflow_id = create(api, "fork_join")
    actors.launch_workflow.fn(workflow_id)
    (root,) = jobs_of(sessions, workflow_id)
    orders.take(1)
    release = threading.Event()
    resources = actors.resources

    def held_back(owed: Owed) -> None:
        release.wait(10)
        resources.send_owed(owed)

    kept, resources.courier = resources.courier, Courier(held_back, finish=lambda: None)
    try:
        assert JobAnswers(resources)([completion(root)]) == [True]
        started = [job for job in jobs_of(sessions, workflow_id) if job.step_id in (1, 2)]
        assert len(started) == 2 and all(job.dispatched_at is None for job in started), "committed, not sent yet"
        assert orders.take(1, timeout=0.3) == [], "nothing published while the courier is held"
        release.set()
        assert {body["job_id"] for _, body in orders.take(2)} == {job.id for job in started}
        assert resources.courier.flush() and resources.marks.flush()
        assert all(job.dispatched_at is not None for job in jobs_of(sessions, workflow_id) if job.step_id in (1, 2))
    finally:
        release.set()
        resources.courier.close()
        resources.courier = kept
