"""Per-process resources of the actors, bridge and clock, created on first use.

Settings come from the environment once; the database engine and the order publisher are
shared by the threads of a process (the publisher keeps one connection per thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from stepflow.actors.dispatch import Owed, dispatch
from stepflow.db import session_factory, sync_engine
from stepflow.settings import Settings, load_settings
from stepflow.wire.dead_letters import declare_dead_letters
from stepflow.wire.publisher import ConfirmingPublisher


@cache
def settings() -> Settings:
    return load_settings()


@cache
def sessions() -> sessionmaker[Session]:
    return session_factory(sync_engine(settings()))


@cache
def order_publisher() -> ConfirmingPublisher:
    return ConfirmingPublisher(settings().amqp_url)


@cache
def dead_letter_publisher() -> ConfirmingPublisher:
    return ConfirmingPublisher(settings().amqp_url, declare=declare_dead_letters)


def send_owed(owed: Owed) -> int:
    """Send what a committed transaction owes (orders, notifications, direct messages)."""
    from stepflow.actors.notifications import run_notification

    return dispatch(sessions(), order_publisher(), run_notification.send, owed)


@contextmanager
def transaction() -> Iterator[Session]:
    """A session inside one transaction, committed when the block ends without error."""
    with sessions()() as session, session.begin():
        yield session
