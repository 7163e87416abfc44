"""Deliveries of a workflow's notification hooks (ours §3.6): the request for one event.

``POST <endpoint>`` with the JSON body::

    {"event": "workflow_completed", "delivery_id": "<uuid>", "sent_at": "<iso>Z",
     "workflow": {"id", "identifier", "version", "reference", "status"},
     "job": null | {"id", "name", "step_id", "status", "message"}}

and the headers ``Content-Type: application/json``, ``X-StepFlow-Event``, ``X-StepFlow-Delivery``
(the same for every retry of one delivery), ``X-StepFlow-Timestamp``, ``Authorization`` (the
value of the hook's named credentials, when it names some) and ``X-StepFlow-Signature:
sha256=<hex HMAC(secret, "<sent_at>.<body>")>`` when a signing secret is set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stepflow.notifier.http import HttpRequest
from stepflow.notifier.signing import signed_headers, timestamp

EVENT_HEADER = "X-StepFlow-Event"


def hook_body(
    event: str, delivery_id: str, sent_at: str, workflow: Mapping[str, Any], job: Mapping[str, Any] | None
) -> str:
    return json.dumps(
        {"event": event, "delivery_id": delivery_id, "sent_at": sent_at, "workflow": dict(workflow), "job": job},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def hook_request(
    *,
    endpoint: str,
    event: str,
    delivery_id: str,
    workflow: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    authorization: str | None = None,
    signing_secret: str | None = None,
    sent_at: str | None = None,
) -> HttpRequest:
    """The request delivering ``event`` to a hook's ``endpoint`` (``sent_at`` defaults to now)."""
    sent_at = sent_at or timestamp()
    body = hook_body(event, delivery_id, sent_at, workflow, job)
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        **signed_headers(signing_secret, body, sent_at=sent_at, delivery_id=delivery_id),
    }
    if authorization:
        headers["Authorization"] = authorization
    return HttpRequest(method="POST", url=endpoint, headers=tuple(headers.items()), body=body)
