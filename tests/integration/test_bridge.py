"""The bridge on a real broker: validation, hand-over in Dramatiq format with batched acks,
batches for a decider, dead letters, expected noise, retries."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from stepflow.wire.bridge import Bridge
from stepflow.wire.dead_letters import declare_dead_letters
from stepflow.wire.messages import JobStopped
from stepflow.wire.publisher import ConfirmingPublisher
from stepflow.wire.topology import DEAD_LETTERS, JOB_RESPONSE, JOB_RESPONSE_DELAYED, declare_bridge_topology
from tests.integration.broker import delete_actor_queues, drain

CONSUMED = ["job_completed", "job_error", "job_progression", "job_stopped", "job_queue_not_found"]


class Actors:
    """One Dramatiq actor per consumed queue, all on a private queue nobody processes."""

    def __init__(self, amqp_url: str) -> None:
        self.broker = RabbitmqBroker(url=amqp_url)
        self.queue = f"test.bridge.{uuid.uuid4().hex[:8]}"
        self.actors = {
            queue: dramatiq.actor(lambda payload: None, broker=self.broker, actor_name=queue, queue_name=self.queue)
            for queue in CONSUMED
        }
        self.url = amqp_url

    def received(self, expect: int, timeout: float = 10.0) -> list[dramatiq.Message[Any]]:
        return [dramatiq.Message.decode(body) for _, body in drain(self.url, self.queue, timeout, expect)]

    def close(self) -> None:
        delete_actor_queues(self.url, self.queue)
        self.broker.close()


@pytest.fixture
def actors(amqp_url: str) -> Iterator[Actors]:
    running = Actors(amqp_url)
    yield running
    running.close()


def wait_for_consumer(amqp_url: str) -> None:
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


@pytest.fixture
def start_bridge(amqp_url: str, actors: Actors) -> Iterator[Callable[..., Bridge]]:
    started: list[tuple[Bridge, threading.Thread]] = []
    # Start from empty queues: earlier tests may have left worker traffic (or unroutable orders) behind.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_bridge_topology(channel)
    for queue in CONSUMED:
        channel.queue_purge(queue)
    connection.close()

    def start(handlers: dict[str, Any] | None = None, **options: Any) -> Bridge:
        running = Bridge(
            amqp_url, handlers or actors.actors, ConfirmingPublisher(amqp_url, declare=declare_dead_letters), **options
        )
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        started.append((running, thread))
        wait_for_consumer(amqp_url)
        return running

    yield start
    for running, thread in started:
        running.stop()
        thread.join(timeout=5)


@pytest.fixture
def bridge(start_bridge: Callable[..., Bridge]) -> Bridge:
    return start_bridge()


def publish(amqp_url: str, routing_key: str, *bodies: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for body in bodies:
        channel.basic_publish(JOB_RESPONSE, routing_key, body, pika.BasicProperties(delivery_mode=2))
    connection.close()


def ready_messages(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    count = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return count


def test_valid_messages_are_handed_over_in_dramatiq_format(bridge: Bridge, actors: Actors, amqp_url: str) -> None:
    body = {
        "job_id": 12,
        "status": "completed",
        "destination_paths": ["/out/a"],
        "parameters": [],
        "cpu_time": 0.1,
        "datetime": "2026-11-26T18:48:53.575131497Z",
    }
    publish(amqp_url, "job_completed", json.dumps(body).encode())
    (message,) = actors.received(expect=1)
    assert message.actor_name == "job_completed" and message.queue_name == actors.queue
    assert message.kwargs == {} and message.options == {}
    (payload,) = message.args
    assert payload["job_id"] == 12 and payload["destination_paths"] == ["/out/a"]
    assert "cpu_time" not in payload, "only the fields StepFlow acts on are handed over"


def test_the_actor_queues_are_declared_as_dramatiq_declares_them(bridge: Bridge, actors: Actors) -> None:
    # Dramatiq's own declarations (same names, arguments) succeed on the queues the bridge made.
    actors.broker.declare_queue(actors.queue, ensure=True)


def test_many_messages_are_handed_over_in_batches_then_acked(
    start_bridge: Callable[..., Bridge], actors: Actors, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    settle = Bridge.settle

    def recording(self: Bridge, channel: Any, batch: list[Any]) -> None:
        batches.append(len(batch))
        settle(self, channel, batch)

    monkeypatch.setattr(Bridge, "settle", recording)
    running = start_bridge()
    bodies = [json.dumps({"job_id": job_id, "status": "stopped"}).encode() for job_id in range(1, 401)]
    publish(amqp_url, "job_stopped", *bodies)
    received = actors.received(expect=400)
    assert sorted(message.args[0]["job_id"] for message in received) == list(range(1, 401))
    assert sum(batches) == 400 and max(batches) > 1, batches
    running.stop()  # its connection closes within a second, which would requeue anything unacked
    time.sleep(1.5)
    assert ready_messages(amqp_url, "job_stopped") == 0


class Recording:
    """A decider that records the batches it is given; it settles every answer but those of
    the job ids in ``refuse``, and raises for a batch naming a job id in ``explode``."""

    name = "recording"

    def __init__(self, refuse: Sequence[int] = ()) -> None:
        self.batches: list[list[tuple[str, Any]]] = []
        self.refuse, self.explode = set(refuse), set[int]()

    def __call__(self, batch: Sequence[tuple[str, Any]]) -> list[bool]:
        self.batches.append(list(batch))
        if any(message.job_id in self.explode for _, message in batch):
            raise RuntimeError("boom")
        return [message.job_id not in self.refuse for _, message in batch]


def test_answers_for_a_decider_that_arrive_together_are_decided_together(
    start_bridge: Callable[..., Bridge], amqp_url: str
) -> None:
    """Deliveries that arrive together for a decider are decided as few batches of decoded
    messages, in arrival order, then acked; a lone one later is decided at once, alone."""
    decider = Recording()
    bodies = [json.dumps({"job_id": job_id, "status": "stopped"}).encode() for job_id in range(1, 251)]
    publish(amqp_url, "job_stopped", *bodies)  # waiting before the bridge starts: read together
    start_bridge({queue: decider for queue in CONSUMED})
    deadline = time.monotonic() + 10
    while sum(map(len, decider.batches)) < 250 and time.monotonic() < deadline:
        time.sleep(0.05)
    pairs = [pair for batch in decider.batches for pair in batch]
    assert [message.job_id for _, message in pairs] == list(range(1, 251))
    assert all(isinstance(message, JobStopped) for _, message in pairs)
    assert len(decider.batches) < 250 / 2
    publish(amqp_url, "job_completed", json.dumps({"job_id": 7, "status": "completed"}).encode())
    deadline = time.monotonic() + 10
    while sum(map(len, decider.batches)) < 251 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(queue, message.job_id) for queue, message in decider.batches[-1]] == [("job_completed", 7)]
    time.sleep(1.5)
    assert ready_messages(amqp_url, "job_stopped") == 0 and ready_messages(amqp_url, JOB_RESPONSE_DELAYED) == 0


def test_answers_a_decider_did_not_settle_are_rejected_into_the_retry_loop(
    start_bridge: Callable[..., Bridge], amqp_url: str
) -> None:
    """An answer the decider reports unsettled, and every answer of a batch whose decider
    raised, go to the 5 s retry loop; the settled ones of the same read are acked."""
    observed: list[tuple[str, str, str, float]] = []
    decider = Recording(refuse=[2])
    start_bridge({queue: decider for queue in CONSUMED}, observe=lambda *seen: observed.append(seen))
    publish(amqp_url, "job_stopped", *(json.dumps({"job_id": n, "status": "stopped"}).encode() for n in (1, 2, 3)))
    (delayed,) = drain(amqp_url, JOB_RESPONSE_DELAYED, expect=1, timeout=4)
    assert json.loads(delayed[1])["job_id"] == 2
    decider.explode = {9}
    publish(amqp_url, "job_stopped", json.dumps({"job_id": 9, "status": "stopped"}).encode())
    (delayed,) = drain(amqp_url, JOB_RESPONSE_DELAYED, expect=1, timeout=4)
    assert json.loads(delayed[1])["job_id"] == 9
    assert sorted(seen[2] for seen in observed) == ["decided", "decided", "rejected", "rejected"]
    assert {seen[1] for seen in observed} == {"recording"}
    assert ready_messages(amqp_url, "job_stopped") == 0


def test_invalid_messages_are_dead_lettered_with_the_reason(bridge: Bridge, actors: Actors, amqp_url: str) -> None:
    publish(amqp_url, "job_progression", b"{not json")
    publish(amqp_url, "job_completed", json.dumps({"job_id": "twelve"}).encode())
    dead = drain(amqp_url, DEAD_LETTERS, expect=2, timeout=10)
    assert len(dead) == 2
    reasons = {
        properties.headers["x-stepflow-source-queue"]: properties.headers["x-stepflow-reason"] for properties, _ in dead
    }
    assert set(reasons) == {"job_progression", "job_completed"}
    assert reasons["job_completed"].startswith("invalid message")
    assert actors.received(expect=1, timeout=0.5) == []


def test_job_error_without_job_id_is_acked_as_noise(bridge: Bridge, actors: Actors, amqp_url: str) -> None:
    publish(amqp_url, "job_error", json.dumps({"message": "missing field `type`", "status": "error"}).encode())
    publish(amqp_url, "job_error", json.dumps({"job_id": 3, "status": "error", "parameters": []}).encode())
    received = actors.received(expect=1)
    assert [message.args[0]["job_id"] for message in received] == [3]
    assert drain(amqp_url, DEAD_LETTERS, expect=1, timeout=0.5) == []


def test_a_failed_hand_over_is_rejected_into_the_retry_loop(start_bridge: Callable[..., Bridge], amqp_url: str) -> None:
    observed: list[tuple[str, str, str, float]] = []
    # the actors' broker is unreachable
    start_bridge(actors_url="amqp://guest:guest@127.0.0.1:1/%2F", observe=lambda *seen: observed.append(seen))
    publish(amqp_url, "job_stopped", json.dumps({"job_id": 5, "status": "stopped"}).encode())
    # Rejected messages wait 5 s in job_response_delayed; take it out before it comes back.
    (delayed,) = drain(amqp_url, JOB_RESPONSE_DELAYED, expect=1, timeout=4)
    assert json.loads(delayed[1]) == {"job_id": 5, "status": "stopped"}
    assert [seen[:3] for seen in observed] == [("job_stopped", "job_stopped", "rejected")]


def test_every_settled_delivery_is_observed_with_its_outcome(
    start_bridge: Callable[..., Bridge], actors: Actors, amqp_url: str
) -> None:
    observed: list[tuple[str, str, str, float]] = []
    start_bridge(observe=lambda *seen: observed.append(seen))
    publish(amqp_url, "job_completed", json.dumps({"job_id": 1, "status": "completed"}).encode())
    publish(amqp_url, "job_progression", b"{not json")
    publish(amqp_url, "job_error", json.dumps({"message": "missing field `type`", "status": "error"}).encode())
    actors.received(expect=1)
    drain(amqp_url, DEAD_LETTERS, expect=1, timeout=10)
    deadline = time.monotonic() + 5
    while len(observed) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(seen[:3] for seen in observed) == [
        ("job_completed", "job_completed", "handed_over"),
        ("job_error", "job_error", "noise"),
        ("job_progression", "job_progression", "dead_lettered"),
    ]
    assert all(0 <= seconds < 5 for *_, seconds in observed)
