"""JSON views shared by several resources (api.md §8): datetimes, rights, statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stepflow.models import Right


def naive(moment: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, as the original's naive timestamps (ours.md A9)."""
    if moment is None:
        return None
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    # Lists format thousands of these per page: slicing the ISO text is the cheapest way.
    return moment.isoformat(timespec="seconds")[:19]


def utc(moment: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (progression and worker datetimes)."""
    text = naive(moment)
    return None if text is None else text + "Z"


def right_view(right: Right) -> dict[str, Any]:
    return {
        "id": right.id,
        "action": right.action,
        "groups": list(right.groups),
        "inserted_at": naive(right.inserted_at),
    }
