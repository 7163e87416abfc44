"""Worker events end to end through a real bridge and the real actors (mcai-protocol.md §2, §6):
SDK 2.x shapes on the exchanges workers publish them to, rows through the API, dead letters,
expected noise acked outside the retry loop, and the catch-all queues."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, WorkerDefinition, WorkerStatus
from stepflow.settings import Settings
from stepflow.wire.bridge import Bridge
from stepflow.wire.dead_letters import declare_dead_letters
from stepflow.wire.direct_messaging import publish_direct_message, status_request, stop_process
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import (
    DEAD_LETTERS,
    DIRECT_MESSAGING_NOT_FOUND,
    JOB_RESPONSE,
    JOB_RESPONSE_DELAYED,
    JOB_RESPONSE_NOT_FOUND,
    JOB_RESPONSE_QUEUES,
    WORKER_RESPONSE,
    WORKER_RESPONSE_NOT_FOUND,
    WORKER_RESPONSE_QUEUES,
    declare_bridge_topology,
)
from tests.integration.broker import delete_actor_queues, drain
from tests.support import stored_workflow

PREFIX = "/api/step_flow"
INSTANCE_ID = "64955099-d784-456d-8c63-18b2348a3d48"

# Captured from mcai_worker_sdk 2.2.1 (mcai-protocol.md §3, §6), keys as the SDK sorts them.
DESCRIPTION: dict[str, Any] = {
    "description": "Tiny MCAI echo worker used to capture the StepFlow <-> MCAI AMQP protocol",
    "direct_messaging_queue_name": f"direct_messaging_{INSTANCE_ID}",
    "instance_id": INSTANCE_ID,
    "label": "echo_worker",
    "license": "MIT",
    "name": "echo_worker",
    "parameters": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "additionalProperties": False,
        "properties": {
            "count": {"type": "integer"},
            "destination_path": {"type": "string"},
            "message": {"type": "string"},
            "mode": {"type": "string"},
            "requirements": {"type": "object"},
            "sleep_ms": {"type": "integer"},
            "source_path": {"type": "string"},
            "source_paths": {"items": {"type": "string"}, "type": "array"},
            "tags": {"items": {"type": "string"}, "type": "array"},
        },
        "required": ["message"],
        "type": "object",
    },
    "queue_name": "job_echo",
    "sdk_version": "2.2.1",
    "version": "0.1.0",
}
SYSTEM_INFO: dict[str, Any] = {
    "cores": [{"brand": "AMD EPYC", "frequency": 2445, "name": "cpu0", "vendor_id": "AuthenticAMD"}],
    "disks": [{"disk_type": "HDD", "format": "ext4", "mountpoint": "/", "size": 270553174016}],
    "docker_container_id": INSTANCE_ID,
    "gpus": [],
    "memory": {"total_memory": 25276063, "total_swap": 0, "used_memory": 389634, "used_swap": 0},
    "os_version": "Linux 12 Debian GNU/Linux",
}
WORKER = {
    "activity": "Idle",
    "description": DESCRIPTION["description"],
    "direct_messaging_queue_name": f"direct_messaging_{INSTANCE_ID}",
    "instance_id": INSTANCE_ID,
    "label": "echo_worker",
    "license": "MIT",
    "name": "echo_worker",
    "queue_name": "job_echo",
    "sdk_version": "2.2.1",
    "system_info": SYSTEM_INFO,
    "version": "0.1.0",
}
IDLE_STATUS = {"job": None, "type": "status", "worker": WORKER}
BUSY_JOB = {
    "cpu_time": 0.114749309,
    "datetime": "2026-11-26T19:05:01.123456789Z",
    "destination_paths": [],
    "execution_duration": 1.031267171,
    "gpu_time": 0.0,
    "job_id": 1011,
    "parameters": [],
    "status": "processing",
}
BUSY_STATUS = {"job": BUSY_JOB, "type": "status", "worker": {**WORKER, "activity": "Busy"}}


def job_status(job_id: int, status: str) -> dict[str, Any]:
    """``worker_initialized`` / ``worker_started`` / ``worker_updated`` (§6)."""
    return {
        "cpu_time": 0.0,
        "datetime": "2026-11-26T19:05:01.123456789Z",
        "destination_paths": [],
        "execution_duration": 0.0,
        "gpu_time": 0.0,
        "job_id": job_id,
        "parameters": [],
        "status": status,
    }


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, launcher=lambda _: None)) as test_client:
        yield test_client


class Handled:
    """Runs the real actors' functions on what the bridge hands over, and counts the messages
    (so a test waits for its messages to be processed).

    The bridge publishes Dramatiq messages for stand-in actors of a private broker (named
    after the consumed queue, on a private queue); a thread consumes that queue and calls the
    function of the real actor of that name, in order.
    """

    def __init__(self, amqp_url: str, real: dict[str, Any]) -> None:
        self.url = amqp_url
        self.broker = RabbitmqBroker(url=amqp_url)
        self.queue = f"test.workers.{uuid.uuid4().hex[:8]}"
        self.functions = {queue: actor.fn for queue, actor in real.items()}
        self.stand_ins = {
            queue: dramatiq.actor(actor.fn, broker=self.broker, actor_name=queue, queue_name=self.queue)
            for queue, actor in real.items()
        }
        self.count = 0
        self.errors: list[BaseException] = []
        self.condition = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._consume, daemon=True)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        self.broker.declare_queue(self.queue, ensure=True)

        def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            message = dramatiq.Message.decode(body)
            try:
                self.functions[message.actor_name](*message.args)
            except Exception as error:
                self.errors.append(error)
            channel.basic_ack(method.delivery_tag)
            with self.condition:
                self.count += 1
                self.condition.notify_all()

        channel.basic_consume(self.queue, on_message)
        while not self.stopping:
            connection.process_data_events(time_limit=0.1)
        connection.close()

    def wait(self, count: int, timeout: float = 10.0) -> None:
        with self.condition:
            assert self.condition.wait_for(lambda: self.count >= count, timeout), f"{self.count} of {count} handled"
        assert self.errors == []

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)
        delete_actor_queues(self.url, self.queue)
        self.broker.close()


@pytest.fixture
def handled(amqp_url: str, actors: Any) -> Iterator[Handled]:
    running = Handled(amqp_url, actors.by_bridged_queue())
    yield running
    running.close()
    assert running.errors == []


@pytest.fixture
def bridge(amqp_url: str, sessions: sessionmaker[Session], handled: Handled) -> Iterator[Bridge]:
    """A bridge consuming every queue of ``by_bridged_queue()``, the real actors behind it."""
    # Start from empty queues: earlier tests may have left worker traffic behind.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_bridge_topology(channel)
    for queue in [*handled.stand_ins, DEAD_LETTERS, JOB_RESPONSE_DELAYED]:
        channel.queue_purge(queue)
    connection.close()
    running = Bridge(amqp_url, handled.stand_ins, ConfirmingPublisher(amqp_url, declare=declare_dead_letters))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    for _ in range(100):
        if connection.channel().queue_declare(WORKER_RESPONSE_NOT_FOUND, passive=True).method.consumer_count:
            break
        connection.sleep(0.05)
    connection.close()
    handled.thread.start()
    yield running
    running.stop()
    thread.join(timeout=5)


def publish(amqp_url: str, exchange: str, routing_key: str, body: dict[str, Any] | bytes) -> None:
    """As the SDK publishes: compact JSON, sorted keys, persistent, no content type."""
    data = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(exchange, routing_key, data, pika.BasicProperties(delivery_mode=2))
    connection.close()


def message_count(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    count = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return count


def insert_job(sessions: sessionmaker[Session], *, live: bool) -> int:
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        job = Job(workflow_id=workflow.id, step_id=0, input_index=0, name="job_echo", is_live=live)
        session.add(job)
        session.flush()
        return job.id


def test_topology_has_the_originals_arguments_and_is_idempotent(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_bridge_topology(channel)
    declare_bridge_topology(channel)
    # Re-declaring with the original's exact arguments passes (inequivalent ones would close the channel).
    for queue in (*JOB_RESPONSE_QUEUES, *WORKER_RESPONSE_QUEUES):
        channel.queue_declare(
            queue,
            durable=True,
            arguments={"x-dead-letter-exchange": JOB_RESPONSE_DELAYED, "x-dead-letter-routing-key": queue},
        )
    channel.exchange_declare(
        WORKER_RESPONSE, "topic", durable=True, arguments={"alternate-exchange": WORKER_RESPONSE_NOT_FOUND}
    )
    channel.exchange_declare(
        JOB_RESPONSE, "topic", durable=True, arguments={"alternate-exchange": "job_response_not_found"}
    )
    # What the SDK declares on its side is equivalent.
    channel.queue_declare(WORKER_RESPONSE_NOT_FOUND, durable=True, arguments={"x-queue-type": "classic"})
    for catch_all in (JOB_RESPONSE_NOT_FOUND, WORKER_RESPONSE_NOT_FOUND):
        channel.exchange_declare(catch_all, "fanout", durable=True, passive=True)
    connection.close()


def test_worker_discovery_on_either_exchange_stores_the_definition_once(
    bridge: Bridge, handled: Handled, client: TestClient, amqp_url: str
) -> None:
    publish(amqp_url, JOB_RESPONSE, "worker_discovery", DESCRIPTION)  # where SDK 2.x publishes it
    handled.wait(1)
    publish(amqp_url, WORKER_RESPONSE, "worker_discovery", {**DESCRIPTION, "label": "Echo"})  # where SF 1.0.0 bound it
    handled.wait(2)
    publish(amqp_url, JOB_RESPONSE, "worker_discovery", {**DESCRIPTION, "version": "0.2.0"})
    handled.wait(3)
    body = client.get(f"{PREFIX}/worker_definitions").json()
    assert body["total"] == 2
    by_version = {entry["version"]: entry for entry in body["data"]}
    first = by_version["0.1.0"]
    assert first["queue_name"] == "job_echo"
    assert first["label"] == "Echo", "the same queue and version is refreshed"
    assert first["short_description"] == ""
    assert first["parameters"] == DESCRIPTION["parameters"]
    assert client.get(f"{PREFIX}/worker_definitions/{first['id']}").json()["data"]["version"] == "0.1.0"
    assert message_count(amqp_url, DEAD_LETTERS) == 0


def test_worker_status_then_terminated(
    bridge: Bridge, handled: Handled, client: TestClient, amqp_url: str, sessions: sessionmaker[Session]
) -> None:
    publish(amqp_url, WORKER_RESPONSE, "worker_status", BUSY_STATUS)
    handled.wait(1)
    worker = client.get(f"{PREFIX}/workers/{INSTANCE_ID}").json()
    assert worker["activity"] == "Busy"
    assert worker["current_job"] == {"execution_duration": 1.031267171, "job_id": 1011, "status": "processing"}
    assert worker["system_info"] == SYSTEM_INFO
    assert worker["queue_name"] == "job_echo" and worker["sdk_version"] == "2.2.1"

    publish(amqp_url, WORKER_RESPONSE, "worker_status", IDLE_STATUS)
    publish(amqp_url, WORKER_RESPONSE, "worker_status", IDLE_STATUS)  # a redelivery changes nothing
    handled.wait(3)
    listed = client.get(f"{PREFIX}/workers").json()
    assert listed["total"] == 1
    assert listed["data"][0]["activity"] == "Idle" and listed["data"][0]["current_job"] is None

    publish(amqp_url, WORKER_RESPONSE, "worker_terminated", DESCRIPTION)
    publish(amqp_url, WORKER_RESPONSE, "worker_terminated", DESCRIPTION)
    handled.wait(5)
    worker = client.get(f"{PREFIX}/workers/{INSTANCE_ID}").json()
    assert worker["activity"] == "Terminated" and worker["current_job"] is None
    assert worker["system_info"] == SYSTEM_INFO, "the rest of the last status is kept"

    # A worker never seen before gets a row from its description.
    other = {**DESCRIPTION, "instance_id": "other-instance"}
    publish(amqp_url, WORKER_RESPONSE, "worker_terminated", other)
    handled.wait(6)
    with sessions() as session:
        row = session.get(WorkerStatus, "other-instance")
        assert row is not None and row.activity == "Terminated" and row.queue_name == "job_echo"
    assert message_count(amqp_url, DEAD_LETTERS) == 0


def test_expected_noise_is_acked_outside_the_retry_loop(
    bridge: Bridge, handled: Handled, amqp_url: str, sessions: sessionmaker[Session]
) -> None:
    from stepflow.actors import worker_messages

    before = worker_messages.NOISE.copy()
    ordinary = insert_job(sessions, live=False)
    publish(amqp_url, WORKER_RESPONSE, "worker_created", DESCRIPTION)  # every ordinary worker sends it
    publish(amqp_url, WORKER_RESPONSE, "worker_started", job_status(987654, "processing"))  # unknown job
    publish(amqp_url, WORKER_RESPONSE, "worker_initialized", job_status(ordinary, "ready_to_start"))
    publish(amqp_url, WORKER_RESPONSE, "worker_updated", job_status(2**40, "processing"))
    handled.wait(4)
    counted = worker_messages.NOISE - before
    assert counted == {"worker_created": 1, "worker_started": 1, "worker_initialized": 1, "worker_updated": 1}
    time.sleep(0.3)
    for queue in ("worker_created", "worker_started", "worker_initialized", "worker_updated"):
        assert message_count(amqp_url, queue) == 0
    assert message_count(amqp_url, JOB_RESPONSE_DELAYED) == 0, "nothing was rejected into the 5 s loop"
    assert message_count(amqp_url, DEAD_LETTERS) == 0
    with sessions() as session:
        assert session.scalars(select(WorkerDefinition)).all() == [], "worker_created registers nothing"


def test_malformed_worker_messages_are_dead_lettered_with_the_reason(
    bridge: Bridge, handled: Handled, amqp_url: str, sessions: sessionmaker[Session]
) -> None:
    publish(amqp_url, JOB_RESPONSE, "worker_discovery", b"{not json")
    publish(amqp_url, WORKER_RESPONSE, "worker_discovery", {**DESCRIPTION, "parameters": None, "queue_name": 3})
    publish(amqp_url, WORKER_RESPONSE, "worker_status", {"type": "status", "job": None})  # no worker
    publish(amqp_url, WORKER_RESPONSE, "worker_started", {"job_id": "one", "status": "processing"})
    publish(amqp_url, WORKER_RESPONSE, "worker_terminated", {"queue_name": "job_echo"})  # not a description
    # Valid types the upserts cannot store: the actor dead-letters them.
    publish(amqp_url, JOB_RESPONSE, "worker_discovery", {**DESCRIPTION, "label": "  "})
    publish(amqp_url, WORKER_RESPONSE, "worker_status", {"type": "status", "job": None, "worker": {"activity": "Idle"}})
    publish(amqp_url, WORKER_RESPONSE, "worker_terminated", {**DESCRIPTION, "instance_id": None})
    dead = drain(amqp_url, DEAD_LETTERS, expect=8, timeout=10)
    reasons = sorted(
        (properties.headers["x-stepflow-source-queue"], properties.headers["x-stepflow-reason"])
        for properties, _ in dead
    )
    assert [queue for queue, _ in reasons] == [
        "worker_discovery",
        "worker_discovery",
        "worker_discovery",
        "worker_started",
        "worker_status",
        "worker_status",
        "worker_terminated",
        "worker_terminated",
    ]
    assert all(reason.startswith("invalid") for _, reason in reasons)
    assert ("worker_discovery", 'invalid worker message: {"label":["can\'t be blank"]}') in reasons
    assert ("worker_status", 'invalid worker message: {"instance_id":["can\'t be blank"]}') in reasons
    assert message_count(amqp_url, JOB_RESPONSE_DELAYED) == 0
    with sessions() as session:
        assert session.scalars(select(WorkerDefinition)).all() == []
        assert session.scalars(select(WorkerStatus)).all() == []


def test_unroutable_messages_are_kept_consumed_and_logged(
    bridge: Bridge, handled: Handled, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from stepflow.actors import worker_messages

    before = worker_messages.UNROUTABLE.copy()
    gone = stop_process(7, "job_copy", [], instance_id="killed-worker")
    with caplog.at_level(logging.INFO):
        publish(amqp_url, WORKER_RESPONSE, "worker_black_list", {"job_ids": [1, 2]})  # bound nowhere (§2.4)
        publish(amqp_url, JOB_RESPONSE, "job_unknown", {"job_id": 1})
        publish_direct_message(ConfirmingPublisher(amqp_url), gone)  # no worker binds that instance
        publish_direct_message(ConfirmingPublisher(amqp_url), status_request())  # and none runs at all
        handled.wait(4)
    assert worker_messages.UNROUTABLE - before == {
        WORKER_RESPONSE_NOT_FOUND: 1,
        JOB_RESPONSE_NOT_FOUND: 1,
        DIRECT_MESSAGING_NOT_FOUND: 2,
    }
    logged = [record.msg for record in caplog.records if isinstance(record.msg, dict)]
    unroutable = {entry["queue"]: entry for entry in logged if entry.get("event") == "unroutable message acked"}
    assert unroutable[WORKER_RESPONSE_NOT_FOUND]["routing_key"] == "worker_black_list"
    assert unroutable[JOB_RESPONSE_NOT_FOUND]["routing_key"] == "job_unknown"
    (stop,) = [entry for entry in logged if entry.get("event") == "direct message reached no worker"]
    assert stop["headers"] == {"instance_id": "killed-worker"} and '"stop_process"' in stop["body"]
    assert [entry for entry in logged if entry.get("event") == "status broadcast reached no worker"]
    time.sleep(0.3)
    for queue in (WORKER_RESPONSE_NOT_FOUND, JOB_RESPONSE_NOT_FOUND, DIRECT_MESSAGING_NOT_FOUND, DEAD_LETTERS):
        assert message_count(amqp_url, queue) == 0, queue
