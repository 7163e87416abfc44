"""Exchanges and queues of the MCAI protocol (mcai-protocol.md §2, ours.md §3.8).

Each process declares, idempotently, what it publishes to; the bridge declares the queues it
consumes. The arguments are the original's, so StepFlow drops into an existing broker
(inequivalent arguments would fail with PRECONDITION_FAILED). Worker job queues
(``job_<name>``) are never declared here: the SDK owns them.
"""

from __future__ import annotations

from pika.adapters.blocking_connection import BlockingChannel

JOB_SUBMIT = "job_submit"
DIRECT_MESSAGING = "direct_messaging"
JOB_QUEUE_NOT_FOUND = "job_queue_not_found"
JOB_WORKER_MANAGER = "job_worker_manager"
JOB_RESPONSE = "job_response"
JOB_RESPONSE_DELAYED = "job_response_delayed"
JOB_RESPONSE_NOT_FOUND = "job_response_not_found"
WORKER_RESPONSE = "worker_response"
WORKER_RESPONSE_NOT_FOUND = "worker_response_not_found"
DIRECT_MESSAGING_NOT_FOUND = "direct_messaging_not_found"
DEAD_LETTERS = "stepflow.dead_letters"

JOB_COMPLETED = "job_completed"
JOB_ERROR = "job_error"
JOB_PROGRESSION = "job_progression"
JOB_STOPPED = "job_stopped"

JOB_RESPONSE_QUEUES = (JOB_COMPLETED, JOB_ERROR, JOB_PROGRESSION, JOB_STOPPED)
"""Worker answers, bound on ``job_response`` with routing key = queue name."""

WORKER_CREATED = "worker_created"
WORKER_DISCOVERY = "worker_discovery"
WORKER_INITIALIZED = "worker_initialized"
WORKER_STARTED = "worker_started"
WORKER_STATUS = "worker_status"
WORKER_TERMINATED = "worker_terminated"
WORKER_UPDATED = "worker_updated"

WORKER_RESPONSE_QUEUES = (
    WORKER_CREATED,
    WORKER_DISCOVERY,
    WORKER_INITIALIZED,
    WORKER_STARTED,
    WORKER_STATUS,
    WORKER_TERMINATED,
    WORKER_UPDATED,
)
"""Worker events, bound on ``worker_response`` with routing key = queue name;
``worker_discovery`` is also bound on ``job_response``, where SDK 2.x publishes it."""

CATCH_ALL_QUEUES = (JOB_RESPONSE_NOT_FOUND, WORKER_RESPONSE_NOT_FOUND, DIRECT_MESSAGING_NOT_FOUND)
"""What nobody is bound for on ``job_response`` / ``worker_response`` / ``direct_messaging``
(their alternate exchanges, which the original names but never declares, so it dropped that
traffic: answers nobody reads, and orders to workers that are gone)."""

RETRY_DELAY_MS = 5000


def declare_job_submit(channel: BlockingChannel) -> None:
    """``job_submit`` (topic) with its catch-all: orders nobody is bound for land in
    the durable ``job_queue_not_found`` queue."""
    channel.exchange_declare(JOB_QUEUE_NOT_FOUND, exchange_type="fanout", durable=True)
    channel.exchange_declare(
        JOB_SUBMIT,
        exchange_type="topic",
        durable=True,
        arguments={"alternate-exchange": JOB_QUEUE_NOT_FOUND},
    )
    declare_consumer_queue(channel, JOB_QUEUE_NOT_FOUND)
    channel.queue_bind(JOB_QUEUE_NOT_FOUND, JOB_QUEUE_NOT_FOUND, routing_key="")


def declare_direct_messaging(channel: BlockingChannel) -> None:
    """``direct_messaging`` (headers): orders to running workers (mcai-protocol.md §5)."""
    channel.exchange_declare(
        DIRECT_MESSAGING,
        exchange_type="headers",
        durable=True,
        arguments={"alternate-exchange": DIRECT_MESSAGING_NOT_FOUND},
    )


def declare_publishing(channel: BlockingChannel) -> None:
    """What StepFlow publishes to workers (job orders, direct messages) and where their answers
    land: a worker may answer before the bridge ever ran on a new broker, and an answer to an
    exchange with no bound queue would be dropped."""
    declare_bridge_topology(channel)
    declare_direct_messaging(channel)


def declare_consumer_queue(channel: BlockingChannel, queue: str) -> None:
    """A queue StepFlow consumes: a ``reject(requeue=False)`` retries it in 5 s."""
    channel.queue_declare(
        queue,
        durable=True,
        arguments={"x-dead-letter-exchange": JOB_RESPONSE_DELAYED, "x-dead-letter-routing-key": queue},
    )


def declare_catch_all(channel: BlockingChannel, name: str) -> None:
    """A fanout exchange and a durable queue of the same ``name``, bound together: the
    alternate exchange of a topic exchange, so its unroutable messages are kept. The queue has
    the original's (lack of) arguments: the SDK declares ``worker_response_not_found`` too."""
    channel.exchange_declare(name, exchange_type="fanout", durable=True)
    channel.queue_declare(name, durable=True)
    channel.queue_bind(name, name, routing_key="")


def declare_bridge_topology(channel: BlockingChannel) -> None:
    """Everything the bridge consumes, the retry loop and our dead-letter queue."""
    for catch_all in CATCH_ALL_QUEUES:
        declare_catch_all(channel, catch_all)
    channel.exchange_declare(
        JOB_RESPONSE,
        exchange_type="topic",
        durable=True,
        arguments={"alternate-exchange": JOB_RESPONSE_NOT_FOUND},
    )
    channel.exchange_declare(
        WORKER_RESPONSE,
        exchange_type="topic",
        durable=True,
        arguments={"alternate-exchange": WORKER_RESPONSE_NOT_FOUND},
    )
    channel.exchange_declare(JOB_RESPONSE_DELAYED, exchange_type="fanout", durable=True)
    channel.queue_declare(
        JOB_RESPONSE_DELAYED,
        durable=True,
        arguments={"x-message-ttl": RETRY_DELAY_MS, "x-dead-letter-exchange": ""},
    )
    channel.queue_bind(JOB_RESPONSE_DELAYED, JOB_RESPONSE_DELAYED, routing_key="*")
    for queue in JOB_RESPONSE_QUEUES:
        declare_consumer_queue(channel, queue)
        channel.queue_bind(queue, JOB_RESPONSE, routing_key=queue)
    for queue in WORKER_RESPONSE_QUEUES:
        declare_consumer_queue(channel, queue)
        channel.queue_bind(queue, WORKER_RESPONSE, routing_key=queue)
    channel.queue_bind(WORKER_DISCOVERY, JOB_RESPONSE, routing_key=WORKER_DISCOVERY)
    declare_job_submit(channel)
    channel.queue_declare(DEAD_LETTERS, durable=True)
