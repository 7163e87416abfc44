"""The notifier's outgoing-HTTP core: build notification requests, deliver them, report the outcome.

No database and no broker here: the notifier actor renders the step's parameters, builds an
:class:`HttpRequest` with :func:`webhook_request` or :func:`slack_request`, hands it to
:func:`deliver` (timeouts come from the ``httpx.Client``, retries with backoff from ``deliver``),
and records :meth:`Delivery.failure_message` — the original's error texts — on failure.

* :mod:`stepflow.notifier.http`: :class:`HttpRequest`, :class:`Delivery`, :func:`deliver`.
* :mod:`stepflow.notifier.signing`: ``X-StepFlow-Signature`` HMAC signing (ours §3.6).
* :mod:`stepflow.notifier.webhook`: WebHook steps (engine §9).
* :mod:`stepflow.notifier.slack`: Slack steps and error notifications (engine §9, ours A15).
"""

from stepflow.notifier.http import (
    Delivery,
    HttpRequest,
    NotificationError,
    deliver,
    exponential_backoff,
    inspect_string,
    new_client,
)
from stepflow.notifier.signing import sign, signed_headers, timestamp
from stepflow.notifier.slack import MISSING_SLACK_CONFIGURATION, slack_error_message, slack_outcome, slack_request
from stepflow.notifier.webhook import parse_headers, webhook_request

__all__ = [
    "MISSING_SLACK_CONFIGURATION",
    "Delivery",
    "HttpRequest",
    "NotificationError",
    "deliver",
    "exponential_backoff",
    "inspect_string",
    "new_client",
    "parse_headers",
    "sign",
    "signed_headers",
    "slack_error_message",
    "slack_outcome",
    "slack_request",
    "timestamp",
    "webhook_request",
]
