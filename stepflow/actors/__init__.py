"""StepFlow's Dramatiq actors, declared on a broker by the process that runs them.

Importing this package declares nothing and connects to nothing. :func:`declare` declares every
actor on a broker, each bound to the process's :class:`~stepflow.resources.Resources`;
:func:`setup` is what ``stepflow actors`` runs in each Dramatiq worker process (``dramatiq
stepflow.actors:setup``): logging, the broker, the change listeners, then the actors.

The actors only receive messages and call the orchestration domain
(:mod:`stepflow.orchestration`), which decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import dramatiq
from dramatiq import Broker

from stepflow.actors import job_messages, notifications, worker_messages, workflows
from stepflow.orchestration.decisions import DECISIONS, JobAnswers
from stepflow.resources import Resources
from stepflow.wire.handover import JOBS_QUEUE, ActorAddress, NOTIFICATIONS_QUEUE, WORKERS_QUEUE, WORKFLOWS_QUEUE

Actor = dramatiq.Actor[Any, Any]


@dataclass(frozen=True)
class ActorGroup:
    """Actors that share a queue and options: ``functions`` by actor name."""

    queue_name: str
    functions: Mapping[str, Callable[..., None]]
    options: Mapping[str, Any]


GROUPS = (
    ActorGroup(JOBS_QUEUE, job_messages.ACTORS, {}),
    ActorGroup(WORKERS_QUEUE, worker_messages.ACTORS, {}),
    ActorGroup(WORKFLOWS_QUEUE, workflows.ACTORS, {}),
    ActorGroup(NOTIFICATIONS_QUEUE, notifications.ACTORS, {"time_limit": notifications.TIME_LIMIT_MS, "max_retries": 3}),
)

BRIDGED = (*DECISIONS, *worker_messages.ACTORS)
"""The queues the bridge consumes; each has an actor of its name (one message per answer)."""


class Actors(dict[str, Actor]):
    """The declared actors by name, also readable as attributes (``actors.job_completed``),
    and the resources they are bound to."""

    def __init__(self, resources: Resources) -> None:
        super().__init__()
        self.resources = resources

    def __getattr__(self, name: str) -> Actor:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def by_bridged_queue(self) -> dict[str, Actor]:
        """Each queue the bridge consumes → the actor of its name, which takes one answer per
        message: handlers for a bridge that hands everything over (``stepflow bridge`` uses
        :func:`bridge_handlers`, which decides the job answers in the bridge)."""
        return {name: self[name] for name in BRIDGED}


def bridge_handlers(resources: Resources) -> dict[str, JobAnswers | ActorAddress]:
    """Each queue the bridge consumes → its handler: the job answers are decided by the bridge
    (:class:`~stepflow.orchestration.decisions.JobAnswers`, bound to ``resources``), worker
    events are handed to the actor of their queue's name (the bridge needs no broker of
    Dramatiq's, only where each message goes)."""
    decide = JobAnswers(resources)
    queues = {name: group.queue_name for group in GROUPS for name in group.functions}
    return {name: decide if name in DECISIONS else ActorAddress(queues[name], name) for name in BRIDGED}


def declare(broker: Broker, resources: Resources) -> Actors:
    """Declare every actor on ``broker``, bound to ``resources``."""
    actors = Actors(resources)
    for group in GROUPS:
        for name, function in group.functions.items():
            actors[name] = dramatiq.actor(
                partial(function, resources),
                actor_name=name,
                queue_name=group.queue_name,
                broker=broker,
                **group.options,
            )
    return actors


def setup() -> None:
    """Start an actors process: logging, broker, listeners, then every actor (``dramatiq
    stepflow.actors:setup`` calls it in each worker process)."""
    from stepflow import listeners
    from stepflow.actors.broker import install_broker
    from stepflow.logs import configure_logging
    from stepflow.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    resources = Resources.open(settings)
    listeners.install(settings, resources.hand_over)
    declare(install_broker(settings), resources)
