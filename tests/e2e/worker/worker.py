"""Copy worker: a real MCAI worker (official ``mcai-worker-sdk``) for StepFlow end-to-end tests.

Run it from this folder (the SDK reads ``./pyproject.toml``)::

    AMQP_TLS=false AMQP_HOSTNAME=127.0.0.1 AMQP_PORT=5672 AMQP_USERNAME=guest \
    AMQP_PASSWORD=guest AMQP_VHOST=/ AMQP_QUEUE=job_copy \
    BACKEND_HOSTNAME=http://127.0.0.1:4000/api BACKEND_USERNAME=... BACKEND_PASSWORD=... \
    python worker.py

Behaviour of one job:

1. append ``{"job_id": ..., "parameters": {...}, "pid": ...}`` (the values received) as one JSON line to
   ``$COPY_WORKER_LOG`` when that variable is set;
2. with ``sleep_ms``: publish progression 10, then wait that long, returning early (the SDK
   then answers ``job_stopped``) when StepFlow sends ``stop_process``;
3. raise ``RuntimeError($COPY_WORKER_FAIL)`` when that variable is non-empty (the SDK answers
   ``job_error`` with message ``"RuntimeError: <value>"``);
4. publish progression 50;
5. with a ``destination_path``: write it (creating its folder) with the content of the source
   file(s) -- or the source path text when the file does not exist -- plus a line
   ``job <job_id>``; when destination == source the line is appended in place. Answer
   ``destination_paths = [destination_path]``, else ``[]``.

Relative paths are resolved against ``$COPY_WORKER_WORK_DIR`` (default: the current directory).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import mcai_worker_sdk as mcai

#: Names of the declared parameters, in declaration order.
PARAMETER_NAMES: tuple[str, ...] = (
    "source_path",
    "destination_path",
    "source_paths",
    "requirements",
    "message",
    "sleep_ms",
)


class CopyWorkerParameters(mcai.WorkerParameters):
    """Parameters accepted by the copy worker (all optional).

    The SDK turns this class into the JSON Schema used to validate orders
    (``additionalProperties: false``; a field is required unless typed ``Optional``;
    ``Optional`` fields are not nullable, so orders omit them instead of sending ``null``).
    ``source_paths`` and ``requirements`` would be added by the SDK anyway; they are declared
    here so they appear as attributes and are reset between jobs.
    """

    source_path: str | None = None
    destination_path: str | None = None
    source_paths: list[str] | None = None
    requirements: dict | None = None
    message: str | None = None
    sleep_ms: int | None = None


def _received_values(parameters: Any) -> dict[str, Any]:
    """Return the parameter values of the current order (absent ones are ``None`` and skipped)."""
    values = {name: getattr(parameters, name, None) for name in PARAMETER_NAMES}
    return {name: value for name, value in values.items() if value is not None}


def _reset_parameters(parameters: Any) -> None:
    """Clear the parameter attributes after a job.

    The Python SDK passes the parameter *class* itself to ``process`` and only sets the
    attributes present in each order, so an optional value would otherwise leak into the
    next job that omits it.
    """
    for name in PARAMETER_NAMES:
        setattr(parameters, name, None)


def _resolve(path: str) -> Path:
    """Resolve ``path`` against ``$COPY_WORKER_WORK_DIR`` when it is relative."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    return Path(os.environ.get("COPY_WORKER_WORK_DIR") or ".") / candidate


def _source_content(source: str) -> str:
    """Return the text of ``source`` if it is a file, else the path text itself."""
    path = _resolve(source)
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    return source


def _with_newline(text: str) -> str:
    """Return ``text`` ending with a newline (unless empty), so an appended line stays separate."""
    return text if not text or text.endswith("\n") else text + "\n"


def _write_destination(destination: str, sources: list[str], job_id: int) -> None:
    """Write ``destination`` from ``sources`` plus the line ``job <job_id>``.

    A destination equal to its single source is appended to in place (a StepFlow child step
    without ``destination_filename`` gets ``destination_path == source_path``). Otherwise the
    file is written to a temporary name and renamed, so a job waiting for it through
    ``requirements`` never sees a half-written file.
    """
    target = _resolve(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    job_line = f"job {job_id}\n"
    if len(sources) == 1 and _resolve(sources[0]) == target and target.is_file():
        existing = target.read_text(encoding="utf-8", errors="replace")
        with target.open("a", encoding="utf-8") as handle:
            handle.write(job_line if not existing or existing.endswith("\n") else "\n" + job_line)
        return
    body = "".join(_with_newline(_source_content(source)) for source in sources)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(body + job_line, encoding="utf-8")
    os.replace(temporary, target)


def _log_order(job_id: int, values: dict[str, Any]) -> None:
    """Append one JSON line describing the received order to ``$COPY_WORKER_LOG`` if set."""
    log_path = os.environ.get("COPY_WORKER_LOG")
    if not log_path:
        return
    line = json.dumps({"job_id": job_id, "parameters": values, "pid": os.getpid()}, sort_keys=True) + "\n"
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    # One write() on an O_APPEND descriptor, so lines of concurrent workers do not interleave.
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, line.encode("utf-8"))
    finally:
        os.close(descriptor)


class CopyWorker(mcai.Worker):
    """MCAI worker that copies/appends files and records every order it receives."""

    def setup(self) -> None:
        """Nothing to prepare; present to document the SDK hook."""

    def process(self, channel: Any, parameters: Any, job_id: int) -> dict[str, list[str]]:
        """Process one job order; see the module docstring for the exact behaviour."""
        try:
            values = _received_values(parameters)
            _log_order(job_id, values)

            sleep_ms = values.get("sleep_ms")
            if sleep_ms:
                # A long job: tell StepFlow it runs, then wait in slices so stop_process ends it.
                channel.publish_job_progression(10)
                deadline = time.monotonic() + sleep_ms / 1000
                while time.monotonic() < deadline:
                    if channel.is_stopped():
                        return {"destination_paths": []}
                    time.sleep(0.05)

            failure = os.environ.get("COPY_WORKER_FAIL")
            if failure:
                raise RuntimeError(failure)

            channel.publish_job_progression(50)

            destination: str | None = values.get("destination_path")
            if destination is None:
                return {"destination_paths": []}
            source: str | None = values.get("source_path")
            sources = [source] if source is not None else list(values.get("source_paths") or [])
            _write_destination(destination, sources, job_id)
            return {"destination_paths": [destination]}
        finally:
            _reset_parameters(parameters)


def main() -> None:
    """Start the worker; blocks until the process is stopped."""
    description = mcai.WorkerDescription(__package__)
    CopyWorker(CopyWorkerParameters, description).start()


if __name__ == "__main__":
    main()
