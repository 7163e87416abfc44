"""``GET {prefix}/notifications``: the websocket that relays the feed (ours.md §3.7).

Every state-changing transaction, in any process, sends its notices with ``pg_notify``
(:mod:`stepflow.feed`). Each web process relays them with Litestar channels on the
PostgreSQL LISTEN/NOTIFY backend: one listening connection per process, fanned out to one
subscriber per websocket. So every web process sees every notice, whatever the Procfile
scale, in commit order.

Per connection:

- the router guard authenticates it like the API (``Authorization`` header, raw token or
  ``?token=``; anonymous only when ``STEPFLOW_AUTH_ANONYMOUS`` is on) and refuses it with
  close code 1008 before accepting (:func:`stepflow.api.authorization.refuse_websocket`);
- ``?workflow_id=<id>`` keeps only that workflow's events;
- a notice goes out only if the principal's groups meet the workflow's view groups (from the
  notice, else read from ``workflows.view_groups``), stripped down to ids (:mod:`.frames`);
- ``{"event":"heartbeat"}`` every ``STEPFLOW_WEBSOCKET_HEARTBEAT`` seconds;
- closed with 1012 when the process's listener lost its connection to PostgreSQL (notices
  committed meanwhile are lost: the client connects again and fetches the state again);
- closed with 1013 when the client reads too slowly: more than :data:`MAX_BACKLOG` notices wait
  for it, or one frame could not be written in :data:`SEND_TIMEOUT` seconds. Holding an
  ever-growing backlog would let one stalled client eat the process's memory, and dropping
  frames silently would leave it showing a wrong state; closed, it connects again and fetches.

The subscription starts before the socket is accepted, so everything committed after the
client sees the socket open reaches it. Nothing is replayed: a client fetches the state it
shows when it connects (and again after a reconnection). Frames from the client are ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import WS_1012_SERVICE_RESTART, WS_1013_TRY_AGAIN_LATER
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepflow.api.authorization import refuse_websocket
from stepflow.api.errors import invalid, unauthenticated
from stepflow.api.notifications.channels import INTERRUPTED_EVENT
from stepflow.api.notifications.frames import HEARTBEAT, frame, visible, wanted
from stepflow.api.principal import request_principal
from stepflow.feed import CHANNEL, Notice, decode
from stepflow.models import Workflow
from stepflow.security import Principal
from stepflow.settings import Settings

log = structlog.get_logger(__name__)

Send = Callable[[str], Awaitable[None]]


MAX_BACKLOG = 10_000
"""Notices that may wait for one socket before it is closed as too slow."""
SEND_TIMEOUT = 30.0
"""Seconds one frame may take to be written before the socket is closed as too slow."""


class FeedInterrupted(Exception):
    """The process's listener lost notices (:mod:`.channels`): the socket must close."""


class TooSlow(Exception):
    """The client reads slower than notices come: the socket must close."""


def workflow_filter(socket: WebSocket) -> int | None:
    raw = socket.query_params.get("workflow_id")
    if raw is None:
        return None
    if not raw.isdigit():
        raise refuse_websocket(invalid("workflow_id"))
    return int(raw)


async def view_groups(sessions: async_sessionmaker[AsyncSession], notice: Notice) -> tuple[str, ...] | None:
    """The groups that may view the notice's workflow: carried by the notice, or (too many to
    carry) read back; None for a workflow already deleted."""
    if notice.groups is not None or notice.workflow_id is None:
        return notice.groups
    async with sessions() as session:
        groups = await session.scalar(select(Workflow.view_groups).where(Workflow.id == notice.workflow_id))
    return tuple(groups) if groups is not None else None


async def relay(
    subscriber: Subscriber,
    send: Send,
    principal: Principal,
    workflow_id: int | None,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async for payload in subscriber.iter_events():
        if subscriber.qsize > MAX_BACKLOG:
            raise TooSlow
        try:
            notice = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("malformed notice dropped", channel=CHANNEL)
            continue
        if notice.event == INTERRUPTED_EVENT:
            raise FeedInterrupted
        if wanted(notice, workflow_id) and visible(notice, principal, await view_groups(sessions, notice)):
            await send(frame(notice))


async def heartbeats(send: Send, interval: float) -> None:
    while True:
        await anyio.sleep(interval)
        await send(HEARTBEAT)


async def until_closed(socket: WebSocket) -> None:
    async for _ in socket.iter_data():  # frames from the client mean nothing
        pass


@websocket("/notifications")
async def notifications(
    socket: WebSocket,
    settings: NamedDependency[Settings],
    sessions: NamedDependency[async_sessionmaker[AsyncSession]],
    feed: NamedDependency[ChannelsPlugin],
) -> None:
    principal = request_principal(socket, settings)
    if principal is None:  # the route checks were configured away: still no feed without credentials
        raise refuse_websocket(unauthenticated())
    workflow_id = workflow_filter(socket)
    async with feed.start_subscription(CHANNEL) as subscriber:
        await socket.accept()
        log.info("notifications websocket opened", principal=principal.name, workflow_id=workflow_id)
        sending = anyio.Lock()

        async def send(text: str) -> None:
            async with sending:  # the relay and the heartbeat share the socket
                try:
                    with anyio.fail_after(SEND_TIMEOUT):
                        await socket.send_text(text)
                except TimeoutError:
                    raise TooSlow from None

        async with anyio.create_task_group() as tasks:

            async def until_done(work: Callable[[], Awaitable[None]]) -> None:
                """Run one side of the connection; when it ends (the client left), end them all."""
                try:
                    await work()
                except (WebSocketDisconnect, OSError):  # the client went away mid-send
                    pass
                except FeedInterrupted:
                    await socket.close(WS_1012_SERVICE_RESTART, "notifications interrupted: connect again")
                except TooSlow:
                    log.warning("notifications websocket too slow, closed", principal=principal.name)
                    with anyio.move_on_after(1):  # a stalled client may not take the close either
                        await socket.close(WS_1013_TRY_AGAIN_LATER, "too slow: connect again")
                finally:
                    tasks.cancel_scope.cancel()

            tasks.start_soon(until_done, partial(relay, subscriber, send, principal, workflow_id, sessions))
            tasks.start_soon(until_done, partial(heartbeats, send, settings.websocket_heartbeat))
            tasks.start_soon(until_done, partial(until_closed, socket))
    log.info("notifications websocket closed", principal=principal.name, workflow_id=workflow_id)


ROUTES = [notifications]
