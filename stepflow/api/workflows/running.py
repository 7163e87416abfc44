"""Running a workflow change of ``stepflow.orchestration.events`` from the web process.

The change runs in a worker thread on a sync session (the actors' own code, under the
workflow lock, in one transaction); what it owes the broker is sent after the commit, and
the clock re-sends whatever stays unsent. Used by the events route and by ``DELETE
/workflows/:id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration import events
from stepflow.orchestration.outbox import Owed
from stepflow.api.errors import ApiError

log = structlog.get_logger(__name__)

OwedSender = Callable[[Owed], Any]
"""Sends what a committed change owes (job orders, notifications, direct messages)."""

Change = Callable[[Session], Owed | None]


async def run_change(
    sync_sessions: sessionmaker[Session], send_owed: OwedSender, workflow_id: int, name: str, change: Change
) -> None:
    """Apply ``change`` in its own transaction, then send what it owes.

    ``EventRefused`` becomes the API error it describes (404, 409…).
    """

    def apply() -> Owed:
        with sync_sessions() as sync_session, sync_session.begin():
            return change(sync_session) or Owed()

    try:
        owed = await anyio.to_thread.run_sync(apply)
    except events.EventRefused as refused:
        raise ApiError(refused.status_code, refused.body) from None
    log.info("workflow event", workflow_id=workflow_id, workflow_event=name)
    if owed:
        try:
            await anyio.to_thread.run_sync(send_owed, owed)
        except Exception as error:  # the clock re-sends what stayed unsent
            log.warning("event messages left to the clock", workflow_id=workflow_id, error=str(error))
