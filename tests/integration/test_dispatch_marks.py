"""DispatchMarks on the real database: marks written off the senders' threads, in few
transactions, and a database that fails only leaves the orders to the clock."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.db import session_factory, sync_engine
from stepflow.models import Job
from stepflow.models.base import utcnow
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.orchestration.dispatch_marks import DispatchMarks
from stepflow.settings import Settings
from tests.support import stored_workflow


def insert_jobs(sessions: sessionmaker[Session], count: int, send_after: datetime | None = None) -> list[int]:
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        jobs = [
            Job(workflow_id=workflow.id, step_id=0, input_index=index, name="job_test", send_after=send_after)
            for index in range(count)
        ]
        session.add_all(jobs)
        session.flush()
        return [job.id for job in jobs]


def marked(sessions: sessionmaker[Session], job_ids: list[int]) -> list[int]:
    with sessions() as session:
        rows = session.execute(select(Job.id, Job.dispatched_at, Job.send_after).where(Job.id.in_(job_ids)))
        return sorted(job_id for job_id, dispatched_at, send_after in rows if dispatched_at and send_after is None)


def test_marks_from_many_threads_are_written_in_few_transactions(sessions: sessionmaker[Session]) -> None:
    job_ids = insert_jobs(sessions, 400)
    updates: list[str] = []
    engine = sessions.kw["bind"]

    def count_updates(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE jobs"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", count_updates)
    marks = DispatchMarks(sessions)
    try:
        threads = [
            threading.Thread(target=lambda part=job_ids[start::8]: [marks.add([(job_id, None)]) for job_id in part])
            for start in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert marks.flush()
    finally:
        marks.close()
        event.remove(engine, "before_cursor_execute", count_updates)
    assert marked(sessions, job_ids) == job_ids
    assert 1 <= len(updates) < len(job_ids) / 4, f"{len(updates)} UPDATEs for {len(job_ids)} marks"


def test_close_writes_what_waits(sessions: sessionmaker[Session]) -> None:
    job_ids = insert_jobs(sessions, 4)
    marks = DispatchMarks(sessions)
    marks.add((job_id, None) for job_id in job_ids[:3])
    marks.close()
    assert marked(sessions, job_ids) == job_ids[:3]
    marks.add([(job_ids[3], None)])  # after close: left to the clock, no thread started again
    assert marks.flush(timeout=1)
    assert marked(sessions, job_ids) == job_ids[:3]


def test_a_failing_database_leaves_the_orders_unmarked_for_the_clock(
    sessions: sessionmaker[Session], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    job_ids = insert_jobs(sessions, 2, send_after=utcnow())
    nowhere = dataclasses.replace(settings, database_url="postgresql+psycopg://root@127.0.0.1:1/none")
    unreachable = session_factory(sync_engine(nowhere))
    marks = DispatchMarks(unreachable)
    marks.add((job_id, None) for job_id in job_ids)  # returns at once: the sender never waits for the database
    assert marks.flush()
    marks.close()
    assert marked(sessions, job_ids) == []
    with sessions() as session:
        due = select(Job.id).where(Job.dispatched_at.is_(None), Job.send_after <= utcnow() + timedelta(seconds=1))
        assert sorted(session.scalars(due)) == job_ids, "still undispatched: the clock sends them again"
    assert "dispatch marks not written" in caplog.text


def test_a_late_mark_leaves_a_job_told_to_send_again_to_the_clock(sessions: sessionmaker[Session]) -> None:
    """The order of a job was confirmed (send_after NULL when sent), then, before its mark was
    written, the worker's busy answer scheduled the order again: the late mark changes nothing.
    A re-sent order's mark (the send_after it was sent with) applies."""
    (busy, resent) = insert_jobs(sessions, 2)
    scheduled = utcnow() + timedelta(seconds=30)
    with sessions() as session, session.begin():
        session.get_one(Job, busy).send_after = scheduled  # the busy answer, committed first
        session.get_one(Job, resent).send_after = scheduled
    marks = DispatchMarks(sessions)
    marks.add([(busy, None), (resent, scheduled)])
    assert marks.flush()
    marks.close()
    with sessions() as session:
        assert session.get_one(Job, busy).dispatched_at is None
        assert session.get_one(Job, busy).send_after == scheduled
    assert marked(sessions, [busy, resent]) == [resent]


def test_a_mark_committed_while_a_transaction_owes_the_order_again_does_not_survive(
    sessions: sessionmaker[Session],
) -> None:
    """A transaction read the job unmarked; the marks thread committed its mark meanwhile; the
    transaction then owes the order again (the SDK's busy answer): the job ends unmarked, with
    the new send_after, so the clock sends it (the ORM alone would skip the unchanged column)."""
    (job_id,) = insert_jobs(sessions, 1)
    scheduled = utcnow() + timedelta(seconds=30)
    with sessions() as session, session.begin():
        locked, job = LockedWorkflow.lock_jobs(session, [job_id])[job_id]
        assert job.dispatched_at is None
        marks = DispatchMarks(sessions)
        marks.add([(job_id, None)])
        assert marks.flush()
        marks.close()
        assert marked(sessions, [job_id]) == [job_id], "the mark committed meanwhile"
        locked.unmark(job, send_after=scheduled)
    with sessions() as session:
        again = session.get_one(Job, job_id)
        assert (again.dispatched_at, again.send_after) == (None, scheduled)
