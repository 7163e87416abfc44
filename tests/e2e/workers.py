"""Start and stop real MCAI SDK workers (``tests/e2e/worker/worker.py``) as subprocesses.

Typical use in an end-to-end test::

    worker = start_worker(
        "job_copy",
        amqp={"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest", "vhost": vhost},
        backend_url=f"http://127.0.0.1:{port}/api",
        username="worker@example.com",
        password="secret",
        work_dir=tmp_path,
        log_file=tmp_path / "orders.jsonl",
    )
    try:
        wait_until_consuming("job_copy", amqp=amqp, worker=worker)
        ...
    finally:
        worker.stop()

The backend at ``backend_url`` must answer ``POST /sessions``, ``GET /step_flow`` and, for a
version >= 1.6.0, ``GET /step_flow/blacklist`` (``{"data": [], "total": 0}``); otherwise the
SDK exits at start-up. ``read_order_log`` parses the JSON lines the worker writes per job.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypedDict

import pika
import pika.exceptions

#: Folder holding the worker script and the ``pyproject.toml`` the SDK reads (its cwd).
WORKER_DIR: Path = Path(__file__).resolve().parent / "worker"
WORKER_SCRIPT: Path = WORKER_DIR / "worker.py"

_counter = itertools.count(1)
_running: set[SdkWorker] = set()


class AmqpConfig(TypedDict):
    """RabbitMQ connection settings (plain AMQP, no TLS)."""

    host: str
    port: int
    user: str
    password: str
    vhost: str


class WorkerNotConsumingError(TimeoutError):
    """The worker did not start consuming its queue in time (or exited)."""


class SdkWorker:
    """One copy-worker subprocess built on the official MCAI worker SDK.

    Arguments:
        queue: the job queue (``AMQP_QUEUE``), e.g. ``"job_copy"``.
        amqp: broker settings.
        backend_url: ``BACKEND_HOSTNAME``, e.g. ``"http://127.0.0.1:4000/api"``.
        username, password: ``BACKEND_USERNAME`` / ``BACKEND_PASSWORD``.
        work_dir: folder for the worker's console capture; relative job paths resolve here.
        log_file: ``COPY_WORKER_LOG``: one JSON line per received order.
        fail: when set, every job fails with ``job_error`` "RuntimeError: <fail>".
        output_file: console (stdout+stderr) capture; default ``work_dir/worker-<queue>-<n>.out``.
        rust_log: ``RUST_LOG`` level of the SDK.
        extra_env: more environment variables (e.g. ``MESSAGE_SOFT_LIMIT``).
    """

    def __init__(
        self,
        queue: str,
        *,
        amqp: Mapping[str, Any],
        backend_url: str,
        username: str,
        password: str,
        work_dir: Path,
        log_file: Path,
        fail: str | None = None,
        output_file: Path | None = None,
        rust_log: str = "info",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.queue = queue
        self.amqp: AmqpConfig = _amqp_config(amqp)
        self.work_dir = Path(work_dir)
        self.log_file = Path(log_file)
        self.output_file = (
            Path(output_file) if output_file is not None else self.work_dir / f"worker-{queue}-{next(_counter)}.out"
        )
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1",
            "RUST_LOG": rust_log,
            "AMQP_TLS": "false",
            "AMQP_HOSTNAME": self.amqp["host"],
            "AMQP_PORT": str(self.amqp["port"]),
            "AMQP_USERNAME": self.amqp["user"],
            "AMQP_PASSWORD": self.amqp["password"],
            "AMQP_VHOST": self.amqp["vhost"],
            "AMQP_QUEUE": queue,
            "BACKEND_HOSTNAME": backend_url,
            "BACKEND_USERNAME": username,
            "BACKEND_PASSWORD": password,
            "COPY_WORKER_LOG": str(self.log_file),
            "COPY_WORKER_WORK_DIR": str(self.work_dir),
        }
        if fail:
            self.env["COPY_WORKER_FAIL"] = fail
        if extra_env:
            self.env.update(extra_env)
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> SdkWorker:
        """Launch the subprocess (returns immediately; see :meth:`wait_until_consuming`)."""
        if self.process is not None:
            raise RuntimeError(f"worker for {self.queue} already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        self._output = self.output_file.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT)],
            cwd=WORKER_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        _running.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the worker, SIGKILL it after ``timeout`` seconds; wait; return its exit code."""
        process = self.process
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
            return process.returncode
        finally:
            _running.discard(self)
            if self._output is not None:
                self._output.close()
                self._output = None

    def kill(self) -> int | None:
        """SIGKILL the worker (simulates a crash: no ``worker_terminated``) and wait."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        process.wait()
        return self.stop()

    @property
    def pid(self) -> int | None:
        """Process id, or ``None`` before :meth:`start`."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self.process is not None and self.process.poll() is None

    def wait_until_consuming(self, timeout: float = 30.0, min_consumers: int = 1) -> None:
        """Block until this worker's queue has ``min_consumers`` consumers; see module function."""
        wait_until_consuming(self.queue, amqp=self.amqp, worker=self, timeout=timeout, min_consumers=min_consumers)

    # -- diagnostics ------------------------------------------------------------------------

    def output_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the worker's console capture (for assertion messages)."""
        try:
            text = self.output_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "<no output>"
        return "\n".join(text.splitlines()[-lines:])

    def orders(self) -> list[dict[str, Any]]:
        """Orders this worker logged so far (see :func:`read_order_log`)."""
        return read_order_log(self.log_file)

    def __enter__(self) -> SdkWorker:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SdkWorker(queue={self.queue!r}, pid={self.pid}, output={str(self.output_file)!r})"


def start_worker(
    queue: str,
    *,
    amqp: Mapping[str, Any],
    backend_url: str,
    username: str,
    password: str,
    work_dir: Path,
    log_file: Path,
    fail: str | None = None,
    **options: Any,
) -> SdkWorker:
    """Create and start an :class:`SdkWorker` (other keyword options: see the class)."""
    return SdkWorker(
        queue,
        amqp=amqp,
        backend_url=backend_url,
        username=username,
        password=password,
        work_dir=work_dir,
        log_file=log_file,
        fail=fail,
        **options,
    ).start()


def wait_until_consuming(
    queue: str,
    *,
    amqp: Mapping[str, Any],
    worker: SdkWorker | None = None,
    timeout: float = 30.0,
    min_consumers: int = 1,
    interval: float = 0.1,
) -> None:
    """Poll RabbitMQ until ``queue`` has at least ``min_consumers`` consumers.

    Uses a passive ``queue.declare`` on a fresh channel per try (a passive declare of a missing
    queue closes the channel with 404). Raises :class:`WorkerNotConsumingError`, with the tail
    of the worker's console output, on timeout or as soon as ``worker`` has exited.
    """
    config = _amqp_config(amqp)
    deadline = time.monotonic() + timeout
    consumers = 0
    connection = pika.BlockingConnection(_connection_parameters(config))
    try:
        while True:
            if worker is not None and worker.process is not None:
                code = worker.process.poll()
                if code is not None:
                    raise WorkerNotConsumingError(
                        f"worker for {queue} exited with code {code} before consuming:\n{worker.output_tail()}"
                    )
            channel = connection.channel()
            try:
                consumers = channel.queue_declare(queue, passive=True).method.consumer_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                consumers = 0  # queue not declared yet
            if consumers >= min_consumers:
                return
            if time.monotonic() >= deadline:
                tail = worker.output_tail() if worker is not None else "<no worker given>"
                raise WorkerNotConsumingError(
                    f"queue {queue} has {consumers} consumer(s) after {timeout}s "
                    f"(wanted {min_consumers}); worker output:\n{tail}"
                )
            connection.sleep(interval)
    finally:
        if connection.is_open:
            connection.close()


def read_order_log(log_file: Path) -> list[dict[str, Any]]:
    """Parse the ``COPY_WORKER_LOG`` file: ``[{"job_id": int, "parameters": {...}, "pid": int}, ...]``."""
    try:
        text = Path(log_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stop_all() -> None:
    """Stop every worker started by this module that is still registered."""
    for worker in list(_running):
        worker.stop()


def _amqp_config(amqp: Mapping[str, Any]) -> AmqpConfig:
    """Validate and normalise a broker settings mapping."""
    missing = {"host", "port", "user", "password", "vhost"} - set(amqp)
    if missing:
        raise ValueError(f"amqp settings lack {sorted(missing)}")
    return AmqpConfig(
        host=str(amqp["host"]),
        port=int(amqp["port"]),
        user=str(amqp["user"]),
        password=str(amqp["password"]),
        vhost=str(amqp["vhost"]),
    )


def _connection_parameters(config: AmqpConfig) -> pika.ConnectionParameters:
    """pika connection parameters for ``config``."""
    return pika.ConnectionParameters(
        host=config["host"],
        port=config["port"],
        virtual_host=config["vhost"],
        credentials=pika.PlainCredentials(config["user"], config["password"]),
        connection_attempts=3,
        retry_delay=0.5,
    )


atexit.register(stop_all)
