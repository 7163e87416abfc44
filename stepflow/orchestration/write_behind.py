"""The rows a transaction writes late: all together, just before its next statement.

Deciding a batch of job answers creates jobs, moves jobs and adds history rows, one answer
after the other. Written as they happen, each would cost a round trip to PostgreSQL; a
:class:`WriteBehind` keeps them instead and writes them, one statement per kind (the new jobs,
the moved jobs, the history rows), just before the transaction's next statement, whatever it
is (a read sees them), or at commit. Their ids are reserved from the tables' sequences ahead
(``nextval``: with the jobs a batch reads, one per answer, then in doubling blocks), so a
caller gets a row's id at once. The ids a transaction uses are ascending, in the order it
asked for them (a step's jobs are in input order); ids it leaves unused are never used.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, event, func, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from stepflow.models import Job, JobStatus

_JOBS = Job.__table__
JOBS, HISTORY = "jobs", "job_status"
"""The tables whose ids a transaction reserves."""

_INSERT = {JOBS: insert(_JOBS), HISTORY: insert(JobStatus.__table__)}
"""Inserts rows, their ids given. A job that exists already for its workflow, step and input
is an error (``uq_jobs_workflow_step_input``): the counters said the step had none there."""

_MOVE_JOBS = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"))
    .values(
        state=bindparam("state"),
        parameters=func.coalesce(bindparam("parameters", type_=JSONB(none_as_null=True)), _JOBS.c.parameters),
        updated_at=bindparam("now"),
    )
)
"""Writes moved jobs: their state, their parameters when given (NULL keeps them), ``updated_at``."""

_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)")
"""Reserves ``count`` ids of ``table``, ascending."""


def reserved_id(table: str) -> Any:
    """A column reserving one id of ``table`` per row read (``WriteBehind.reserve``)."""
    return func.nextval(func.pg_get_serial_sequence(table, "id"))


class WriteBehind:
    """One transaction's rows written late (see the module docstring), on ``connection``."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._ids: dict[str, list[int]] = {JOBS: [], HISTORY: []}
        self._fetch: dict[str, int] = {JOBS: 8, HISTORY: 8}
        self._rows: dict[str, list[dict[str, Any]]] = {JOBS: [], HISTORY: []}
        self._moves: dict[int, dict[str, Any]] = {}
        self._writing = False
        event.listen(connection, "before_execute", lambda _, statement, *__: self.write(statement))

    def reserve(self, table: str, ids: Iterable[int]) -> None:
        """Keep ids of ``table`` reserved by a read (``reserved_id``) for the next rows."""
        self._ids[table] = sorted([*self._ids[table], *ids])
        self._fetch[table] = max(self._fetch[table], len(self._ids[table]))

    def ids(self, table: str, count: int) -> list[int]:
        """``count`` new ids of ``table``, ascending: reserved ones first, then fetched."""
        held = self._ids[table]
        if len(held) < count:
            wanted = max(count - len(held), self._fetch[table])
            self._fetch[table] = 2 * wanted
            held += sorted(self._connection.execute(_NEXT_IDS, {"table": table, "count": wanted}).scalars())
        taken, self._ids[table] = held[:count], held[count:]
        return taken

    def insert(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Insert ``rows`` (with their ids) before the next statement."""
        self._rows[table] += rows

    def move_job(self, job_id: int, state: str, parameters: list[Any] | None, now: datetime) -> None:
        """Set the job's state (and parameters, unless None) before the next statement."""
        move = self._moves.setdefault(job_id, {"job_id": job_id, "parameters": None})
        move["state"], move["now"] = state, now
        if parameters is not None:
            move["parameters"] = parameters

    def write(self, statement: object = None) -> None:
        """Write what waits (new jobs, moved jobs, history rows: one statement each), unless
        ``statement`` only reserves ids."""
        if statement is _NEXT_IDS or self._writing:  # its own statements fire this event too
            return
        self._writing = True
        try:
            self._write_all()
        finally:
            self._writing = False

    def _write_all(self) -> None:
        if self._rows[JOBS]:
            rows, self._rows[JOBS] = self._rows[JOBS], []
            self._connection.execute(_INSERT[JOBS], rows)
        if self._moves:
            moves, self._moves = list(self._moves.values()), {}
            self._connection.execute(_MOVE_JOBS, moves)
        if self._rows[HISTORY]:
            rows, self._rows[HISTORY] = self._rows[HISTORY], []
            self._connection.execute(_INSERT[HISTORY], rows)
