"""The ``principal`` dependency: who the request acts as, or 401.

The route guard (:mod:`stepflow.api.authorization`) and this dependency decide the principal
once per request: the first to ask keeps the answer in the request's scope.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency

from stepflow.api.errors import unauthenticated
from stepflow.security import Principal, authenticate
from stepflow.settings import Settings

_STATE_KEY = "stepflow.principal"


def credentials(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The ``Authorization`` header; for a websocket also ``?token=`` (browsers can't set headers)."""
    header = connection.headers.get("authorization")
    if header is None and connection.scope["type"] == "websocket":
        return connection.query_params.get("token")
    return header


def request_principal(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> Principal | None:
    """The principal of this connection (None: no valid credentials and no anonymous access), decided once."""
    state = connection.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    if _STATE_KEY not in state:
        state[_STATE_KEY] = authenticate(settings, credentials(connection))
    return state[_STATE_KEY]


async def provide_principal(request: Request, settings: NamedDependency[Settings]) -> Principal:
    principal = request_principal(request, settings)
    if principal is None:
        raise unauthenticated()
    return principal
