"""The ``principal`` dependency: who the request acts as, or 401."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency

from stepflow.api.errors import unauthenticated
from stepflow.security import Principal, authenticate
from stepflow.settings import Settings


async def provide_principal(request: Request, settings: NamedDependency[Settings]) -> Principal:
    principal = authenticate(settings, request.headers.get("authorization"))
    if principal is None:
        raise unauthenticated()
    return principal
