"""JSON views shared by several resources (api.md §8): datetimes, rights, statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stepflow.models import Right


def naive(moment: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, as the original's naive timestamps (ours.md A9)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def utc(moment: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (progression and worker datetimes)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def right_view(right: Right) -> dict[str, Any]:
    return {
        "id": right.id,
        "action": right.action,
        "groups": list(right.groups),
        "inserted_at": naive(right.inserted_at),
    }
