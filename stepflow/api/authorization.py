"""Route-level authorization (api.md §2.2): one Litestar guard on the API router.

Every request under ``STEPFLOW_API_PREFIX`` has an **action key**: the lower-case method, ``_``,
then the first path segment after the prefix, or ``workflows_events`` for
``/workflows/:id/events`` (``get_workflows``, ``post_workflows_events``, ``put_workers``…).
The key's checks come from ``settings.authorize`` (the defaults with ``STEPFLOW_AUTHORIZE``
merged over them); a key that is not listed gets :data:`~stepflow.settings.DEFAULT_CHECKS`
(``["user_check"]``). They run in order; the first that refuses answers.

Checks:

``user_check``
    401 ``{"errors":{"detail":"You need to login to view this resource"}}`` without a principal.
    The anonymous principal passes only when ``STEPFLOW_AUTH_ANONYMOUS=true``.
``right_<group>_check``
    401 without a principal, 403 ``{"errors":{"detail":"You are not authorized to view this
    resource"}}`` unless the principal has ``<group>`` (``right_user_view_check`` → ``user_view``).
``package.module:function`` or ``package.module.function``
    Your own callable ``check(principal, connection) -> None`` (it may be ``async``), imported
    when the settings are loaded. ``principal`` is a :class:`~stepflow.security.Principal` or
    None (no valid credentials); ``connection`` is the Litestar request (or websocket). Return to
    let the request through; raise to refuse it: ``stepflow.api.errors.unauthenticated()`` or
    ``forbidden()`` (the bodies above), any other ``ApiError`` or Litestar ``HTTPException``
    for your own status and body, or ``PermissionError`` for the 403 above. Any other exception
    is a bug in the check and answers 500.

Not subject to these checks: the index (``GET {prefix}``), ``/metrics`` (its own basic auth,
ours.md rule 14), ``OPTIONS`` (CORS preflights carry no credentials) and everything outside
the prefix, such as ``POST /api/sessions``. Handlers that take the ``principal`` dependency
still answer 401 without one, whatever the checks say.

A websocket (``GET {prefix}/notifications``) refused by a check is closed before it is
accepted, with code 1008 (policy violation) and the status and detail as reason: the server
rejects the upgrade (uvicorn answers it with HTTP 403), as Phoenix did.

Litestar matches the route before it runs guards, so an unknown path answers 404 and a known
path with another method 405, both without credentials (ours.md §4.1, api 2).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, WebSocketException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import WS_1008_POLICY_VIOLATION

from stepflow.api.errors import ApiError, forbidden, unauthenticated
from stepflow.api.principal import request_principal
from stepflow.security import Principal, anonymous_warning
from stepflow.settings import DEFAULT_CHECKS, Settings, import_check, right_check_group

log = structlog.get_logger(__name__)

Connection = ASGIConnection[Any, Any, Any, Any]
Check = Callable[[Principal | None, Connection], Awaitable[None] | None]
Guard = Callable[[Connection, BaseRouteHandler], Awaitable[None]]


def action_key(method: str, path: str, prefix: str) -> str | None:
    """The action key of a request, or None when route checks do not apply to its path."""
    prefix = prefix.rstrip("/")
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    segments = [segment for segment in path[len(prefix) :].split("/") if segment]
    if not segments or segments[0] == "metrics":
        return None
    if len(segments) == 3 and segments[0] == "workflows" and segments[2] == "events":
        return f"{method.lower()}_workflows_events"
    return f"{method.lower()}_{segments[0]}"


def user_check(settings: Settings) -> Check:
    def check(principal: Principal | None, _: Connection) -> None:
        if principal is None or (principal.anonymous and not settings.auth_anonymous):
            raise unauthenticated()

    return check


def right_check(group: str) -> Check:
    def check(principal: Principal | None, _: Connection) -> None:
        if principal is None:
            raise unauthenticated()
        if group not in principal.groups:
            raise forbidden()

    return check


def resolve_check(name: str, settings: Settings) -> Check:
    """The check a name in ``STEPFLOW_AUTHORIZE`` stands for."""
    if name == "user_check":
        return user_check(settings)
    group = right_check_group(name)
    if group is not None:
        return right_check(group)
    return import_check(name)


def resolve_checks(settings: Settings) -> tuple[dict[str, tuple[Check, ...]], tuple[Check, ...]]:
    """The checks per configured action key, and those of every other key."""
    configured = {
        key: tuple(resolve_check(name, settings) for name in names) for key, names in settings.authorize.items()
    }
    return configured, tuple(resolve_check(name, settings) for name in DEFAULT_CHECKS)


async def run_check(check: Check, principal: Principal | None, connection: Connection) -> None:
    try:
        result = check(principal, connection)
        if inspect.isawaitable(result):
            await result
    except (ApiError, HTTPException):
        raise
    except PermissionError:
        raise forbidden() from None


def authorization_guard(settings: Settings) -> Guard:
    """The API router's guard. Built once per app; logs the anonymous-access warning then."""
    configured, default = resolve_checks(settings)
    warning = anonymous_warning(settings)
    if warning is not None:
        log.warning(warning)

    async def authorize(connection: Connection, _: BaseRouteHandler) -> None:
        method = connection.scope.get("method", "GET") if connection.scope["type"] == "http" else "GET"
        if method == "OPTIONS":
            return
        key = action_key(method, connection.scope["path"], settings.api_prefix)
        if key is None:
            return
        principal = request_principal(connection, settings)
        try:
            for check in configured.get(key, default):
                await run_check(check, principal, connection)
        except (ApiError, HTTPException) as error:
            if connection.scope["type"] == "websocket":
                raise refuse_websocket(error) from None
            raise

    return authorize


def refuse_websocket(error: ApiError | HTTPException) -> WebSocketException:
    """What closes a websocket a check refused: 1008, reason ``"<status> <detail>"``."""
    if isinstance(error, HTTPException):
        detail = error.detail
    else:
        errors = error.body.get("errors")
        detail = errors.get("detail", "") if isinstance(errors, dict) else ""
    # A close reason holds at most 123 bytes.
    reason = f"{error.status_code} {detail}".strip().encode()[:123].decode(errors="ignore")
    return WebSocketException(detail=reason, code=WS_1008_POLICY_VIOLATION)
