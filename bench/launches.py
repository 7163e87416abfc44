"""POST /workflows: requests/s and latency of ``stepflow serve`` against a bare Litestar anchor.

Both servers are one uvicorn process each on 127.0.0.1, started by this bench:

- StepFlow: ``stepflow serve`` alone (no actors: the ``launch_workflow`` messages just queue up
  in ``stepflow.workflows``), anonymous auth, a two-step definition; the body is
  ``{"workflow_identifier": "launches", "reference": "bench", "parameters": {}}``.
- anchor, measured in the same run: a Litestar app written below whose POST handler does the
  least a launch must do: one INSERT into a bench table and its commit (psycopg async through a
  ``psycopg_pool.AsyncConnectionPool`` of 10..20 connections, StepFlow's default pool of 10 +
  10 overflow; no ORM, no pre-ping: the floor of the database work, as the bare loops of
  ``bench/hops.py`` are), then one persistent publish to a bench queue, waiting for the broker's
  confirm (pika ``BlockingConnection`` in confirm mode, one connection per worker thread, kept
  open, called through ``anyio.to_thread`` as StepFlow's launcher is: aio-pika is not
  installed). Same uvicorn settings and garbage-collector settings as ``stepflow serve``.

The client is ``httpx.AsyncClient`` in this process (so it shares the 2 cores with the
servers, PostgreSQL and RabbitMQ), at concurrency 1 (``--requests-c1``, default 300) and 16
(``--requests-c16``, default 1,600), each run after ``--warmup`` requests (default 50) at its
concurrency on the same client. A run's rate = its requests / its wall time; p50 / p99 are per
request, in ms. ``--rounds`` rounds (default 3), each running anchor and StepFlow at c=1 then
at c=16 (the order of the pair alternates between rounds); the summary prints the medians over
the rounds and StepFlow / anchor of the median rates. At the end it checks that every launch
was handed over (no unsent outbox row, once StepFlow's launch relay, which hands launches over
after their responses, is done: it waits ``RELAY_WAIT`` seconds at most; one queued message per
request on either side).

    .venv/bin/python bench/launches.py [--rounds 3] [--requests-c1 300] [--requests-c16 1600]

It creates its own database and vhost and removes them at the end. (``launches.py
serve-anchor PORT DSN AMQP_URL`` is how it starts the anchor's process.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox import sandbox, stepflow_environment  # noqa: E402
from stepflow.migrate import upgrade  # noqa: E402
from tests.e2e.processes import StepFlowProcesses, free_port, stop_group  # noqa: E402
from tests.support import definition, source_paths, step, write_definitions  # noqa: E402

ANCHOR_QUEUE = "bench_launches"
ANCHOR_TABLE = "bench_launches"
STEPFLOW_LAUNCH_QUEUE = "stepflow.workflows"  # the launch_workflow actor's queue (README, RabbitMQ topology)
BODY = {"workflow_identifier": "launches", "reference": "bench", "parameters": {}}
CONCURRENCIES = (1, 16)


def anchor_app(dsn: str, amqp_url: str) -> Any:
    """The anchor: ``POST /workflows`` = one INSERT, one commit, one confirmed publish."""
    import anyio.to_thread
    from litestar import Litestar, get, post
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(dsn, min_size=10, max_size=20, open=False)
    local = threading.local()
    connections: list[pika.BlockingConnection] = []
    properties = pika.BasicProperties(delivery_mode=2)

    def publish(body: bytes) -> None:
        """Persistent publish on this thread's confirm-mode channel; returns once confirmed
        (pika raises if the broker nacks or returns it)."""
        channel = getattr(local, "channel", None)
        if channel is None:
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            connections.append(connection)
            channel = connection.channel()
            channel.confirm_delivery()
            local.channel = channel
        channel.basic_publish("", ANCHOR_QUEUE, body, properties, mandatory=True)

    @get("/")
    async def health() -> dict[str, str]:
        return {"anchor": "ok"}

    @post("/workflows", status_code=201)
    async def launch(data: dict[str, Any]) -> dict[str, Any]:
        async with pool.connection() as connection:
            async with connection.transaction():
                cursor = await connection.execute(
                    f"INSERT INTO {ANCHOR_TABLE} (identifier, reference, parameters) VALUES (%s, %s, %s) RETURNING id",
                    (data.get("workflow_identifier"), data.get("reference"), Jsonb(data.get("parameters") or {})),
                )
                row = await cursor.fetchone()
        workflow_id = row[0] if row else None
        await anyio.to_thread.run_sync(publish, b'{"workflow_id": %d}' % workflow_id)
        return {"data": {"id": workflow_id, "identifier": data.get("workflow_identifier")}}

    async def open_pool() -> None:
        await pool.open(wait=True)

    async def close() -> None:
        await pool.close()
        for connection in connections:
            try:
                connection.close()
            except Exception:  # noqa: S110 (a connection of an idle thread may be gone)
                pass

    return Litestar(route_handlers=[health, launch], on_startup=[open_pool], on_shutdown=[close])


def serve_anchor(port: int, dsn: str, amqp_url: str) -> None:
    """The anchor's process: uvicorn as ``stepflow serve`` runs it (same gc settings)."""
    import uvicorn

    app = anchor_app(dsn, amqp_url)
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


class Anchor:
    """The anchor's subprocess (its own session, logs to ``anchor.log``)."""

    def __init__(self, folder: Path, dsn: str, amqp_url: str) -> None:
        self.port = free_port()
        self.log_path = folder / "anchor.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "serve-anchor", str(self.port), dsn, amqp_url],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the anchor exited:\n{self.tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"the anchor did not answer:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> None:
        stop_group(self.process)


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s
    p50: float  # ms
    p99: float  # ms


async def drive(url: str, count: int, concurrency: int, warmup: int) -> Run:
    """``warmup`` then ``count`` POSTs of ``BODY`` to ``url``, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def requests(remaining: list[int], latencies: list[float] | None) -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                started = time.perf_counter()
                response = await client.post(url, json=BODY)
                if latencies is not None:
                    latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    raise SystemExit(f"POST {url}: {response.status_code} {response.text[:500]}")

        remaining = [warmup]
        await asyncio.gather(*(requests(remaining, None) for _ in range(concurrency)))
        latencies: list[float] = []
        remaining = [count]
        started = time.perf_counter()
        await asyncio.gather(*(requests(remaining, latencies) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Run(count / elapsed, cuts[49], cuts[98])


def measure(url: str, count: int, concurrency: int, warmup: int, timeout: float) -> Run:
    """One run, stopped after ``timeout`` seconds."""

    async def bounded() -> Run:
        return await asyncio.wait_for(drive(url, count, concurrency, warmup), timeout)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        raise SystemExit(f"{url}: {count} requests at concurrency {concurrency} took over {timeout:.0f} s") from None


def show(run: Run) -> str:
    return f"{run.rate:7.1f} req/s  p50 {run.p50:6.2f} ms  p99 {run.p99:6.2f} ms"


def prepare(database_url: str, amqp_url: str, folder: Path) -> None:
    """The anchor's table and queue, StepFlow's definition."""
    engine = create_engine(database_url)
    with engine.begin() as db:
        db.execute(
            text(
                f"CREATE TABLE {ANCHOR_TABLE} (id bigserial PRIMARY KEY, identifier text, reference text,"
                " parameters jsonb, inserted_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    engine.dispose()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_declare(ANCHOR_QUEUE, durable=True)
    connection.close()
    steps = [step(0, "job_bench", [source_paths("/bench/in.txt")]), step(1, "job_bench", [], parent_ids=[0])]
    write_definitions(folder / "definitions", definition("launches", steps))


RELAY_WAIT = 10.0
"""Seconds the check gives StepFlow's launch relay to mark the last launches of the runs sent."""


def check(database_url: str, amqp_url: str, anchor_requests: int, stepflow_requests: int) -> str:
    """Every launch handed over: no unsent outbox row, one queued message per request."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + RELAY_WAIT
    with engine.connect() as db:
        while True:
            unsent = db.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()
            if unsent == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        workflows = db.execute(text("SELECT count(*) FROM workflows")).scalar_one()
        rows = db.execute(text(f"SELECT count(*) FROM {ANCHOR_TABLE}")).scalar_one()
    engine.dispose()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    anchor_messages = channel.queue_declare(ANCHOR_QUEUE, passive=True).method.message_count
    launch_messages = channel.queue_declare(STEPFLOW_LAUNCH_QUEUE, passive=True).method.message_count
    connection.close()
    found = (
        f"anchor {rows} rows / {anchor_messages} messages for {anchor_requests} requests; "
        f"StepFlow {workflows} workflows / {launch_messages} launch messages / "
        f"{unsent} unsent outbox rows for {stepflow_requests} requests"
    )
    anchor_ok = rows == anchor_messages == anchor_requests
    stepflow_ok = workflows == launch_messages == stepflow_requests and unsent == 0
    return ("checked: " if anchor_ok and stepflow_ok else "CHECK FAILED: ") + found


Runs = dict[tuple[str, int], list[Run]]


def rounds(urls: dict[str, str], counts: dict[int, int], options: argparse.Namespace) -> tuple[Runs, dict[str, int]]:
    """Each round: (anchor, StepFlow) at c=1, then at c=16, the pair's order alternating;
    prints a line per pair. Returns the runs and the requests sent to each (warm-ups too)."""
    runs: Runs = {}
    sent = {"anchor": 0, "stepflow": 0}
    for round_number in range(1, options.rounds + 1):
        order = ("anchor", "stepflow") if round_number % 2 else ("stepflow", "anchor")
        for concurrency in CONCURRENCIES:
            got: dict[str, Run] = {}
            for target in order:
                count = counts[concurrency]
                got[target] = measure(urls[target], count, concurrency, options.warmup, options.run_timeout)
                runs.setdefault((target, concurrency), []).append(got[target])
                sent[target] += counts[concurrency] + options.warmup
            ratio = got["stepflow"].rate / got["anchor"].rate
            print(
                f"round {round_number} c={concurrency:<2}  anchor {show(got['anchor'])}  |  "
                f"StepFlow {show(got['stepflow'])}  ({ratio:.2f} × anchor)",
                flush=True,
            )
    return runs, sent


def summary(runs: Runs, counts: dict[int, int], rounds_count: int) -> None:
    """Medians over the rounds (rate, p50 and p99 each), and StepFlow / anchor of the median rates."""
    print(f"medians of {rounds_count} rounds:")
    for concurrency in CONCURRENCIES:
        median = {
            target: Run(
                statistics.median(run.rate for run in runs[target, concurrency]),
                statistics.median(run.p50 for run in runs[target, concurrency]),
                statistics.median(run.p99 for run in runs[target, concurrency]),
            )
            for target in ("anchor", "stepflow")
        }
        ratio = median["stepflow"].rate / median["anchor"].rate
        print(
            f"c={concurrency:<2} ({counts[concurrency]} requests)  anchor {show(median['anchor'])}  |  "
            f"StepFlow {show(median['stepflow'])}  ({ratio:.2f} × anchor)"
        )


def main() -> None:
    if sys.argv[1:2] == ["serve-anchor"]:
        port, dsn, amqp_url = sys.argv[2:5]
        serve_anchor(int(port), dsn, amqp_url)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (anchor, StepFlow) runs; medians printed")
    parser.add_argument("--requests-c1", type=int, default=300, help="measured requests at concurrency 1")
    parser.add_argument("--requests-c16", type=int, default=1600, help="measured requests at concurrency 16")
    parser.add_argument("--warmup", type=int, default=50, help="requests before each run, not measured")
    parser.add_argument("--run-timeout", type=float, default=300, help="seconds one run may take")
    options = parser.parse_args()
    counts = {1: options.requests_c1, 16: options.requests_c16}

    with sandbox() as box:
        upgrade(box.database_url)
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            prepare(box.database_url, box.amqp_url, folder)
            processes = StepFlowProcesses(stepflow_environment(box, folder, free_port()), folder)
            anchor: Anchor | None = None
            try:
                processes.start("serve")
                anchor = Anchor(folder, box.dsn, box.amqp_url)
                urls = {
                    "anchor": f"http://127.0.0.1:{anchor.port}/workflows",
                    "stepflow": f"http://127.0.0.1:{processes.port}/api/step_flow/workflows",
                }
                runs, sent = rounds(urls, counts, options)
                summary(runs, counts, options.rounds)
                print(check(box.database_url, box.amqp_url, sent["anchor"], sent["stepflow"]))
            finally:  # before the folder (their logs) goes
                if anchor is not None:
                    anchor.stop()
                processes.stop()


if __name__ == "__main__":
    main()
