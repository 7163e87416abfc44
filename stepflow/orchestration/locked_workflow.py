"""A workflow held under its row lock, with the counters every decision reads.

All changes to a workflow's jobs go through ``LockedWorkflow`` inside one transaction that
first locks the workflow row (``SELECT … FOR UPDATE``). Two events of one workflow are
therefore decided one after the other, so sibling completions can never start a child
twice, and the per-step counters stay exact.

The counters are read once per transaction (plain rows, no ORM objects), or not at all when
the process holds them at the workflow's ``counters_version`` (:class:`CountersCache`); they
are kept up to date in memory as jobs move, and the changed ones are written when the
transaction commits, in one statement that also bumps the version. A workflow's steps never
change after launch: the lock does not read them, and a process that gives its sessions a
:class:`StepsCache` reads (and indexes) each workflow's steps once.

The rows a decision writes (new jobs, moved jobs, history) are not written one by one: a
:class:`WriteBehind` writes them together just before the transaction's next statement, so a
batch of answers costs the same few statements as one answer.

No decision looks at every step of the workflow: what the counters show (:class:`StepTally`)
is kept as jobs move (and kept with the counters), and the steps that may start are looked
for among those requiring a step whose jobs moved (``unadvanced``), so a message costs the
same in a workflow of 10 steps or of 2,000.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, bindparam, event, select, text, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import flag_modified, set_committed_value

from stepflow.changes import JOB_STATE, WORKFLOW_STATUS, Change, JobRef, WorkflowRef, job_ref, record
from stepflow.engine.graph import StepGraph
from stepflow.engine.launch import JobPlan
from stepflow.engine.states import ADVANCING_WORKFLOW_STATES, JobState, WorkflowState
from stepflow.engine.status import StepCounts, StepTally, next_status
from stepflow.models import Artifact, Job, Workflow, WorkflowStatus, WorkflowStep
from stepflow.models.base import utcnow
from stepflow.orchestration.counters_cache import COUNTERS_CACHE, Counters, CountersCache
from stepflow.orchestration.steps_cache import STEPS_CACHE, StepsCache
from stepflow.orchestration.write_behind import HISTORY, JOBS, WriteBehind, reserved_id

log = structlog.get_logger(__name__)

_HELD = "stepflow.locked"

_COUNTERS = ("queued", "processing", "completed", "errors", "skipped", "stopped")


_STEPS = WorkflowStep.__table__
_UPDATE_COUNTERS = text(
    "WITH bumped AS (UPDATE workflows SET counters_version = counters_version + 1"
    " WHERE id = ANY(CAST(:workflow_ids AS bigint[])))"
    " UPDATE workflow_steps AS s SET "
    + ", ".join(f"{name} = v.{name}" for name in (*_COUNTERS, "launched_at"))
    + " FROM unnest(CAST(:w AS bigint[]), CAST(:s AS bigint[]), "
    + ", ".join(f"CAST(:{name} AS bigint[])" for name in _COUNTERS)
    + ", CAST(:launched_at AS timestamptz[])) AS v(w, s, "
    + ", ".join(_COUNTERS)
    + ", launched_at) WHERE s.workflow_id = v.w AND s.step_id = v.s"
)
"""Writes the changed counter rows and bumps their workflows' ``counters_version``: one statement."""


@dataclass
class _Held:
    """What one transaction holds locked: workflows by id, and the jobs loaded with them."""

    transaction: object
    workflows: dict[int, LockedWorkflow] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    writes: WriteBehind | None = None
    """The rows the transaction writes late (new jobs, moved jobs, history), once it has some."""

    def write_behind(self, session: Session) -> WriteBehind:
        """The transaction's :class:`WriteBehind`, made on first use."""
        if self.writes is None:
            self.writes = WriteBehind(session.connection())
        return self.writes


def _held(session: Session) -> _Held:
    """This transaction's locks (kept in ``session.info``; a new transaction starts empty).
    From its first use, the session's commits write the changed counters."""
    transaction = session.get_transaction()
    held = session.info.get(_HELD)
    if held is None:
        event.listen(session, "before_commit", _write_counters)
        event.listen(session, "after_commit", _keep_counters)
    if held is None or held.transaction is not transaction:
        held = session.info[_HELD] = _Held(transaction)
    return held


def _write_counters(session: Session) -> None:
    """Write the counters of every step whose jobs moved in this transaction and bump their
    workflows' ``counters_version``: one statement for all those rows at once, and an INSERT
    for a step that had no row."""
    held = session.info.get(_HELD)
    if held is None or held.transaction is not session.get_transaction():
        return
    if held.writes is not None:
        held.writes.write()
    changed: list[dict[str, Any]] = []
    bumped = []
    for locked in held.workflows.values():
        if locked.changed():
            changed += locked.changed_counters()
            bumped.append(locked.workflow)
    if bumped:
        columns = {name: [row[name] for row in changed] for name in ("w", "s", *_COUNTERS, "launched_at")}
        session.connection().execute(_UPDATE_COUNTERS, {"workflow_ids": [w.id for w in bumped], **columns})
        for workflow in bumped:
            set_committed_value(workflow, "counters_version", workflow.counters_version + 1)


def _keep_counters(session: Session) -> None:
    """Once committed, the counters of every workflow the transaction held are the database's
    at their (new) version: the process's :class:`CountersCache` keeps them."""
    held = session.info.get(_HELD)
    cache: CountersCache | None = session.info.get(COUNTERS_CACHE)
    if held is None or cache is None:
        return
    for locked in held.workflows.values():
        workflow = locked.workflow
        cache.put(workflow.id, workflow.inserted_at, workflow.counters_version, locked.counters())


_SELECT_COUNTERS = select(_STEPS.c.workflow_id, _STEPS.c.step_id, _STEPS.c.launched_at, *(_STEPS.c[n] for n in _COUNTERS)).where(
    _STEPS.c.workflow_id.in_(bindparam("workflow_ids", expanding=True))
)


def _load_counters(session: Session, workflow_ids: Iterable[int]) -> dict[int, _Counters]:
    """Each workflow's step counters: plain rows through the session's connection (no ORM object
    per step, no flush: nothing else writes the counters in this transaction)."""
    loaded = {workflow_id: _Counters({}, {}) for workflow_id in workflow_ids}
    rows = session.connection().execute(_SELECT_COUNTERS, {"workflow_ids": list(loaded)})
    for workflow_id, step_id, launched_at, *numbers in rows:
        counters = loaded[workflow_id]
        counters.counts[step_id] = StepCounts(*numbers)
        counters.launched[step_id] = launched_at
    return loaded


@dataclass
class _Counters:
    """One workflow's step counters in this transaction, and when each step was launched; a
    step without a row yet has none in ``launched``."""

    counts: dict[int, StepCounts]
    launched: dict[int, datetime | None]
    tally: StepTally | None = None


def read_job_inputs(session: Session, workflow_id: int, step_ids: Iterable[int]) -> dict[int, list[list[dict[str, Any]]]]:
    """Parameters of the jobs of ``step_ids``, per step (steps without jobs absent), in creation order."""
    ids = list(step_ids)
    inputs: dict[int, list[list[dict[str, Any]]]] = {}
    if ids:
        rows = session.execute(
            select(Job.step_id, Job.parameters)
            .where(Job.workflow_id == workflow_id, Job.step_id.in_(ids))
            .order_by(Job.id)
        )
        for step_id, parameters in rows:
            inputs.setdefault(step_id, []).append(parameters)
    return inputs


class LockedWorkflow:
    """The workflow row (locked) and its step counter rows, for one transaction."""

    def __init__(self, session: Session, workflow: Workflow, counters: _Counters) -> None:
        self.session = session
        self.workflow = workflow
        self._counts = counters.counts
        self._launched = counters.launched
        self._tally = counters.tally
        self._unstored: set[int] = set()
        self._dirty: set[int] = set()
        self._graph: StepGraph | None = None
        self._moved: set[int] = set()  # steps whose jobs moved since the last advance
        self._settled = workflow.status in ADVANCING_WORKFLOW_STATES and any(self._launched.values())
        self._ref: WorkflowRef | None = None

    @classmethod
    def lock(cls, session: Session, workflow_id: int) -> LockedWorkflow | None:
        """Lock the workflow row; None when the workflow does not exist (deleted).

        A workflow already locked in this transaction (``lock_jobs``) is returned as it is.
        """
        held = _held(session)
        if workflow_id not in held.workflows:
            cls._lock_where(session, held, Workflow.id == workflow_id)
        return held.workflows.get(workflow_id)

    @classmethod
    def _lock_where(cls, session: Session, held: _Held, selects: ColumnElement[bool]) -> None:
        """Lock the workflows ``selects`` names that this transaction does not hold yet, in id
        order, and load their counters (two statements); they join ``held``."""
        workflows = session.scalars(
            select(Workflow)
            .options(defer(Workflow.steps))
            .where(selects, Workflow.id.not_in(held.workflows) if held.workflows else true())
            .order_by(Workflow.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        if not workflows:
            return
        cache: CountersCache | None = session.info.get(COUNTERS_CACHE)
        counters: dict[int, _Counters] = {}
        for workflow in workflows:
            kept = cache.get(workflow.id, workflow.inserted_at, workflow.counters_version) if cache else None
            if kept is not None:
                counters[workflow.id] = _Counters(*kept)
        missing = [workflow.id for workflow in workflows if workflow.id not in counters]
        if missing:
            counters.update(_load_counters(session, missing))
        for workflow in workflows:
            held.workflows[workflow.id] = cls(session, workflow, counters[workflow.id])

    @classmethod
    def lock_jobs(cls, session: Session, job_ids: Iterable[int]) -> dict[int, tuple[LockedWorkflow, Job]]:
        """Lock the workflows of these jobs and load the jobs: each known job id → (its locked
        workflow, the job). Three statements for any number of jobs; the workflows are locked
        in id order, so two transactions locking overlapping sets never deadlock. Jobs loaded
        before in this transaction are not read again (their workflow is already held)."""
        held = _held(session)
        wanted = sorted({job_id for job_id in job_ids if job_id not in held.jobs})
        if wanted:
            cls._lock_where(session, held, Workflow.id.in_(select(Job.workflow_id).where(Job.id.in_(wanted))))
            rows = session.execute(
                select(Job, reserved_id(JOBS), reserved_id(HISTORY))
                .where(Job.id.in_(wanted), Job.workflow_id.in_(held.workflows))
                .execution_options(populate_existing=True)
            ).all()
            for job, _, _ in rows:
                held.jobs[job.id] = job
            writes = held.write_behind(session)
            writes.reserve(JOBS, (job_id for _, job_id, _ in rows))
            writes.reserve(HISTORY, (status_id for _, _, status_id in rows))
        return {
            job_id: (held.workflows[held.jobs[job_id].workflow_id], held.jobs[job_id])
            for job_id in job_ids
            if job_id in held.jobs
        }

    @property
    def id(self) -> int:
        return self.workflow.id

    @property
    def graph(self) -> StepGraph:
        """The workflow's steps, indexed: from the process's :class:`StepsCache` when it has
        them, else read (once per transaction) and kept there. They do not change after launch."""
        if self._graph is None:
            cache: StepsCache | None = self.session.info.get(STEPS_CACHE)
            graph = cache.get(self.workflow) if cache is not None else None
            if graph is None:
                graph = StepGraph(list(self.workflow.steps))  # the deferred column: one SELECT
                if cache is not None:
                    cache.put(self.workflow, graph)
            self._graph = graph
        return self._graph

    @property
    def steps(self) -> Sequence[dict[str, Any]]:
        """The workflow's steps, in definition order."""
        return self.graph.steps

    def unadvanced(self) -> Sequence[Mapping[str, Any]] | None:
        """The steps that may have become startable since this workflow last started all it
        could: those requiring a step whose jobs moved since. None (look at every step) until
        this transaction advanced a workflow that was not known to be advanced when locked
        (not launched yet, or not advancing: paused). Every transaction that moves jobs of an
        advancing workflow advances it before it commits, so one locked advancing, with a step
        launched, has started all it could."""
        if not self._settled:
            return None
        return self.graph.requiring(self._moved)

    def advanced(self) -> None:
        """The caller starts every step that may start now (``unadvanced``)."""
        self._settled = True
        self._moved.clear()

    def counts(self) -> dict[int, StepCounts]:
        """Each step's counters, kept up to date as jobs move (read-only for callers)."""
        return self._counts

    def tally(self) -> StepTally:
        """What the counters show, kept up to date as jobs move (counted once per workflow,
        then kept with the counters)."""
        if self._tally is None:
            self._tally = StepTally.of(self.steps, self._counts)
        return self._tally

    def counters(self) -> Counters:
        """The counters, the launch times and the tally (if counted), for the process's
        :class:`CountersCache`."""
        return self._counts, self._launched, self._tally

    def changed(self) -> bool:
        """Whether jobs moved since the counters were last written."""
        return bool(self._dirty)

    def job_inputs(self, step_ids: Iterable[int]) -> dict[int, list[list[dict[str, Any]]]]:
        """The parameters of the jobs of ``step_ids``, per step, in creation order. A step all
        of whose jobs this transaction loaded (a one-job step whose job just completed) is
        answered from memory, with the changes not yet written; otherwise they are read."""
        ids = list(step_ids)
        held = [job for job in _held(self.session).jobs.values() if job.workflow_id == self.id]
        inputs: dict[int, list[list[dict[str, Any]]]] = {}
        for step_id in ids:
            jobs = sorted((job for job in held if job.step_id == step_id), key=lambda job: job.id)
            counts = self._counts.get(step_id)
            if counts is not None and jobs and len(jobs) == counts.total:
                inputs[step_id] = [job.parameters for job in jobs]
        missing = [step_id for step_id in ids if step_id not in inputs]
        if missing:
            inputs.update(read_job_inputs(self.session, self.id, missing))
        return inputs

    def _move_counts(self, step_id: int, moves: Iterable[tuple[str | None, str]], launched: datetime | None = None) -> None:
        before = counts = self._counts.get(step_id)
        if counts is None:
            before = counts = StepCounts()
            self._unstored.add(step_id)
        for from_state, to_state in moves:
            counts = counts.moved(from_state, to_state)
        self._counts[step_id] = counts
        if self._tally is not None:
            self._tally.moved(self.graph.by_id.get(step_id), before, counts)
        self._launched[step_id] = self._launched.get(step_id) or launched
        self._dirty.add(step_id)
        self._moved.add(step_id)

    def changed_counters(self) -> list[dict[str, Any]]:
        """The counter rows to write for the steps whose jobs moved (workflow ``w``, step ``s``,
        the counters, ``launched_at``); a step without a row gets its row inserted now. Clears
        the changes."""
        changed = []
        for step_id in sorted(self._dirty):
            values = self._counts[step_id]._asdict()
            launched_at = self._launched.get(step_id)
            if step_id in self._unstored:
                name = next((step["name"] for step in self.steps if step["id"] == step_id), "")
                self.session.connection().execute(
                    insert(_STEPS).values(workflow_id=self.id, step_id=step_id, name=name, launched_at=launched_at, **values)
                )
                self._unstored.discard(step_id)
                continue
            changed.append({"w": self.id, "s": step_id, "launched_at": launched_at, **values})
        self._dirty.clear()
        return changed

    def create_jobs(self, step: dict[str, Any], plans: Sequence[JobPlan]) -> list[tuple[JobPlan, int]]:
        """Create the planned jobs (the step must have none at their inputs); returns each plan
        with its job id. The ids are reserved a batch at a time, and the rows are inserted with
        the transaction's next statement, together with those of the jobs created until then:
        deciding a batch of answers costs one INSERT, not one per answer."""
        if not plans:
            return []
        writes = self._writes()
        now = utcnow()
        job_ids = writes.ids(JOBS, len(plans))
        values = [
            {
                "id": job_id,
                "workflow_id": self.id,
                "step_id": step["id"],
                "input_index": plan.input_index,
                "name": step["name"],
                "kind": plan.kind,
                "parameters": plan.parameters,
                "state": plan.state,
                "is_live": self.workflow.is_live,
                "inserted_at": now,
                "updated_at": now,
            }
            for plan, job_id in zip(plans, job_ids)
        ]
        writes.insert(JOBS, values)
        created = list(zip(plans, job_ids))
        self._move_counts(step["id"], [(None, plan.state) for plan, _ in created], launched=now)
        for plan, job_id in created:
            if plan.state != JobState.QUEUED:
                self._record(job_id, plan.state, {"message": plan.message} if plan.message else {})
            self.tell(JOB_STATE, JobRef(job_id, step["name"], step["id"], plan.state, plan.message or None))
        return created

    def create_job(self, step: dict[str, Any], plan: JobPlan) -> int:
        """Create one planned job (``create_jobs``); its id."""
        return self.create_jobs(step, [plan])[0][1]

    def unmark(self, job: Job, send_after: datetime | None = None) -> None:
        """The job's order is owed again: its dispatch mark is cleared and ``send_after`` set.
        Both columns are written even when this transaction read them unchanged: a mark that
        the process's ``DispatchMarks`` commits meanwhile must not survive this update."""
        job.dispatched_at = None
        job.send_after = send_after
        flag_modified(job, "dispatched_at")
        flag_modified(job, "send_after")

    def _writes(self) -> WriteBehind:
        """This transaction's rows written late."""
        return _held(self.session).write_behind(self.session)

    def _write_job(self, job: Job, state: str | None = None, parameters: list[Any] | None = None) -> None:
        """Change the job's ``state`` and/or ``parameters`` in memory now, and in the database
        with the transaction's next statement (one UPDATE for every job moved, not the ORM's
        unit of work)."""
        now = utcnow()
        if state is not None:
            set_committed_value(job, "state", state)
        if parameters is not None:
            set_committed_value(job, "parameters", parameters)
        set_committed_value(job, "updated_at", now)
        self._writes().move_job(job.id, job.state, parameters, now)

    def set_parameters(self, job: Job, parameters: list[Any]) -> None:
        """Give the job new parameters (written with the transaction's next statement)."""
        self._write_job(job, parameters=parameters)

    def move_job(self, job: Job, state: str, description: dict[str, Any] | None = None) -> int:
        """Change a job's state: counters, the ``state`` column and one history row (its id)."""
        previous = job.state
        self._move_counts(job.step_id, [(previous, state)])
        self._write_job(job, state=state)
        message = (description or {}).get("message")
        self.tell(JOB_STATE, job_ref(job, message if isinstance(message, str) else None), previous)
        return self.record(job, state, description)

    def tell(
        self, event: str, job: JobRef | None = None, previous: str | None = None, progression: int | None = None
    ) -> None:
        """Record a change of this workflow for the commit's listeners (``stepflow.changes``)."""
        if self._ref is None or self._ref.status != self.workflow.status:
            self._ref = WorkflowRef.of(self.workflow)  # one per status, not one per job moved
        record(self.session, Change(event, self._ref, job, previous, progression))

    def record(self, job: Job, state: str, description: dict[str, Any] | None = None) -> int:
        """A history row only (for messages that inform without changing the state); its id.
        It is inserted with the transaction's next statement, with the other rows written late."""
        return self._record(job.id, state, description or {})

    def _record(self, job_id: int, state: str, description: dict[str, Any]) -> int:
        writes = self._writes()
        (status_id,) = writes.ids(HISTORY, 1)
        row = {"id": status_id, "job_id": job_id, "state": state, "description": description, "inserted_at": utcnow()}
        writes.insert(HISTORY, [row])
        return status_id

    def set_status(self, new: str, cause: int | None = None) -> None:
        """Set the workflow status; a history row naming the job history row that caused it
        (``cause``), and on completion the artifact, only on change."""
        current = self.workflow.status
        if new == current:
            return
        self.workflow.status = new
        self.tell(WORKFLOW_STATUS, previous=current)
        self.session.add(WorkflowStatus(workflow_id=self.id, state=new, job_status_id=cause))
        if new == WorkflowState.COMPLETED:
            self.session.add(Artifact(workflow_id=self.id, resources={}))
        log.info("workflow status", workflow_id=self.id, status=new, previous=current)

    def refresh_status(self, cause: int | None = None) -> str:
        """Set the status the counters imply (completion happens once: it is terminal)."""
        self.set_status(next_status(self.workflow.status, self.tally().progress()), cause)
        return self.workflow.status
