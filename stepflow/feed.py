"""The websocket feed's notices: what a committed transaction tells the web processes.

Every process that changes state installs :func:`install_feed`: just before a transaction
commits, its changes (:mod:`stepflow.changes`) are coalesced into :class:`Notice` values and
sent with ``pg_notify`` on :data:`CHANNEL`, inside that transaction. PostgreSQL delivers them to
every listening connection only if the transaction commits, and in commit order, so every web
process (whatever the Procfile scale) sees every notice, once, in order
(:mod:`stepflow.api.notifications` relays them to the websockets).

Coalescing keeps a 10,000-job step to a handful of notices: one ``update_workflow`` per
workflow, one ``job_progression`` per job (its last value), one ``workers_status_updated``
per transaction. A notice carries ids and the groups that may view the workflow (the web
filters on them, then strips them); it stays under PostgreSQL's 8000-byte payload limit by
leaving the groups out (``groups`` None) when they would not fit: the web then reads them from
``workflows.view_groups``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import text
from sqlalchemy.orm import Session

from stepflow import changes
from stepflow.changes import Change

CHANNEL = "stepflow_notifications"
MAX_PAYLOAD_BYTES = 7999
"""PostgreSQL refuses a NOTIFY payload of 8000 bytes or more."""

NEW_WORKFLOW = "new_workflow"
UPDATE_WORKFLOW = "update_workflow"
"""Sent to clients as ``update_workflow_<workflow id>``, the original's topic."""
DELETE_WORKFLOW = "delete_workflow"
RETRY_JOB = "retry_job"
JOB_PROGRESSION = "job_progression"
WORKERS_STATUS_UPDATED = "workers_status_updated"

_EVENTS = {
    changes.WORKFLOW_CREATED: NEW_WORKFLOW,
    changes.WORKFLOW_STATUS: UPDATE_WORKFLOW,
    changes.JOB_STATE: UPDATE_WORKFLOW,
    changes.WORKFLOW_DELETED: DELETE_WORKFLOW,
    changes.JOB_RETRIED: RETRY_JOB,
    changes.JOB_PROGRESSION: JOB_PROGRESSION,
    changes.WORKERS_STATUS: WORKERS_STATUS_UPDATED,
}

_NOTIFY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) WITH ORDINALITY AS p(payload, n) "
    "ORDER BY n"
)


class Notice(msgspec.Struct, omit_defaults=True):
    """One event for the websockets. ``workflow_id`` is None only for ``workers_status_updated``
    (every authenticated user sees it); ``groups`` None means "too many to carry: look them up"."""

    event: str
    workflow_id: int | None = None
    job_id: int | None = None
    progression: int | None = None
    groups: tuple[str, ...] | None = None


def notices(batch: Sequence[Change]) -> list[Notice]:
    """The notices of one transaction's changes, coalesced, each at its first change's place."""
    coalesced: dict[tuple[str, int | None, int | None], Notice] = {}
    for change in batch:
        event = _EVENTS.get(change.event)
        if event is None:
            continue
        workflow = change.workflow
        job_id = change.job.id if change.job is not None and event in (RETRY_JOB, JOB_PROGRESSION) else None
        notice = Notice(
            event=event,
            workflow_id=workflow.id if workflow is not None else None,
            job_id=job_id,
            progression=change.progression if event == JOB_PROGRESSION else None,
            groups=workflow.view_groups if workflow is not None else None,
        )
        # A later value replaces an earlier one (the last progression) without moving it.
        coalesced[(event, notice.workflow_id, job_id)] = notice
    return list(coalesced.values())


def encode(notice: Notice) -> str:
    """The NOTIFY payload: compact JSON, without the groups if they would not fit."""
    payload = msgspec.json.encode(notice)
    if len(payload) > MAX_PAYLOAD_BYTES:
        payload = msgspec.json.encode(msgspec.structs.replace(notice, groups=None))
    return payload.decode()


_decoder = msgspec.json.Decoder(Notice)


def decode(payload: str | bytes) -> Notice:
    """A NOTIFY payload back into its notice (``msgspec.ValidationError`` or ``DecodeError`` if malformed)."""
    return _decoder.decode(payload)


def notify(session: Session, batch: Sequence[Change]) -> None:
    """The before-commit listener: one ``pg_notify`` per notice, in one statement."""
    payloads = [encode(notice) for notice in notices(batch)]
    if payloads:
        session.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})


def install_feed() -> None:
    """Register :func:`notify` (every process that changes state)."""
    changes.before_commit("websocket feed", notify)
