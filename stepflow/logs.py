"""Structured JSON logs (structlog) for every process.

Context such as ``workflow_id`` and ``job_id`` is bound with ``structlog.contextvars`` where
it is known, so every line about a workflow carries it. A websocket's ``?token=`` (a
credential browsers can only send in the URL) is redacted from every line, ours and the
libraries' (uvicorn logs the path and query of each websocket it accepts).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_QUERY_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")


def redact_query_tokens(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any ``token=`` query parameter in the message with ``[redacted]``."""
    event = event_dict.get("event")
    if isinstance(event, str) and "token=" in event:
        event_dict["event"] = _QUERY_TOKEN.sub(r"\1[redacted]", event)
    return event_dict


def configure_logging(level: str = "info") -> None:
    """Render every log line, ours and the libraries', as one JSON object on stderr."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_query_tokens,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("pika").setLevel(max(numeric, logging.WARNING))
