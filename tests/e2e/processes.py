"""StepFlow's own processes (web, actors, bridge, clock) as subprocesses of a test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pika
import pika.exceptions

PROCESS_TYPES = ("serve", "actors", "bridge", "clock")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started:
    SIGTERM to its group, SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:  # it exited between the poll and the signal
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StepFlowProcesses:
    """Runs ``stepflow <type>`` for each process type with one environment; logs to files."""

    def __init__(
        self,
        environment: Mapping[str, str],
        log_dir: Path,
        actors_options: Sequence[str] = ("--processes", "1", "--threads", "4"),
    ) -> None:
        self.environment = dict(environment)
        self.log_dir = log_dir
        self.actors_options = list(actors_options)
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def port(self) -> int:
        return int(self.environment["PORT"])

    def start(self, *kinds: str) -> None:
        for kind in kinds:
            arguments = self.actors_options if kind == "actors" else []
            log = open(self.log_dir / f"{kind}.log", "ab")  # noqa: SIM115 (closed with the process)
            self.running[kind] = subprocess.Popen(
                [sys.executable, "-m", "stepflow.cli", kind, *arguments],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        if "serve" in kinds:
            self.wait_for_web()
        if "bridge" in kinds:
            self.wait_for_consumer("bridge", "job_completed")
        if "actors" in kinds:
            self.wait_for_consumer("actors", "stepflow.jobs")

    def wait_for_consumer(self, kind: str, queue: str, timeout: float = 60.0) -> None:
        """Wait until ``kind`` consumes ``queue`` (a passive declare per try: a missing queue
        closes the channel)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.environment["AMQP_URL"]))
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.running[kind].poll() is not None:
                    raise RuntimeError(f"stepflow {kind} exited:\n{self.tail(kind)}")
                channel = connection.channel()
                try:
                    if channel.queue_declare(queue, passive=True).method.consumer_count:
                        channel.close()
                        return
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass
                connection.sleep(0.1)
        finally:
            connection.close()
        raise TimeoutError(f"stepflow {kind} does not consume {queue}:\n{self.tail(kind)}")

    def stop(self, *kinds: str) -> None:
        for kind in kinds or tuple(self.running):
            process = self.running.pop(kind, None)
            if process is None:
                continue
            stop_group(process)

    def wait_for_web(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.running["serve"]
            if process.poll() is not None:
                raise RuntimeError(f"stepflow serve exited:\n{self.tail('serve')}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/step_flow", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"stepflow serve did not answer:\n{self.tail('serve')}")

    def tail(self, kind: str, lines: int = 60) -> str:
        path = self.log_dir / f"{kind}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def tails(self) -> str:
        return "\n".join(f"--- {kind} ---\n{self.tail(kind)}" for kind in PROCESS_TYPES)
