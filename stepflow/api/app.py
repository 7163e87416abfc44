"""The Litestar application: the StepFlow plugin and the standalone app factory.

``StepFlow`` wires the settings, the database, the definition validator and the hooks that
hand work to the actors into the routes: the API under ``STEPFLOW_API_PREFIX`` and the
session route SDK workers call beside it. ``create_app`` is StepFlow on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow import listeners
from stepflow.api import index
from stepflow.api.authorization import authorization_guard
from stepflow.api.definitions import controller as definitions
from stepflow.api.definitions.service import load_definitions
from stepflow.api.errors import EXCEPTION_HANDLERS
from stepflow.api.jobs import controller as jobs
from stepflow.api.metrics.controller import metrics_route
from stepflow.api.notifications import controller as notifications
from stepflow.api.notifications.channels import feed_channels
from stepflow.api.openapi import docs_router, openapi_config
from stepflow.api.principal import provide_principal
from stepflow.api.statistics import controller as statistics
from stepflow.api.workers import controller as workers
from stepflow.api.workflows import controller as workflows
from stepflow.api.workflows import events as workflow_events
from stepflow.api.workflows.launch_relay import HandOver, Launcher, LaunchRelay, in_request
from stepflow.api.workflows.running import OwedSender
from stepflow.db import async_engine, async_session_factory
from stepflow.definitions.schema import DefinitionValidator
from stepflow.resources import Resources
from stepflow.settings import Settings

log = structlog.get_logger(__name__)


class StepFlow(InitPluginProtocol):
    """StepFlow's API as a Litestar plugin: ``Litestar(plugins=[StepFlow(settings)])`` mounts
    the routes under ``STEPFLOW_API_PREFIX`` and the session route beside it, with their own
    dependencies, guard and error bodies, and loads the definitions at start-up. A host app
    keeps its own routes, OpenAPI and error handling.

    ``launcher`` and ``send_owed`` are the hooks that hand work to the actors (tests replace
    them). By default launches go through the app's
    :class:`~stepflow.api.workflows.launch_relay.LaunchRelay` (its thread runs while the app
    does), and what events owe through the process's publishers
    (:class:`~stepflow.resources.Resources`, opened at app init). A ``launcher`` replaces the
    relay: it is called in the launch request, after the commit
    (:func:`~stepflow.api.workflows.launch_relay.in_request`).
    """

    def __init__(
        self, settings: Settings, launcher: Launcher | None = None, send_owed: OwedSender | None = None
    ) -> None:
        self.settings = settings
        self.launcher = launcher
        self.send_owed = send_owed

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        # Workflow events run the orchestration's (sync) code under the workflow lock.
        resources = Resources.open(settings)
        listeners.install(settings, resources.hand_over)
        validator = DefinitionValidator(settings.workflow_schema)
        engine = async_engine(settings)
        sessions = async_session_factory(engine)
        sync_sessions = resources.sessions
        # Our own channels instance (not registered as a plugin: a host app may have its own).
        feed = feed_channels(settings)
        relay: LaunchRelay | None = None
        hand_over: HandOver
        if self.launcher is None:
            relay = LaunchRelay(resources.engine, resources.hand_over)
            hand_over = relay.hand_over
        else:
            hand_over = in_request(self.launcher, resources.engine)

        @asynccontextmanager
        async def lifespan(_: Litestar) -> AsyncIterator[None]:
            async with sessions() as session, session.begin():
                outcome = await load_definitions(session, settings, validator)
            log.info(
                "definitions loaded",
                loaded=len(outcome.loaded),
                skipped=len(outcome.skipped),
                invalid=len(outcome.invalid),
            )
            if relay is not None:
                relay.start()
            try:
                yield
            finally:
                if relay is not None:
                    await anyio.to_thread.run_sync(relay.stop)
                await engine.dispose()
                resources.close()

        async def provide_session() -> AsyncIterator[AsyncSession]:
            async with sessions() as session:
                yield session

        send_owed = self.send_owed or resources.send_owed
        dependencies = {
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "sessions": Provide(lambda: sessions, sync_to_thread=False),
            "validator": Provide(lambda: validator, sync_to_thread=False),
            "hand_over": Provide(lambda: hand_over, sync_to_thread=False),
            "send_owed": Provide(lambda: send_owed, sync_to_thread=False),
            "sync_sessions": Provide(lambda: sync_sessions, sync_to_thread=False),
            "session": Provide(provide_session),
            "principal": Provide(provide_principal),
            "feed": Provide(lambda: feed, sync_to_thread=False),
        }
        api = Router(
            path=settings.api_prefix,
            route_handlers=[
                index.index,
                index.blacklist,
                *definitions.ROUTES,
                *workflows.ROUTES,
                *workflow_events.ROUTES,
                *jobs.ROUTES,
                *statistics.ROUTES,
                *workers.ROUTES,
                metrics_route(settings, sync_sessions),
                *notifications.ROUTES,
                docs_router(settings),
            ],
            guards=[authorization_guard(settings)],
            dependencies=dependencies,
            exception_handlers=EXCEPTION_HANDLERS,
        )
        session_route = Router(
            path=settings.sessions_path,
            route_handlers=[index.create_session],
            dependencies=dependencies,
            exception_handlers=EXCEPTION_HANDLERS,
        )
        app_config.route_handlers.extend([api, session_route])
        app_config.lifespan.extend([lifespan, feed])
        return app_config


def create_app(settings: Settings, launcher: Launcher | None = None, send_owed: OwedSender | None = None) -> Litestar:
    """StepFlow on its own (``stepflow serve``): the plugin, the OpenAPI document and docs,
    and the original's bodies for unknown routes."""
    return Litestar(
        plugins=[StepFlow(settings, launcher, send_owed)],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(settings),
        logging_config=None,
    )
