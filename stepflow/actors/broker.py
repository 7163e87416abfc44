"""The Dramatiq broker every StepFlow process shares (ours.md A1).

Actor queues live on the MCAI broker's vhost under ``stepflow.*`` names (or on
``STEPFLOW_ACTORS_AMQP_URL``). Publishing waits for the broker's confirm, so a message
StepFlow hands to an actor is never lost silently. Retries are few: a message that keeps
failing ends in Dramatiq's dead-letter queue (``<queue>.XQ``) with its error logged, instead
of retrying for days.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from stepflow.metrics.messages import actor_middleware
from stepflow.settings import Settings

MAX_RETRIES = 3
TIME_LIMIT_MS = 60_000


def build_broker(settings: Settings) -> RabbitmqBroker:
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=MAX_RETRIES, min_backoff=500, max_backoff=10_000),
        *actor_middleware(settings),
    ]
    return RabbitmqBroker(url=settings.actors_amqp_url, confirm_delivery=True, middleware=middleware)


def install_broker(settings: Settings) -> RabbitmqBroker:
    """Create the broker and make it Dramatiq's global one (actors bind to it when defined)."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
