"""Parsing query strings: integers, lists in the three forms clients send, dates.

``key[]=a&key[]=b``, repeated ``key=a&key=b`` and ``key=a,b`` all give ``["a", "b"]``
(ours.md, API decision 13). A malformed value is a 422 naming the field.

Handlers declare their parameters with types (``Page``, ``Size``, ``list[str] | None``…) so
Litestar validates scalars (422 naming the field) and the OpenAPI document shows them; a
list parameter is then completed with its ``key[]`` form by ``as_list``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from litestar import Request
from litestar.params import Parameter

from stepflow.api.errors import invalid

LIST_FORMS = "Also accepted as `key[]=a&key[]=b` and `key=a,b`."

MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1

Page = Annotated[int, Parameter(ge=0, le=MAX_INT, description="Zero-based page number.")]
Size = Annotated[int, Parameter(ge=1, le=MAX_INT, description="Page size.")]
OptionalBigInt = Annotated[int | None, Parameter(ge=-MAX_BIGINT - 1, le=MAX_BIGINT)]
"""An optional integer a ``bigint`` column can hold (ids, versions…)."""

_ID = re.compile(r"^[0-9]{1,19}$")


def parse_id(raw: str, key: str = "id") -> int:
    """A path id: ASCII digits that fit a ``bigint``, else 422 naming ``key``."""
    if not _ID.match(raw) or int(raw) > MAX_BIGINT:
        raise invalid(key)
    return int(raw)


def text_filter(key: str, value: str | None) -> str | None:
    """A text filter: None when empty; 422 when PostgreSQL cannot hold it (a NUL character)."""
    if not value:
        return None
    if "\x00" in value:
        raise invalid(key)
    return value


def query_list(request: Request, key: str) -> list[str] | None:
    values = request.query_params.getall(f"{key}[]", []) + request.query_params.getall(key, [])
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def as_list(request: Request, key: str, values: list[str] | None) -> list[str] | None:
    """``values`` (the typed ``key=a&key=b`` parameter) plus the ``key[]`` form, commas split.

    None when the parameter is absent or only empty values were sent.
    """
    raw = request.query_params.getall(f"{key}[]", []) + list(values or [])
    parts = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    if any("\x00" in part for part in parts):
        raise invalid(key)
    return parts or None


def as_ints(key: str, values: list[str] | None) -> list[int] | None:
    if values is None:
        return None
    try:
        numbers = [int(value) for value in values]
    except ValueError:
        raise invalid(key) from None
    if any(not -MAX_BIGINT - 1 <= number <= MAX_BIGINT for number in numbers):
        raise invalid(key)
    return numbers


def query_int(request: Request, key: str, default: int | None = None, *, minimum: int | None = None) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(key) from None
    if minimum is not None and value < minimum:
        raise invalid(key, f"must be at least {minimum}")
    return value


def pagination(request: Request) -> tuple[int, int]:
    """``page`` (zero-based, default 0) and ``size`` (default 10)."""
    page = query_int(request, "page", 0, minimum=0)
    size = query_int(request, "size", 10, minimum=1)
    assert page is not None and size is not None
    return page, size


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _aware(moment: datetime) -> datetime:
    """A naive value is UTC (the API emits naive UTC timestamps); an offset is honoured."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_datetime(key: str, raw: str) -> datetime:
    """``YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM]`` (a time part is required)."""
    text = raw.strip()
    if _DATE_ONLY.match(text):
        raise invalid(key, "is invalid: expected YYYY-MM-DD HH:MM:SS")
    try:
        return _aware(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise invalid(key, "is invalid: expected YYYY-MM-DD HH:MM:SS") from None


def parse_bound(key: str, raw: str, *, end_of_day: bool) -> datetime:
    """A date or a datetime. A date alone means that day's start, or with ``end_of_day``
    the first instant of the next day (to compare with ``<``)."""
    text = raw.strip()
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise invalid(key) from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        try:
            return start + timedelta(days=1) if end_of_day else start
        except OverflowError:  # 9999-12-31: nothing is stored after it
            return datetime.max.replace(tzinfo=UTC)
    try:
        return _aware(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise invalid(key) from None


def is_date_only(raw: str) -> bool:
    return bool(_DATE_ONLY.match(raw.strip()))
