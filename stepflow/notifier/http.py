"""Deliver one HTTP request: timeouts, retries with backoff, and the outcome in the original's words.

Contract of :func:`deliver` (engine §9, ours A16):

* any 2xx → ``ok`` after the first such answer;
* 5xx, timeouts, connection and other network errors → tried again, up to ``max_retries`` more
  times, waiting ``backoff(n)`` seconds before retry ``n`` (1, 2, …), then not ok;
* any other status (3xx, redirects are not followed; 4xx) → not ok at once (permanent);
* an invalid request (unsupported method, malformed URL, bad header) → not ok, nothing sent,
  ``attempts == 0``.

The timeout is the client's (:func:`new_client`). :class:`Delivery` keeps at most
:data:`MAX_BODY_BYTES` of the response body. Failure texts never quote request headers
(``Authorization`` and the like): sensitive header values are redacted from exception texts.
"""

from __future__ import annotations

import codecs
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
import structlog

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 10 * 1024
"""At most this many bytes of a response body are read and kept."""

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
"""Methods :func:`deliver` sends (compared case-insensitively)."""

USER_AGENT = "StepFlow-Notifier/2"

_SENSITIVE_HEADER = re.compile(r"auth|token|secret|key|signature|cookie|password|credential", re.IGNORECASE)
_RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
_PERMANENT_TRANSPORT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

Headers = tuple[tuple[str, str], ...]


class NotificationError(ValueError):
    """A notification request cannot be built from its parameters. ``str(error)`` is one line."""


@dataclass(frozen=True, repr=False)
class HttpRequest:
    """One request to send. ``headers`` may be given as a mapping or as pairs; it is stored as a
    tuple of ``(name, value)`` string pairs (order kept, repeated names allowed). ``body`` is sent
    UTF-8 encoded; an empty body sends no content. The ``repr`` names the headers, never their values.
    """

    method: str
    url: str
    headers: Headers | Mapping[str, str] = ()
    body: str = ""

    def __post_init__(self) -> None:
        pairs: Iterable[tuple[str, str]] = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple((str(name), str(value)) for name, value in pairs))

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.headers)
        return f"HttpRequest(method={self.method!r}, url={self.url!r}, headers=<{names}>, body={self.body!r})"


@dataclass(frozen=True)
class Delivery:
    """The outcome of :func:`deliver`.

    ``ok`` is true iff ``error`` is None. ``status`` is the last response's status code (None when
    no response came); ``body`` its text, at most :data:`MAX_BODY_BYTES` bytes, decoded (UTF-8 unless
    the response names a charset; undecodable bytes replaced). ``error`` is the failure text, see
    :meth:`failure_message`. ``attempts`` counts the requests sent (0 for an invalid request).
    """

    ok: bool
    status: int | None
    body: str
    error: str | None
    attempts: int

    def failure_message(self) -> str:
        """The failure text, ``""`` for a successful delivery:

        * a status: ``response status code: <code> with body: <inspect(body)>`` (the original's text,
          e.g. ``response status code: 404 with body: ""``);
        * a transport error: ``request failed: <ExceptionName>: <detail>`` (one line);
        * an invalid request: ``unsupported HTTP method: …``, ``invalid URL: …`` or ``invalid request: …``;
        * Slack (:func:`stepflow.notifier.slack.slack_outcome`): ``slack error: <error>``.
        """
        return self.error or ""


def status_message(status: int, body: str) -> str:
    """The original's text for a non-success status."""
    return f"response status code: {status} with body: {inspect_string(body)}"


def exponential_backoff(
    retry: int, *, base: float = 0.5, cap: float = 30.0, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the first retry): ``base·2^(retry−1)``
    capped at ``cap``, then scaled by a random factor in [0.5, 1) so that senders spread out."""
    delay = min(cap, base * 2.0 ** min(max(retry - 1, 0), 32))
    return delay * (0.5 + 0.5 * jitter())


def new_client(timeout: float, *, trust_env: bool = True) -> httpx.Client:
    """An ``httpx.Client`` for the notifier: ``timeout`` seconds for connect, read, write and pool
    (``settings.notifier_timeout``), redirects not followed; ``trust_env`` honours the
    ``HTTP(S)_PROXY``/``NO_PROXY`` variables. The caller closes it."""
    return httpx.Client(
        timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}, trust_env=trust_env
    )


def deliver(
    client: httpx.Client,
    request: HttpRequest,
    *,
    max_retries: int,
    backoff: Callable[[int], float] = exponential_backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send ``request`` with ``client`` until it succeeds, fails permanently, or ``max_retries``
    retries are spent (so at most ``max_retries + 1`` attempts). Never raises for HTTP or network
    problems; see the module docstring for the contract."""
    if max_retries < 0:
        raise ValueError("max_retries must be zero or more")
    redact = _redactor(request)
    try:
        prepared = _build(client, request)
    except NotificationError as error:
        return Delivery(ok=False, status=None, body="", error=redact(str(error)), attempts=0)

    attempts = 0
    status: int | None
    error: str | None
    while True:
        attempts += 1
        try:
            response = client.send(prepared, stream=True)
            try:
                body = _read_capped(response)
            finally:
                response.close()
        except httpx.HTTPError as exception:
            status, body = None, ""
            error = redact(_exception_message(exception))
            retryable = isinstance(exception, _RETRYABLE_TRANSPORT_ERRORS) and not isinstance(
                exception, _PERMANENT_TRANSPORT_ERRORS
            )
        else:
            status = response.status_code
            if 200 <= status < 300:
                return Delivery(ok=True, status=status, body=body, error=None, attempts=attempts)
            error, retryable = status_message(status, body), status >= 500

        if not retryable or attempts > max_retries:
            return Delivery(ok=False, status=status, body=body, error=error, attempts=attempts)
        delay = backoff(attempts)
        log.info("notification retry", attempt=attempts, error=error, delay=round(delay, 3))
        sleep(delay)


def inspect_string(text: str, printable_limit: int = 4096) -> str:
    """``text`` as Elixir's ``inspect/1`` prints a binary: a double-quoted string with ``\\"``,
    ``\\\\``, ``\\#{`` and control-character escapes (``\\n``, ``\\t``…), followed by ``<> ...``
    after ``printable_limit`` characters; or ``<<104, 1, …>>`` (its UTF-8 bytes, 50 at most) when a
    character is not printable."""
    head = text[:printable_limit]
    if not all(_printable(char) for char in head):
        data = text.encode("utf-8", "replace")
        items = [str(byte) for byte in data[:50]] + (["..."] if len(data) > 50 else [])
        return "<<" + ", ".join(items) + ">>"
    escaped = _ESCAPES_PATTERN.sub(lambda match: _ESCAPES[match.group(0)], head)
    return f'"{escaped}"' + (" <> ..." if len(text) > printable_limit else "")


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "#{": "\\#{",
    "\a": "\\a",
    "\b": "\\b",
    "\x7f": "\\d",
    "\x1b": "\\e",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_ESCAPES_PATTERN = re.compile("|".join(re.escape(key) for key in sorted(_ESCAPES, key=len, reverse=True)))
_PRINTABLE_CONTROLS = frozenset("\n\r\t\v\b\f\x1b\x7f\a")


def _printable(char: str) -> bool:
    """Elixir's ``String.printable?/1`` for one code point."""
    code = ord(char)
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
        or char in _PRINTABLE_CONTROLS
    )


def _build(client: httpx.Client, request: HttpRequest) -> httpx.Request:
    method = request.method.strip().upper()
    if method not in METHODS:
        raise NotificationError(f"unsupported HTTP method: {_one_line(request.method)!r}")
    try:
        url = httpx.URL(request.url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise NotificationError(f"invalid URL: {_one_line(str(error))}") from None
    if url.scheme not in ("http", "https"):
        raise NotificationError("invalid URL: expected an http:// or https:// URL")
    if not url.host:
        raise NotificationError("invalid URL: no host")
    try:
        return client.build_request(
            method, url, headers=list(request.headers), content=request.body.encode() if request.body else None
        )
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, TypeError, ValueError) as error:
        raise NotificationError(f"invalid request: {type(error).__name__}: {_one_line(str(error))}") from None


def _read_capped(response: httpx.Response) -> str:
    """The first :data:`MAX_BODY_BYTES` bytes of the (decompressed) body, as text."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    data = b"".join(chunks)[:MAX_BODY_BYTES]
    try:
        decoder = codecs.getincrementaldecoder(response.charset_encoding or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # final=False: a character cut by the cap is dropped rather than replaced.
    return decoder.decode(data, final=size < MAX_BODY_BYTES)


def _exception_message(exception: Exception) -> str:
    detail = _one_line(str(exception))
    return f"request failed: {type(exception).__name__}" + (f": {detail}" if detail else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _redactor(request: HttpRequest) -> Callable[[str], str]:
    """Replace the values of sensitive request headers (and their last word, e.g. a bearer token)."""
    secrets: set[str] = set()
    for name, value in request.headers:
        if _SENSITIVE_HEADER.search(name):
            for secret in (value.strip(), value.strip().rsplit(" ", 1)[-1]):
                if len(secret) >= 4:
                    secrets.add(secret)

    def redact(text: str) -> str:
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    return redact
