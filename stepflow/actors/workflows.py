"""Workflow actors: launch (owed by the web through the outbox)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import delete

from stepflow.models import Outbox
from stepflow.orchestration.advance import advance
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.resources import Resources
from stepflow.wire.handover import LAUNCH_WORKFLOW

log = structlog.get_logger(__name__)


def launch_workflow(resources: Resources, workflow_id: int) -> None:
    """Start the workflow's first steps; consumes its outbox entry in the same transaction.

    Idempotent: a second delivery finds the steps started and creates nothing.
    """
    with structlog.contextvars.bound_contextvars(workflow_id=workflow_id):
        with resources.transaction() as session:
            locked = LockedWorkflow.lock(session, workflow_id)
            session.execute(
                delete(Outbox).where(
                    Outbox.actor == LAUNCH_WORKFLOW.actor_name, Outbox.payload.contains({"workflow_id": workflow_id})
                )
            )
            if locked is None:
                log.warning("launch of an unknown workflow ignored")
                return
            owed = advance(locked, resources.settings.workers_work_directory)
        sent = resources.send_owed(owed)
        log.info("workflow launched", dispatched=sent)


ACTORS: dict[str, Callable[[Resources, Any], None]] = {LAUNCH_WORKFLOW.actor_name: launch_workflow}
"""The workflow actors, by name; each takes the process's resources first."""
