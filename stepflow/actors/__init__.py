"""Dramatiq actors. Importing this package installs the broker from the environment's
settings, then defines every actor (``stepflow actors`` runs ``dramatiq stepflow.actors``)."""

from stepflow import listeners
from stepflow.actors import runtime
from stepflow.actors.broker import install_broker
from stepflow.logs import configure_logging

configure_logging(runtime.settings().log_level)
broker = install_broker(runtime.settings())
listeners.install(runtime.settings())

from stepflow.actors.job_messages import (  # noqa: E402  (actors bind to the broker installed above)
    job_completed,
    job_error,
    job_progression,
    job_queue_not_found,
    job_stopped,
)
from stepflow.actors.notifications import announce, run_notification  # noqa: E402
from stepflow.actors.worker_messages import (  # noqa: E402
    worker_created,
    worker_discovery,
    worker_initialized,
    worker_started,
    worker_status,
    worker_terminated,
    worker_updated,
)
from stepflow.actors.workflows import launch_workflow  # noqa: E402

__all__ = [
    "announce",
    "broker",
    "job_completed",
    "job_error",
    "job_progression",
    "job_queue_not_found",
    "job_stopped",
    "launch_workflow",
    "run_notification",
    "worker_created",
    "worker_discovery",
    "worker_initialized",
    "worker_started",
    "worker_status",
    "worker_terminated",
    "worker_updated",
]
