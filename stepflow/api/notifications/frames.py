"""What a notifications websocket sends: the original's Phoenix frames, and who may see them.

A frame is ``{"topic":"notifications:all","event":<name>,"payload":{"body":<body>}}``: the
event names and bodies of step_flow 1.x's ``notifications:all`` channel, carrying ids only
(clients fetch what they show). The view groups a notice carries never reach the client.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stepflow.feed import JOB_PROGRESSION, RETRY_JOB, UPDATE_WORKFLOW, Notice
from stepflow.security import Principal

TOPIC = "notifications:all"
HEARTBEAT = '{"event":"heartbeat"}'


def event_name(notice: Notice) -> str:
    """``update_workflow_<id>`` for an update (the original's per-workflow topic), else the event."""
    return f"{UPDATE_WORKFLOW}_{notice.workflow_id}" if notice.event == UPDATE_WORKFLOW else notice.event


def body(notice: Notice) -> dict[str, Any]:
    """``{"workflow_id"}``, plus ``job_id`` for a retry and ``job_id``/``progression`` for a
    progression; empty for ``workers_status_updated`` (no workflow)."""
    if notice.workflow_id is None:
        return {}
    content: dict[str, Any] = {"workflow_id": notice.workflow_id}
    if notice.event in (RETRY_JOB, JOB_PROGRESSION):
        content["job_id"] = notice.job_id
    if notice.event == JOB_PROGRESSION:
        content["progression"] = notice.progression
    return content


def frame(notice: Notice) -> str:
    """The text frame of ``notice`` (its groups stripped)."""
    return msgspec.json.encode(
        {"topic": TOPIC, "event": event_name(notice), "payload": {"body": body(notice)}}
    ).decode()


def wanted(notice: Notice, workflow_id: int | None) -> bool:
    """Whether a connection filtered on ``workflow_id`` (None: no filter) wants ``notice``:
    a filtered connection gets only that workflow's events, not the workers'."""
    return workflow_id is None or notice.workflow_id == workflow_id


def visible(notice: Notice, principal: Principal, view_groups: tuple[str, ...] | list[str] | None) -> bool:
    """Whether ``principal`` may see ``notice``, given its workflow's view groups (None: the
    workflow is gone and its groups unknown, so nobody). Workers' events: every principal."""
    if notice.workflow_id is None:
        return True
    return view_groups is not None and principal.in_any(view_groups)
