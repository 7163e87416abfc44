"""The clock's watch over queues holding orders that no worker consumes (ours.md §3.11)."""

from __future__ import annotations

import uuid

import pika
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from stepflow.idle_queues import IdleQueueWatch, broker_consumer_counts
from stepflow.models import Job
from stepflow.models.base import utcnow
from tests.support import stored_workflow


def add_jobs(sessions: sessionmaker[Session], name: str, *states: str, dispatched: bool = True) -> None:
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        for index, state in enumerate(states):
            session.add(
                Job(
                    workflow_id=workflow.id,
                    step_id=0,
                    input_index=index,
                    name=name,
                    state=state,
                    dispatched_at=utcnow() if dispatched else None,
                )
            )


def test_a_queue_without_consumer_is_reported_once_until_a_worker_comes(
    sessions: sessionmaker[Session], amqp_url: str
) -> None:
    queue, missing = f"job_idle_{uuid.uuid4().hex[:6]}", f"job_never_declared_{uuid.uuid4().hex[:6]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    add_jobs(sessions, queue, "queued", "retrying", "processing", "completed")
    add_jobs(sessions, queue, "queued", dispatched=False)  # not sent yet: not waiting in the queue
    add_jobs(sessions, missing, "queued")  # the broker has no such queue: queue-not-found's business
    watch = IdleQueueWatch(sessions, broker_consumer_counts(amqp_url))
    with capture_logs() as logged:
        assert watch.check() == {queue: 2}
        assert watch.check() == {queue: 2}
        channel.basic_consume(queue, lambda *_: None)  # a worker arrives
        assert watch.check() == {}
    events = [entry["event"] for entry in logged]
    assert events.count(f"no worker consuming {queue}") == 1, "said once, not at every check"
    assert events.count(f"{queue} is consumed again, or has no order waiting") == 1
    assert not [event for event in events if missing in event]
    connection.close()
