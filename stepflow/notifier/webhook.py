"""WebHook steps (engine §9): the request from the step's already-rendered parameters.

Parameters and defaults as in the original: ``method`` ("POST"), ``url``, ``headers`` (a string
holding a JSON object, "{}"), ``body`` (""). The request is signed as hook deliveries are
(ours §3.6, :mod:`stepflow.notifier.signing`). Success and failure texts come from
:func:`stepflow.notifier.http.deliver` (any 2xx is success, ours A16).
"""

from __future__ import annotations

import json
import re

from stepflow.notifier.http import Headers, HttpRequest, NotificationError
from stepflow.notifier.signing import signed_headers

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")


def parse_headers(headers_json: str) -> Headers:
    """The ``headers`` parameter → ``(name, value)`` pairs, in the object's order.

    A blank string means no headers. String values are kept; numbers and booleans become their JSON
    text. Raises :class:`NotificationError` for invalid JSON, a non-object, a null/array/object
    value, an invalid header name, or a value with control or non-ASCII characters. Messages name
    the header, never its value.
    """
    if not headers_json.strip():
        return ()
    try:
        parsed = json.loads(headers_json)
    except json.JSONDecodeError as error:
        raise NotificationError(f"invalid headers: not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(parsed, dict):
        raise NotificationError(f"invalid headers: expected a JSON object, got {_json_type(parsed)}")
    pairs = []
    for name, value in parsed.items():
        if not _TOKEN.fullmatch(name):
            raise NotificationError(f"invalid headers: {name!r} is not a valid header name")
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool | int | float):
            text = json.dumps(value)
        else:
            raise NotificationError(f"invalid headers: the value of {name!r} must be a string, got {_json_type(value)}")
        if not _VALUE.fullmatch(text):
            raise NotificationError(f"invalid headers: the value of {name!r} has control or non-ASCII characters")
        pairs.append((name, text))
    return tuple(pairs)


def webhook_request(
    *,
    url: str,
    method: str = "POST",
    headers_json: str = "{}",
    body: str = "",
    signing_secret: str | None = None,
    sent_at: str | None = None,
    delivery_id: str | None = None,
) -> HttpRequest:
    """The WebHook step's request: the user's headers (:func:`parse_headers`) followed by
    ``X-StepFlow-Delivery``, ``X-StepFlow-Timestamp`` and, with a ``signing_secret``,
    ``X-StepFlow-Signature`` over ``body`` (these replace user headers of the same name).
    ``method`` is upper-cased; it and ``url`` are checked when delivered (an unsupported method or
    malformed URL is a permanent failure there). Raises :class:`NotificationError` for bad headers.
    """
    signing = signed_headers(signing_secret, body, sent_at=sent_at, delivery_id=delivery_id)
    reserved = {name.lower() for name in signing}
    user = tuple((name, value) for name, value in parse_headers(headers_json) if name.lower() not in reserved)
    return HttpRequest(method=method.strip().upper(), url=url.strip(), headers=user + tuple(signing.items()), body=body)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")
