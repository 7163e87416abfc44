"""Slack steps and error notifications (engine §9, ours A15), through Slack's Web API.

* Step parameters (already rendered): ``channel`` (default "general", "#" prepended if missing)
  and ``body`` (the message text, default ""). With no token configured the step fails with
  :data:`MISSING_SLACK_CONFIGURATION` (ours A15: still an error job).
* Slack answers HTTP 200 even on failure, with ``{"ok": false, "error": "<code>"}``:
  :func:`slack_outcome` turns that into a failed :class:`Delivery` (``slack error: <code>``).
* :func:`slack_error_message` is the original's text for job errors (not steps).
"""

from __future__ import annotations

import dataclasses
import json

from stepflow.notifier.http import Delivery, HttpRequest, NotificationError

MISSING_SLACK_CONFIGURATION = "missing slack configuration"
DEFAULT_CHANNEL = "general"


def slack_channel(channel: str | None) -> str:
    """``channel`` with "#" prepended if missing; blank or None → ``#general``."""
    name = (channel or "").strip() or DEFAULT_CHANNEL
    return name if name.startswith("#") else f"#{name}"


def slack_request(api_url: str, token: str | None, channel: str | None, text: str) -> HttpRequest:
    """``POST {api_url}/chat.postMessage`` with ``Authorization: Bearer <token>`` and the JSON body
    ``{"channel": slack_channel(channel), "text": text}``. ``api_url`` is ``settings.slack_api_url``
    (e.g. ``https://slack.com/api``). Raises :class:`NotificationError` with
    :data:`MISSING_SLACK_CONFIGURATION` when ``token`` is None or blank."""
    if not token or not token.strip():
        raise NotificationError(MISSING_SLACK_CONFIGURATION)
    body = json.dumps({"channel": slack_channel(channel), "text": text}, ensure_ascii=False)
    return HttpRequest(
        method="POST",
        url=f"{api_url.rstrip('/')}/chat.postMessage",
        headers=(
            ("Authorization", f"Bearer {token.strip()}"),
            ("Content-Type", "application/json; charset=utf-8"),
        ),
        body=body,
    )


def slack_outcome(delivery: Delivery) -> Delivery:
    """A successful HTTP delivery stays successful only if Slack's JSON answer has ``"ok": true``;
    otherwise it becomes a failure ``slack error: <error>`` (``<error>`` is Slack's ``error`` field,
    or ``unexpected response`` when the body is not such a JSON object). Failed deliveries are
    returned unchanged."""
    if not delivery.ok:
        return delivery
    try:
        answer = json.loads(delivery.body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return delivery
    reason = answer.get("error") if isinstance(answer, dict) else None
    text = " ".join(str(reason).split())[:200] if reason else "unexpected response"
    return dataclasses.replace(delivery, ok=False, error=f"slack error: {text}")


def slack_error_message(
    job_name: str, job_id: int | str, exposed_domain: str, workflow_id: int | str, description: str
) -> str:
    """The original's job-error notification: ``Error for job <name> #<job_id>
    <<exposed_domain>/workflows/<workflow_id> |Open Workflow>`` then a newline and the
    description in a code block. Nothing is escaped, as in the original."""
    return (
        f"Error for job {job_name} #{job_id} <{exposed_domain}/workflows/{workflow_id} |Open Workflow>\n"
        f"```{description}```"
    )
