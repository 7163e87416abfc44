"""Notification steps (``mode: "notification"``): what request a step asks for (engine.md §9).

StepFlow runs these itself, with no worker. The step's ``service`` parameter picks Slack
(``"slack"``) or a webhook (anything else). Each value is the first parameter with that id of
type ``string`` (raw), else the first of type ``template`` rendered with the step's inputs
(``source_paths``), else the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stepflow.engine.templates import WorkflowContext, bindings, effective_value, render


@dataclass(frozen=True, slots=True)
class SlackNotification:
    channel: str
    text: str


@dataclass(frozen=True, slots=True)
class WebhookNotification:
    method: str
    url: str | None
    headers: str
    body: str


def _value(step: Mapping[str, Any], names: Any, key: str, default: str | None) -> str | None:
    parameters = step.get("parameters") or []
    for parameter in parameters:
        if parameter.get("id") == key and parameter.get("type") == "string":
            return str(effective_value(parameter))
    for parameter in parameters:
        if parameter.get("id") == key and parameter.get("type") == "template":
            return render(str(effective_value(parameter) or ""), names)
    return default


def notification_request(
    step: Mapping[str, Any], context: WorkflowContext, sources: Sequence[str]
) -> SlackNotification | WebhookNotification:
    """The notification the step asks for, its templates rendered (raises on a bad template)."""
    names = bindings(context, step, list(sources))
    if _value(step, names, "service", None) == "slack":
        return SlackNotification(
            channel=_value(step, names, "channel", "general") or "general",
            text=_value(step, names, "body", "") or "",
        )
    return WebhookNotification(
        method=(_value(step, names, "method", "POST") or "POST").upper(),
        url=_value(step, names, "url", None),
        headers=_value(step, names, "headers", "{}") or "{}",
        body=_value(step, names, "body", "") or "",
    )
