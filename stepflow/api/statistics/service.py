"""Workflow statistics (api.md §7.1): status history rows counted per state and time bin.

Every ``workflow_status`` row between ``start`` and ``end`` (inclusive, at second precision,
as the original's second-precision timestamps) of a workflow the user may ``view`` is one
event. Bin ``k`` covers ``]end - (k+1)·interval, end - k·interval]``: bin 0 is the most
recent. Only non-empty bins are returned, in ascending order. Ours adds the ``aborted`` and
``paused`` states (ours.md §3.4) to the original's four.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, literal, select
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.engine.states import WorkflowState
from stepflow.models import Workflow, WorkflowStatus
from stepflow.queries import visible_workflows
from stepflow.security import Principal

STATES = (
    WorkflowState.COMPLETED,
    WorkflowState.ERROR,
    WorkflowState.PROCESSING,
    WorkflowState.PENDING,
    WorkflowState.ABORTED,
    WorkflowState.PAUSED,
)
"""The states counted: the original's four, then ours."""

NUMBER_BINS = 60
"""The default ``time_interval`` splits the window in this many bins (the original's default)."""

DEFAULT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    interval: int
    """Bin width in seconds, at least 1."""


def window(start: datetime | None, end: datetime | None, interval: int | None, now: datetime | None = None) -> Window:
    """The defaults of api.md §7.1, everything truncated to whole seconds (UTC)."""
    end = (end or now or datetime.now(UTC)).replace(microsecond=0)
    if start is None:
        try:
            start = end - DEFAULT_WINDOW
        except OverflowError:  # an end_date on 0001-01-01
            start = datetime.min.replace(tzinfo=UTC)
    start = start.replace(microsecond=0)
    if interval is None:
        interval = int((end - start).total_seconds()) // NUMBER_BINS
    return Window(start, end, max(interval, 1))


def bin_date(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC, space separator: ``NaiveDateTime.to_string``)."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


async def workflow_statistics(
    session: AsyncSession, principal: Principal, frame: Window, identifiers: Sequence[str] | None
) -> dict[str, Any]:
    """The ``data`` object of the response: totals per state and the non-empty bins."""
    end = literal(frame.end, TIMESTAMP(timezone=True))
    seconds = func.extract("epoch", end - func.date_trunc("second", WorkflowStatus.inserted_at))
    bin_number = cast(func.floor(seconds / frame.interval), Integer).label("bin")
    conditions: list[ColumnElement[bool]] = [
        WorkflowStatus.inserted_at >= frame.start,
        WorkflowStatus.inserted_at <= frame.end.replace(microsecond=999_999),
        WorkflowStatus.state.in_(STATES),
        visible_workflows(principal.groups),
    ]
    if identifiers:
        conditions.append(Workflow.identifier.in_(list(identifiers)))
    rows = await session.execute(
        select(WorkflowStatus.state, bin_number, func.count())
        .join(Workflow, Workflow.id == WorkflowStatus.workflow_id)
        .where(*conditions)
        .group_by(WorkflowStatus.state, bin_number)
    )
    totals = dict.fromkeys(STATES, 0)
    bins: dict[int, dict[str, int]] = {}
    for state, number, count in rows:
        totals[state] += count
        bins.setdefault(number, dict.fromkeys(STATES, 0))[state] += count
    width = timedelta(seconds=frame.interval)
    return {
        **totals,
        "bins": [
            {
                "bin": number,
                "start_date": bin_date(frame.end - (number + 1) * width),
                "end_date": bin_date(frame.end - number * width),
                **bins[number],
            }
            for number in sorted(bins)
        ],
    }
