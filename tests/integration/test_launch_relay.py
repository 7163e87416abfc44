"""The launch relay: ``POST /workflows`` hands its launches to ``launch_workflow`` in batches,
without waiting for the broker; what the broker does not take stays in the outbox for the clock.

Real PostgreSQL and RabbitMQ: the actors' broker is a vhost of this module's own
(``STEPFLOW_ACTORS_AMQP_URL``), so its ``stepflow.workflows`` queue holds only these launches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.api.workflows import launch_relay
from stepflow.api.workflows.launch_relay import Launch, LaunchRelay
from stepflow.clock import relay_outbox
from stepflow.models import Outbox
from stepflow.settings import Settings
from stepflow.wire.handover import WORKFLOWS_QUEUE, declare_actor_queues
from stepflow.wire.publisher import ConfirmingPublisher, Outgoing
from tests.conftest import fresh_vhost
from tests.support import CREATED_VIEW_FIELDS, TWO_STEPS, stored_workflow, write_definitions

PREFIX = "/api/step_flow"
BODY = {"workflow_identifier": "two_steps", "reference": "relayed"}
RELAY_THREAD = "stepflow-launch-relay"
UNREACHABLE = "amqp://guest:guest@127.0.0.1:9/"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def actors_url() -> Iterator[str]:
    with fresh_vhost(f"stepflow_test_relay_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture
def relayed(settings: Settings, sessions: sessionmaker[Session], definitions_folder: Path, actors_url: str) -> Settings:
    """Settings whose actors' broker is the module's vhost, its launch queue empty."""
    write_definitions(definitions_folder, TWO_STEPS)
    connection = pika.BlockingConnection(pika.URLParameters(actors_url))
    channel = connection.channel()
    declare_actor_queues(channel)
    channel.queue_purge(WORKFLOWS_QUEUE)
    connection.close()
    return dataclasses.replace(settings, actors_amqp_url=actors_url)


def handed_over(url: str) -> list[int]:
    """The workflow ids of the ``launch_workflow`` messages waiting in ``stepflow.workflows``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    ids = []
    while True:
        method, _, body = channel.basic_get(WORKFLOWS_QUEUE, auto_ack=True)
        if method is None:
            break
        message = json.loads(body)
        assert message["actor_name"] == "launch_workflow"
        ids.append(message["args"][0])
    connection.close()
    return ids


def outbox(sessions: sessionmaker[Session]) -> dict[int, Any]:
    """The launch outbox rows: ``sent_at`` by workflow id."""
    with sessions() as session:
        rows = session.scalars(select(Outbox).where(Outbox.actor == "launch_workflow")).all()
        return {row.payload["workflow_id"]: row.sent_at for row in rows}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def relay_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == RELAY_THREAD]


def relayed_batches(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The relay's "launches relayed" lines (one per batch)."""
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "launches relayed"
    ]


def test_a_launch_is_answered_handed_over_and_its_row_marked_sent(
    relayed: Settings, sessions: sessionmaker[Session], actors_url: str
) -> None:
    with TestClient(create_app(relayed)) as client:
        response = client.post(f"{PREFIX}/workflows", json=BODY)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        assert set(data) == CREATED_VIEW_FIELDS, "the created view (api.md §8.3), unchanged"
        wait_for(lambda: outbox(sessions).get(data["id"]) is not None, "the row marked sent")
    assert handed_over(actors_url) == [data["id"]]


def test_concurrent_launches_are_relayed_in_batches_and_none_is_lost(
    relayed: Settings, sessions: sessionmaker[Session], actors_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=launch_relay.__name__)
    app = create_app(relayed)
    launches = 48

    async def launch_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://stepflow") as client:
            responses = await asyncio.gather(
                *(client.post(f"{PREFIX}/workflows", json=BODY) for _ in range(launches))
            )
            ids = {response.json()["data"]["id"] for response in responses}
            await asyncio.to_thread(
                wait_for, lambda: all(outbox(sessions).get(i) is not None for i in ids), "every row marked sent"
            )
            return responses

    responses = asyncio.run(launch_all())
    assert [response.status_code for response in responses] == [201] * launches
    ids = {response.json()["data"]["id"] for response in responses}
    assert len(ids) == launches
    assert set(handed_over(actors_url)) == ids, "every launch handed over (at least once), none lost"
    batches = relayed_batches(caplog)
    assert sum(batch["count"] for batch in batches) == launches
    assert sum(batch["confirmed"] for batch in batches) == launches
    assert len(batches) < launches, "launches that came together were published together"


def test_with_the_actors_broker_unreachable_launches_are_accepted_and_left_to_the_clock(
    relayed: Settings, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = dataclasses.replace(relayed, actors_amqp_url=UNREACHABLE)
    with TestClient(create_app(unreachable)) as client:
        started = time.monotonic()
        responses = [client.post(f"{PREFIX}/workflows", json=BODY) for _ in range(3)]
        answered = time.monotonic() - started
        assert [response.status_code for response in responses] == [201] * 3
        wait_for(
            lambda: sum(
                record.msg["count"]
                for record in caplog.records
                if isinstance(record.msg, dict)
                and record.msg.get("event") == "launch messages not confirmed, left to the clock"
            )
            == 3,
            "the relay to try and give up",
        )
    ids = [response.json()["data"]["id"] for response in responses]
    assert outbox(sessions) == dict.fromkeys(ids), "not marked sent: the clock's to send"
    assert answered < 10, "the requests did not wait for the broker"
    sent: list[int] = []
    with sessions() as session, session.begin():
        assert relay_outbox(session, {"launch_workflow": lambda row: sent.append(row.payload["workflow_id"])}, 0) == 3
    assert sorted(sent) == sorted(ids)
    assert relay_threads() == []


def test_the_app_stops_its_relay_after_relaying_what_waits(
    relayed: Settings, sessions: sessionmaker[Session], actors_url: str
) -> None:
    assert relay_threads() == []
    with TestClient(create_app(relayed)) as client:
        assert len(relay_threads()) == 1, "the relay runs while the app does"
        last = client.post(f"{PREFIX}/workflows", json=BODY).json()["data"]["id"]
    assert relay_threads() == [], "stopped with the app"
    assert outbox(sessions)[last] is not None, "a launch queued just before shutdown was relayed"
    assert last in handed_over(actors_url)


class ObservedPublisher(ConfirmingPublisher):
    """A real publisher that also notes each batch's size and which threads closed it."""

    def __init__(self, url: str) -> None:
        super().__init__(url, declare=declare_actor_queues)
        self.batches: list[int] = []
        self.closed_by: list[str] = []

    def publish_many(self, messages: Sequence[Outgoing]) -> list[bool]:
        self.batches.append(len(messages))
        return super().publish_many(messages)

    def close(self) -> None:
        self.closed_by.append(threading.current_thread().name)
        super().close()


def stored_launches(sessions: sessionmaker[Session], count: int) -> list[Launch]:
    """Workflows with their launch outbox rows, committed."""
    with sessions() as session, session.begin():
        rows = []
        for _ in range(count):
            workflow = stored_workflow(session)
            row = Outbox(actor="launch_workflow", payload={"workflow_id": workflow.id})
            session.add(row)
            rows.append(row)
        session.flush()
        return [Launch(row.payload["workflow_id"], row.id) for row in rows]


def test_a_lone_launch_goes_at_once_and_the_next_ones_together_after_the_pace(
    relayed: Settings, sessions: sessionmaker[Session], actors_url: str
) -> None:
    pace = 5.0
    first, *rest = stored_launches(sessions, 21)
    publisher = ObservedPublisher(actors_url)
    relay = LaunchRelay(sessions.kw["bind"], publisher, pace=pace)
    relay.start()
    started = time.monotonic()
    relay.submit(first)
    wait_for(lambda: outbox(sessions)[first.workflow_id] is not None, "the lone launch", timeout=pace - 1)
    assert time.monotonic() - started < pace, "relayed without waiting for the pace"
    for launch in rest:
        relay.submit(launch)
    wait_for(lambda: all(outbox(sessions).values()), "the next batch", timeout=pace + 10)
    relay.stop()
    assert publisher.batches == [1, 20]
    assert sorted(handed_over(actors_url)) == sorted(launch.workflow_id for launch in [first, *rest])
    assert RELAY_THREAD in publisher.closed_by, "the thread closed its own broker connection"
    assert relay_threads() == []


def test_the_relay_skips_a_row_another_transaction_holds_instead_of_waiting(
    relayed: Settings, sessions: sessionmaker[Session], actors_url: str
) -> None:
    held, free = stored_launches(sessions, 2)
    publisher = ObservedPublisher(actors_url)
    relay = LaunchRelay(sessions.kw["bind"], publisher)
    with sessions() as consumer, consumer.begin():  # as the actor deleting its row, or the clock re-sending it
        consumer.execute(select(Outbox).where(Outbox.id == held.outbox_id).with_for_update())
        started = time.monotonic()
        assert relay.relay([held, free]) == 2, "both handed over"
        assert time.monotonic() - started < 5, "did not wait for the held row"
    publisher.close()
    sent = outbox(sessions)
    assert sent[held.workflow_id] is None, "left to whoever holds it"
    assert sent[free.workflow_id] is not None
