"""The clock: outbox relay, re-dispatch of unconfirmed orders, singleton lock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.dispatch_marks import DispatchMarks
from stepflow.orchestration.outbox import Owed, dispatch, owe_direct_message
from stepflow.clock import Clock, Periodic, try_singleton
from stepflow.models import Job, Outbox
from stepflow.models.base import utcnow
from stepflow.settings import Settings
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import JOB_SUBMIT
from stepflow.wire.worker_manager import worker_manager_message
from tests.integration.broker import Capture
from tests.support import stored_workflow


def make_clock(sessions: sessionmaker[Session], settings: Settings, sent: list[Any]) -> Clock:
    publisher = ConfirmingPublisher(settings.amqp_url)
    marks = DispatchMarks(sessions)

    def send(owed: Owed) -> int:  # as Resources.resend: the marks are written before the next sweep
        count = dispatch(sessions, publisher, sent.append, marks, owed)
        assert marks.flush()
        return count

    return Clock(
        sessions,
        {"launch_workflow": lambda row: sent.append(row.payload["workflow_id"])},
        send,
        interval=0.1,
        outbox_resend_after=5,
        dispatch_resend_after=5,
    )


def age(sessions: sessionmaker[Session], model: type, seconds: float) -> None:
    past = utcnow() - timedelta(seconds=seconds)
    values = {"inserted_at": past, "updated_at": past} if model is Job else {"inserted_at": past}
    with sessions() as session, session.begin():
        session.execute(update(model).values(**values))


def test_outbox_entries_are_resent_once_per_period(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session, session.begin():
        session.add(Outbox(actor="launch_workflow", payload={"workflow_id": 7}))
    sent: list[Any] = []
    clock = make_clock(sessions, settings, sent)
    assert clock.tick() == (0, 0), "a fresh entry is the web's to send"
    age(sessions, Outbox, 60)
    assert clock.tick() == (1, 0)
    assert sent == [7]
    assert clock.tick() == (0, 0), "sent again only after another period"


def test_unconfirmed_orders_are_dispatched_again(
    sessions: sessionmaker[Session], settings: Settings, amqp_url: str
) -> None:
    capture = Capture(amqp_url, JOB_SUBMIT, ["job_late"], declare_exchange=True)
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        params = [{"id": "source_path", "type": "string", "value": "/a"}]
        session.add(Job(workflow_id=workflow.id, step_id=3, input_index=0, name="job_late", parameters=params))
        session.add(
            Job(
                workflow_id=workflow.id, step_id=3, input_index=1, name="job_late", parameters=params, state="completed"
            )
        )
    age(sessions, Job, 60)
    clock = make_clock(sessions, settings, [])
    assert clock.tick() == (0, 1)
    ((properties, body),) = capture.take(1)
    assert body["parameters"] == params and properties.priority == 3
    assert clock.tick() == (0, 0), "a confirmed order is marked dispatched"
    capture.close()


def test_a_live_job_has_no_order_but_its_worker_manager_message_is_sent_again(
    sessions: sessionmaker[Session], settings: Settings, amqp_url: str
) -> None:
    capture = Capture(amqp_url, JOB_SUBMIT, ["#"], declare_exchange=True)
    params = [{"id": "direct_messaging_queue_name", "type": "string", "value": "u0"}]
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        job = Job(workflow_id=workflow.id, step_id=2, input_index=0, name="job_live", parameters=params, is_live=True)
        session.add(job)
        session.flush()
        owe_direct_message(session, worker_manager_message(job.id, 2, params, "create"))
    age(sessions, Job, 60)
    age(sessions, Outbox, 60)
    clock = make_clock(sessions, settings, [])
    assert clock.tick() == (0, 1), "the create message, not a job order"
    ((properties, body),) = capture.take(1)
    assert body == {
        "job_id": job.id,
        "parameters": [*params, {"id": "action", "type": "string", "value": "create"}],
        "type": "create",
    }
    assert properties.priority == 2
    assert clock.tick() == (0, 0), "a confirmed message leaves the outbox"
    capture.close()


def test_only_one_clock_holds_the_lock(sessions: sessionmaker[Session]) -> None:
    engine = sessions.kw["bind"]
    with engine.connect() as first, engine.connect() as second:
        assert try_singleton(first)
        assert not try_singleton(second)


def test_periodic_tasks_run_once_per_period(sessions: sessionmaker[Session], settings: Settings) -> None:
    runs: list[int] = []
    clock = Clock(
        sessions,
        {},
        lambda owed: 0,
        interval=0.1,
        outbox_resend_after=5,
        dispatch_resend_after=5,
        periodic=[Periodic("count", 3600, lambda: runs.append(1))],
    )
    clock.tick()
    clock.tick()
    assert runs == [1], "due at the first tick, then not before its period"


def test_a_failing_periodic_task_does_not_stop_the_clock(sessions: sessionmaker[Session], settings: Settings) -> None:
    def broken() -> None:
        raise ConnectionError("broker down")

    clock = Clock(
        sessions,
        {},
        lambda owed: 0,
        interval=0.1,
        outbox_resend_after=5,
        dispatch_resend_after=5,
        periodic=[Periodic("broken", 0.0, broken)],
    )
    assert clock.tick() == (0, 0)
    assert clock.tick() == (0, 0)


def test_the_status_request_reaches_every_worker(settings: Settings, amqp_url: str) -> None:
    import pika

    from stepflow.wire.direct_messaging import publish_direct_message, status_request
    from stepflow.wire.topology import DIRECT_MESSAGING, declare_direct_messaging

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    declare_direct_messaging(connection.channel())
    connection.close()
    capture = Capture(amqp_url, DIRECT_MESSAGING, [])
    # Bound like an SDK worker: any of its headers matches.
    capture.channel.queue_bind(
        capture.queue, DIRECT_MESSAGING, arguments={"x-match": "any", "broadcast": "true", "job_type": "job_x"}
    )
    publish_direct_message(ConfirmingPublisher(settings.amqp_url), status_request())
    ((properties, body),) = capture.take(1)
    assert body == {"type": "status"} and properties.headers == {"broadcast": "true"}
    capture.close()
