"""Work handed to one background thread, which takes everything waiting at once.

A :class:`Backlog` lets a hot thread hand off work that may follow later (writing dispatch
marks, sending what a committed transaction owes) without waiting for it: ``add`` returns at
once; the backlog's thread, started on first use, takes everything added since it last looked
and handles it in one call, so under load many additions share one database transaction or
one confirm wait, and a lone addition is handled at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

Item = TypeVar("Item")


class Backlog(Generic[Item]):
    """Items handed to ``handle`` (a list of everything waiting) on a thread named ``name``.

    ``handle`` runs on that thread only, and ``finish`` once on it when it stops (to close what
    the thread opened). An exception ``handle`` raises is logged and its items are dropped:
    whatever the backlog is for must survive that (the clock sends again what was not marked
    or not sent). After ``close``, ``add`` drops what it is given.
    """

    def __init__(
        self, handle: Callable[[list[Item]], object], name: str, finish: Callable[[], object] = lambda: None
    ) -> None:
        self._handle = handle
        self._finish = finish
        self._name = name
        self._waiting: list[Item] = []
        self._busy = False  # the thread is handling items it took
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, items: Iterable[Item]) -> None:
        """Hand ``items`` over (never blocks on what handling them costs)."""
        taken = list(items)
        with self._condition:
            if not taken or self._closed:
                return
            self._waiting += taken
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything added so far is handled (or dropped); False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Handle what waits, then stop the thread."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._waiting or self._closed)
                if not self._waiting:
                    break
                items, self._waiting = self._waiting, []
                self._busy = True
            try:
                self._handle(items)
            except Exception:
                log.exception("background work dropped", thread=self._name, count=len(items))
            with self._condition:
                self._busy = False
                self._condition.notify_all()
        self._finish()
