"""The bridge on a real broker: validation, hand-over, dead letters, expected noise, retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from stepflow.wire.bridge import Bridge
from stepflow.wire.dead_letters import declare_dead_letters
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import DEAD_LETTERS, JOB_RESPONSE, JOB_RESPONSE_DELAYED
from tests.integration.broker import drain


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.fail = False
        self.event = threading.Event()

    def handler(self, queue: str) -> Any:
        def handle(payload: dict[str, Any]) -> None:
            if self.fail:
                raise ConnectionError("actor broker unreachable")
            self.received.append((queue, payload))
            self.event.set()

        return handle


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def bridge(amqp_url: str, recorder: Recorder) -> Iterator[Bridge]:
    queues = ["job_completed", "job_error", "job_progression", "job_stopped", "job_queue_not_found"]
    running = Bridge(
        amqp_url,
        {queue: recorder.handler(queue) for queue in queues},
        ConfirmingPublisher(amqp_url, declare=declare_dead_letters),
    )
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    # Wait until the topology exists and the consumers are on.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    for _ in range(100):
        channel = connection.channel()
        try:
            if channel.queue_declare("job_completed", passive=True).method.consumer_count:
                break
        except pika.exceptions.ChannelClosedByBroker:
            pass
        connection.sleep(0.05)
    connection.close()
    yield running
    running.stop()
    thread.join(timeout=5)


def publish(amqp_url: str, routing_key: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().basic_publish(JOB_RESPONSE, routing_key, body, pika.BasicProperties(delivery_mode=2))
    connection.close()


def test_valid_messages_are_handed_over_validated(bridge: Bridge, recorder: Recorder, amqp_url: str) -> None:
    body = {
        "job_id": 12,
        "status": "completed",
        "destination_paths": ["/out/a"],
        "parameters": [],
        "cpu_time": 0.1,
        "datetime": "2026-11-26T18:48:53.575131497Z",
    }
    publish(amqp_url, "job_completed", json.dumps(body).encode())
    assert recorder.event.wait(10)
    queue, payload = recorder.received[0]
    assert queue == "job_completed"
    assert payload["job_id"] == 12 and payload["destination_paths"] == ["/out/a"]
    assert "cpu_time" not in payload, "only the fields StepFlow acts on are handed over"


def test_invalid_messages_are_dead_lettered_with_the_reason(bridge: Bridge, recorder: Recorder, amqp_url: str) -> None:
    publish(amqp_url, "job_progression", b"{not json")
    publish(amqp_url, "job_completed", json.dumps({"job_id": "twelve"}).encode())
    dead = drain(amqp_url, DEAD_LETTERS, expect=2, timeout=10)
    assert len(dead) == 2
    reasons = {
        properties.headers["x-stepflow-source-queue"]: properties.headers["x-stepflow-reason"] for properties, _ in dead
    }
    assert set(reasons) == {"job_progression", "job_completed"}
    assert reasons["job_completed"].startswith("invalid message")
    assert recorder.received == []


def test_job_error_without_job_id_is_acked_as_noise(bridge: Bridge, recorder: Recorder, amqp_url: str) -> None:
    publish(amqp_url, "job_error", json.dumps({"message": "missing field `type`", "status": "error"}).encode())
    publish(amqp_url, "job_error", json.dumps({"job_id": 3, "status": "error", "parameters": []}).encode())
    assert recorder.event.wait(10)
    assert [payload["job_id"] for _, payload in recorder.received] == [3]
    assert drain(amqp_url, DEAD_LETTERS, expect=1, timeout=0.5) == []


def test_a_failed_hand_over_is_rejected_into_the_retry_loop(bridge: Bridge, recorder: Recorder, amqp_url: str) -> None:
    recorder.fail = True
    publish(amqp_url, "job_stopped", json.dumps({"job_id": 5, "status": "stopped"}).encode())
    # Rejected messages wait 5 s in job_response_delayed; take it out before it comes back.
    (delayed,) = drain(amqp_url, JOB_RESPONSE_DELAYED, expect=1, timeout=4)
    assert json.loads(delayed[1]) == {"job_id": 5, "status": "stopped"}
    assert recorder.received == []
