"""Error bodies of the API (api.md §1.5, ours.md §3.2–3.3) and their exception handlers.

Handlers raise these; the app turns them into the JSON bodies clients of the original
expect. Nothing here ever answers 500 for bad input.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from sqlalchemy.exc import DataError, DBAPIError


class ApiError(Exception):
    """An error with a status code and a ready JSON body."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(status_code, body)
        self.status_code = status_code
        self.body = body


def unauthenticated() -> ApiError:
    return ApiError(401, {"errors": {"detail": "You need to login to view this resource"}})


def forbidden() -> ApiError:
    return ApiError(403, {"errors": {"detail": "You are not authorized to view this resource"}})


def reason(status_code: int, text: str) -> ApiError:
    """Body kind A: ``{"errors":[{"reason", "message":"Incorrect parameters"}]}``."""
    return ApiError(status_code, {"errors": [{"reason": text, "message": "Incorrect parameters"}]})


def invalid(field: str, message: str = "is invalid") -> ApiError:
    """Body kind B for one malformed field (422)."""
    return ApiError(422, {"errors": {field: [message]}})


def not_found(resource: str, identifier: object) -> ApiError:
    return ApiError(404, {"errors": {"detail": f"{resource} {identifier} not found"}})


def handle_api_error(_: Request, error: ApiError) -> Response:
    return Response(content=error.body, status_code=error.status_code)


def handle_validation_error(_: Request, error: ValidationException) -> Response:
    """Litestar's own validation (path parameters, bodies) as body kind B."""
    fields: dict[str, list[str]] = {}
    for entry in error.extra if isinstance(error.extra, list) else []:
        if isinstance(entry, dict):
            fields.setdefault(str(entry.get("key") or "body"), []).append(str(entry.get("message") or "is invalid"))
    return Response(content={"errors": fields or {"body": [str(error.detail)]}}, status_code=422)


def handle_not_found(_: Request, error: NotFoundException) -> Response:
    return Response(content="Not found", status_code=404, media_type="text/plain")


def handle_http_error(_: Request, error: HTTPException) -> Response:
    return Response(content={"errors": {"detail": error.detail}}, status_code=error.status_code)


log = structlog.get_logger(__name__)


def handle_data_error(request: Request, error: DBAPIError) -> Response:
    """A value the database cannot hold (an integer beyond 64 bits…): the client's input, not a bug.

    Routes validate their inputs; this is the net under them, so such input is never a 500."""
    if isinstance(error, DataError):
        log.info("value out of range for the database", path=request.url.path)
        return Response(content={"errors": {"detail": "a value is out of range"}}, status_code=422)
    return handle_unexpected(request, error)


def handle_unexpected(request: Request, error: Exception) -> Response:
    """A bug: logged with its traceback, answered 500 without details."""
    log.error("unhandled error", path=request.url.path, method=request.method, exc_info=error)
    return Response(content={"errors": {"detail": "Internal server error"}}, status_code=500)


EXCEPTION_HANDLERS = {
    Exception: handle_unexpected,
    DBAPIError: handle_data_error,
    ApiError: handle_api_error,
    ValidationException: handle_validation_error,
    NotFoundException: handle_not_found,
    HTTPException: handle_http_error,
}
