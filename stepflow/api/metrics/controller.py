"""``GET {prefix}/metrics`` (api.md §10, ours.md §3.10): Prometheus' text exposition format.

For scrapers: no user token (the authorization guard leaves this path alone, ours.md rule 14),
only the optional basic auth of ``STEPFLOW_METRICS_BASIC_AUTH``: without the right credentials
401 with ``WWW-Authenticate: Basic``. With ``STEPFLOW_METRICS_ENABLED=false`` it answers 404
``Page not found``, as the original.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from sqlalchemy.orm import Session, sessionmaker

from stepflow.metrics.exposition import MEDIA_TYPE, render, scrape_registry
from stepflow.settings import Settings

REALM = 'Basic realm="metrics", charset="UTF-8"'


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic …`` header; None for anything else."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, separator, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if separator else None


def authorized(authorization: str | None, expected: tuple[str, str] | None) -> bool:
    if expected is None:
        return True
    given = basic_credentials(authorization)
    if given is None:
        return False
    # Compare both parts, always, in constant time.
    same_user = hmac.compare_digest(given[0].encode(), expected[0].encode())
    same_password = hmac.compare_digest(given[1].encode(), expected[1].encode())
    return same_user and same_password


def metrics_route(settings: Settings, sessions: sessionmaker[Session]) -> HTTPRouteHandler:
    """The route, bound to this app's settings and (sync) sessions for the SQL gauges."""
    if not settings.metrics_enabled:

        @get("/metrics", sync_to_thread=False, include_in_schema=False)
        def metrics_disabled() -> Response:
            return Response("Page not found", status_code=404, media_type="text/html")

        return metrics_disabled

    registry = scrape_registry(settings, sessions)

    # The SQL gauges query the database synchronously: off the event loop.
    @get("/metrics", sync_to_thread=True, include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), settings.metrics_basic_auth):
            return Response(
                "Unauthorized", status_code=401, media_type="text/plain", headers={"WWW-Authenticate": REALM}
            )
        return Response(render(registry), media_type=MEDIA_TYPE)

    return metrics
