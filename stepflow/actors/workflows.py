"""Workflow actors: launch (owed by the web through the outbox)."""

from __future__ import annotations

import dramatiq
import structlog
from sqlalchemy import delete

from stepflow.actors import runtime
from stepflow.actors.advance import advance
from stepflow.actors.state import LockedWorkflow
from stepflow.models import Outbox

log = structlog.get_logger(__name__)

WORKFLOWS_QUEUE = "stepflow.workflows"


@dramatiq.actor(queue_name=WORKFLOWS_QUEUE)
def launch_workflow(workflow_id: int) -> None:
    """Start the workflow's first steps; consumes its outbox entry in the same transaction.

    Idempotent: a second delivery finds the steps started and creates nothing.
    """
    with structlog.contextvars.bound_contextvars(workflow_id=workflow_id):
        with runtime.transaction() as session:
            locked = LockedWorkflow.lock(session, workflow_id)
            session.execute(
                delete(Outbox).where(
                    Outbox.actor == "launch_workflow", Outbox.payload.contains({"workflow_id": workflow_id})
                )
            )
            if locked is None:
                log.warning("launch of an unknown workflow ignored")
                return
            owed = advance(locked, runtime.settings().workers_work_directory)
        sent = runtime.send_owed(owed)
        log.info("workflow launched", dispatched=sent)
