"""Parsing query strings: integers and lists in the three forms clients send.

``key[]=a&key[]=b``, repeated ``key=a&key=b`` and ``key=a,b`` all give ``["a", "b"]``
(ours.md, API decision 13). A malformed value is a 422 naming the field.
"""

from __future__ import annotations

from litestar import Request

from stepflow.api.errors import invalid


def query_list(request: Request, key: str) -> list[str] | None:
    values = request.query_params.getall(f"{key}[]", []) + request.query_params.getall(key, [])
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


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
