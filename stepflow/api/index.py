"""The index, the sessions SDK workers open, and the worker black list (ours.md §3.2)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow import __version__
from stepflow.api.errors import ApiError, invalid
from stepflow.models.base import utcnow
from stepflow.queries import black_listed_jobs
from stepflow.security import Principal, open_session
from stepflow.settings import Settings


class SessionCredentials(msgspec.Struct):
    email: str
    password: str


class SessionRequest(msgspec.Struct):
    session: SessionCredentials


@get("/", sync_to_thread=False)
def index() -> dict[str, str]:
    """Anonymous. SDK workers read ``version`` (≥ 1.6.0 makes them use the black list)."""
    return {"application": "Step Flow", "version": __version__}


@get("/blacklist")
async def blacklist(session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]) -> dict[str, Any]:
    """Ids of jobs cancelled before they started: SDK workers drop these orders unrun."""
    job_ids = list(await session.scalars(black_listed_jobs(utcnow())))
    return {"data": job_ids, "total": len(job_ids)}


@post("/", status_code=200)
async def create_session(request: Request, settings: NamedDependency[Settings]) -> Response:
    """``{"session":{"email","password"}}`` → a bearer token for a configured user."""
    try:
        credentials = msgspec.json.decode(await request.body(), type=SessionRequest).session
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise invalid("session", str(error)) from None
    # scrypt is deliberately slow: keep it off the event loop.
    token = await anyio.to_thread.run_sync(open_session, settings, credentials.email, credentials.password)
    if token is None:
        raise ApiError(401, {"errors": {"detail": "Invalid email or password"}})
    return Response(
        content={"access_token": token, "token_type": "bearer", "expires_in": settings.session_ttl}, status_code=200
    )
