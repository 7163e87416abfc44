"""The channels that relay the feed in a web process: Litestar's, on its psycopg LISTEN/NOTIFY backend.

Litestar's backend hands a lost listening connection (PostgreSQL restarted, the network cut)
to the channels' worker as an exception, and the worker stops: every socket would stay open,
heartbeating, and never get another event. :class:`ReconnectingPsycoPgBackend` reconnects
instead (pausing longer each try while PostgreSQL is away), then gives every subscriber
:data:`INTERRUPTED`: what was committed meanwhile is lost, so each socket closes (1012) and its
client connects again and fetches the state again, as on any connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from contextlib import suppress

import psycopg
import structlog
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.psycopg import PsycoPgChannelsBackend
from sqlalchemy import make_url

from stepflow.feed import CHANNEL
from stepflow.settings import Settings

log = structlog.get_logger(__name__)

INTERRUPTED_EVENT = "interrupted"
INTERRUPTED = b'{"event":"interrupted"}'
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 10.0


class ReconnectingPsycoPgBackend(PsycoPgChannelsBackend):
    """Litestar's psycopg backend that survives the loss of its listening connection."""

    def __init__(self, pg_dsn: str) -> None:
        super().__init__(pg_dsn)
        self._listening: set[str] = set()

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = set(channels)
        self._listening |= channels
        await super().subscribe(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = set(channels)
        self._listening -= channels
        await super().unsubscribe(channels)

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        while True:
            try:
                async for event in super().stream_events():
                    yield event
            except psycopg.Error as error:
                log.warning("notifications listener lost its connection: reconnecting", error=str(error))
            await self._reconnect()
            for channel in self._listening:
                yield channel, INTERRUPTED

    async def _reconnect(self) -> None:
        listening = set(self._listening)
        with suppress(psycopg.Error):  # closing what is already broken
            await self.on_shutdown()
        pause = FIRST_PAUSE
        while True:
            try:
                await self.on_startup()
                await self.subscribe(listening)
                log.info("notifications listener reconnected")
                return
            except psycopg.Error as error:
                log.warning("notifications listener cannot reconnect yet", error=str(error), retry_in=pause)
                with suppress(psycopg.Error):
                    await self.on_shutdown()
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)


def feed_channels(settings: Settings) -> ChannelsPlugin:
    """The channels relaying :data:`~stepflow.feed.CHANNEL` in this process (entered by the app's lifespan)."""
    dsn = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return ChannelsPlugin(backend=ReconnectingPsycoPgBackend(dsn), channels=[CHANNEL])
