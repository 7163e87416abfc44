"""Webhook signing (ours §3.6): ``X-StepFlow-Signature: sha256=<hex HMAC-SHA256(secret, "<sent_at>.<body>")>``.

Hook requests carry ``sent_at`` inside their JSON body; a WebHook *step*'s body is the user's,
so steps send the signed timestamp in the ``X-StepFlow-Timestamp`` header instead, and receivers
verify ``HMAC(secret, "<X-StepFlow-Timestamp>.<raw body>")`` (see :func:`verify`). Every request
also gets a fresh ``X-StepFlow-Delivery`` UUID, the same for all retries of one delivery, so
receivers can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-StepFlow-Signature"
DELIVERY_HEADER = "X-StepFlow-Delivery"
TIMESTAMP_HEADER = "X-StepFlow-Timestamp"


def timestamp(now: datetime | None = None) -> str:
    """``now`` (default: the current time) as UTC ISO 8601 with milliseconds and ``Z``:
    ``2024-05-01T12:00:00.123Z``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def sign(secret: str, sent_at: str, body: str) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<sent_at>.<body>")>``, all UTF-8 encoded."""
    digest = hmac.new(secret.encode(), f"{sent_at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, sent_at: str, body: str, signature: str) -> bool:
    """Whether ``signature`` is :func:`sign` of these values (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), signature.strip().encode())


def signed_headers(
    secret: str | None, body: str, *, sent_at: str | None = None, delivery_id: str | None = None
) -> dict[str, str]:
    """Headers for one delivery: ``X-StepFlow-Delivery`` (``delivery_id``, default a new UUID4) and
    ``X-StepFlow-Timestamp`` (``sent_at``, default :func:`timestamp`), plus ``X-StepFlow-Signature``
    when ``secret`` is set (not None, not empty)."""
    sent_at = sent_at or timestamp()
    headers = {DELIVERY_HEADER: delivery_id or str(uuid.uuid4()), TIMESTAMP_HEADER: sent_at}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, sent_at, body)
    return headers
