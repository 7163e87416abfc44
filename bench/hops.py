"""Job hops per second: a bare pika loop against StepFlow's path (DESIGN.md, "Speed").

A hop = a worker's completion consumed, one PostgreSQL transaction committed, the next job
order published (and confirmed). A fake worker (a subprocess) answers every order at once
with a ``job_completed`` naming the order's own destination as its output (one job per step
in (c)); ``--chains`` chains run concurrently.

(a) bare loop, asynchronous publisher confirms, completions acked after their order's confirm
(b) bare loop, one synchronous confirm per publish
(c) StepFlow with the Procfile's scale: ``stepflow bridge`` (which decides every job answer) +
    ``stepflow actors`` (1 process × 8 threads: the launches) + ``serve`` (to launch),
    ``--chains`` workflows of ``--steps`` chained steps; the rate is taken while 10 %..90 % of
    the jobs complete. It also prints the resident memory of the bridge, the process every hop
    goes through, when 10 % of the jobs completed and at the end, so ``--chains 50 --steps
    2000`` compares the RSS after 10,000 and after 100,000 hops.

    .venv/bin/python bench/hops.py --chains 50 --hops 4000 --steps 40

Latency mode (``--chains 1``): one sequential chain, per-hop latency instead of throughput,
for (a) and (c) only. A hop's latency is measured inside the fake worker: from just before it
publishes a job's ``job_completed`` to the arrival of the next job's order (so it covers the
broker both ways, the consumer's transaction and the order's publish). The worker writes its
durations to a file that the parent reads; the first ``--warmup`` hops (default 10) are
dropped; p50 / p90 / p99 are printed in ms with (c) / (a). (a) is ``--hops`` hops of one chain,
(c) one workflow of ``--steps`` sequential steps (``--steps`` − 1 hops, the issue's "one
workflow of 300 sequential steps"); the last order of (a) is not counted either, so
``--hops 300 --steps 300`` gives both 299 hops before the warm-up is dropped:

    .venv/bin/python bench/hops.py --chains 1 --hops 300 --steps 300

It creates its own database and vhost and removes them at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pika
import psycopg
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox import Sandbox, sandbox, stepflow_environment  # noqa: E402
from stepflow.migrate import upgrade  # noqa: E402
from stepflow.wire.topology import JOB_RESPONSE, declare_bridge_topology, declare_job_submit  # noqa: E402
from tests.e2e.processes import StepFlowProcesses, free_port  # noqa: E402
from tests.support import definition, source_paths, step, write_definitions  # noqa: E402

WORKER_QUEUE = "job_bench"
BARE_ORDERS = "bench_orders"
BARE_COMPLETED = "bench_completed"


Timing = tuple[str, int]
"""Latency mode: the file the fake worker writes its hop durations to, and how many to write."""


def fake_worker(url: str, queue: str, exchange: str, routing_key: str, timing: Timing | None = None) -> None:
    """Answer every order on ``queue`` at once with a ``job_completed``.

    The completion names the order's own ``destination_path`` as its output (``/bench/out``
    for the bare loops' orders, which have none), so each step of a StepFlow chain gets one
    input, hence one job. (Answering ``/bench/out`` to StepFlow's orders too, as this bench
    did before, gave every job two outputs: step k of a chain had k + 1 jobs.)

    With ``timing`` = ``(path, count)`` (one chain only), also time each hop: from just before
    publishing a completion to the arrival of the next order; once ``count`` hops are timed,
    write their durations (seconds, JSON) to ``path`` (written whole, then renamed).
    """
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=200)
    properties = pika.BasicProperties(delivery_mode=2)
    durations: list[float] = []
    last_publish: list[float] = []

    def answer(channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        arrived = time.perf_counter()
        if timing is not None and last_publish and len(durations) < timing[1]:
            durations.append(arrived - last_publish[0])
            if len(durations) == timing[1]:
                path = Path(timing[0])
                path.with_suffix(".tmp").write_text(json.dumps(durations))
                path.with_suffix(".tmp").replace(path)
        order = json.loads(body)
        outputs = [
            parameter["value"] for parameter in order["parameters"] if parameter.get("id") == "destination_path"
        ] or ["/bench/out"]
        completion = {"job_id": order["job_id"], "status": "completed", "destination_paths": outputs, "parameters": []}
        last_publish[:] = [time.perf_counter()]
        channel.basic_publish(exchange, routing_key, json.dumps(completion).encode(), properties)
        channel.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, answer)
    channel.start_consuming()


def start_worker(
    url: str, queue: str, exchange: str, routing_key: str, timing: Timing | None = None
) -> multiprocessing.Process:
    process = multiprocessing.Process(
        target=fake_worker, args=(url, queue, exchange, routing_key, timing), daemon=True
    )
    process.start()
    return process


def wait_for_durations(timing: Timing, deadline: float, tails: Any = None) -> list[float]:
    """The fake worker's hop durations (seconds), once it wrote them; exits at ``deadline``
    (a ``time.monotonic()`` value), printing ``tails()`` when given."""
    path = Path(timing[0])
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise SystemExit("the fake worker did not time its hops in time" + (f":\n{tails()}" if tails else ""))


def percentiles(durations: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 of ``durations``, in ms (inclusive method: never beyond the extremes)."""
    cuts = statistics.quantiles([duration * 1000 for duration in durations], n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def bare_setup(url: str, dsn: str, chains: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in (BARE_ORDERS, BARE_COMPLETED):
        channel.queue_declare(queue, durable=True)
        channel.queue_purge(queue)
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS bench_jobs")
        db.execute("CREATE TABLE bench_jobs (id serial PRIMARY KEY, chain int, state text, updated_at timestamptz)")
        for chain in range(chains):
            job_id = db.execute("INSERT INTO bench_jobs (chain, state) VALUES (%s, 'queued') RETURNING id", (chain,))
            body = json.dumps({"job_id": job_id.fetchone()[0], "parameters": []}).encode()
            channel.basic_publish("", BARE_ORDERS, body, pika.BasicProperties(delivery_mode=2))
    connection.close()


def hop(db: psycopg.Connection[Any], body: bytes) -> bytes:
    """One transaction: complete the job, insert the next one; returns the next order."""
    job_id = json.loads(body)["job_id"]
    with db.transaction():
        chain = db.execute(
            "UPDATE bench_jobs SET state = 'completed', updated_at = now() WHERE id = %s RETURNING chain", (job_id,)
        ).fetchone()[0]
        next_id = db.execute(
            "INSERT INTO bench_jobs (chain, state) VALUES (%s, 'queued') RETURNING id", (chain,)
        ).fetchone()[0]
    return json.dumps({"job_id": next_id, "parameters": []}).encode()


def bare_async(url: str, dsn: str, chains: int, hops: int, timing: Timing | None = None) -> float:
    """(a) SelectConnection, confirms handled as they come, completions acked after them.

    ``timing`` goes to the fake worker (latency mode)."""
    bare_setup(url, dsn, chains)
    worker = start_worker(url, BARE_ORDERS, "", BARE_COMPLETED, timing)
    db = psycopg.connect(dsn)
    state: dict[str, Any] = {"done": 0, "published": 0, "pending": [], "confirmed": set(), "start": None}
    properties = pika.BasicProperties(delivery_mode=2)

    def on_message(channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        if state["start"] is None:
            state["start"] = time.perf_counter()
        order = hop(db, body)
        channel.basic_publish("", BARE_ORDERS, order, properties)
        state["published"] += 1
        state["pending"].append((state["published"], method.delivery_tag))
        state["done"] += 1
        if state["done"] == hops:
            state["elapsed"] = time.perf_counter() - state["start"]
            channel.connection.close()

    def on_confirm(frame: Any) -> None:
        method = frame.method
        pending = state["pending"]
        if method.multiple:
            state["confirmed"].update(tag for tag, _ in pending if tag <= method.delivery_tag)
        else:
            state["confirmed"].add(method.delivery_tag)
        last = None
        while pending and pending[0][0] in state["confirmed"]:
            tag, last = pending.pop(0)
            state["confirmed"].discard(tag)
        if last is not None and frame.channel_number and channel_holder:
            channel_holder[0].basic_ack(last, multiple=True)

    channel_holder: list[Any] = []

    def on_channel(channel: Any) -> None:
        channel_holder.append(channel)
        channel.basic_qos(prefetch_count=500)
        channel.confirm_delivery(on_confirm)
        channel.basic_consume(BARE_COMPLETED, on_message)

    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda connection: connection.channel(on_open_callback=on_channel),
        on_close_callback=lambda connection, _reason: connection.ioloop.stop(),
    )
    connection.ioloop.start()
    worker.terminate()
    worker.join()  # else its last answers may land in the next measure's queue
    db.close()
    return hops / state["elapsed"]


def bare_sync(url: str, dsn: str, chains: int, hops: int) -> float:
    """(b) BlockingConnection, one synchronous confirm per publish, then the ack."""
    bare_setup(url, dsn, chains)
    worker = start_worker(url, BARE_ORDERS, "", BARE_COMPLETED)
    db = psycopg.connect(dsn)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=500)
    state: dict[str, Any] = {"done": 0, "start": None}
    properties = pika.BasicProperties(delivery_mode=2)

    def on_message(channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        if state["start"] is None:
            state["start"] = time.perf_counter()
        channel.basic_publish("", BARE_ORDERS, hop(db, body), properties)
        channel.basic_ack(method.delivery_tag)
        state["done"] += 1
        if state["done"] == hops:
            state["elapsed"] = time.perf_counter() - state["start"]
            channel.stop_consuming()

    channel.basic_consume(BARE_COMPLETED, on_message)
    channel.start_consuming()
    connection.close()
    worker.terminate()
    worker.join()  # else its last answers may land in the next measure's queue
    db.close()
    return hops / state["elapsed"]


def stepflow_path(
    box: Sandbox,
    folder: Path,
    chains: int,
    steps: int,
    processes_count: int,
    threads: int,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """(c) the real processes; a chain workflow per ``chains``, one hop per step.

    With ``timing`` (latency mode, ``chains`` = 1) the fake worker times the hops and the
    result holds their ``durations`` instead of a rate."""
    steps_list = [step(0, WORKER_QUEUE, [source_paths("/bench/in.txt")])] + [
        step(index, WORKER_QUEUE, [], parent_ids=[index - 1]) for index in range(1, steps)
    ]
    write_definitions(folder / "definitions", definition("hops", steps_list))
    url, database_url = box.amqp_url, box.database_url
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    declare_job_submit(channel)
    declare_bridge_topology(channel)
    channel.queue_declare(WORKER_QUEUE, durable=True, arguments={"x-max-priority": 100})
    channel.queue_bind(WORKER_QUEUE, "job_submit", routing_key=WORKER_QUEUE)
    connection.close()
    processes = StepFlowProcesses(
        stepflow_environment(box, folder, free_port()),
        folder,
        actors_options=["--processes", str(processes_count), "--threads", str(threads)],
    )
    worker = None
    engine = create_engine(database_url)
    try:
        processes.start("serve", "actors", "bridge")
        worker = start_worker(url, WORKER_QUEUE, JOB_RESPONSE, "job_completed", timing)
        api = f"http://127.0.0.1:{processes.port}/api/step_flow"
        for _ in range(chains):
            body = {"workflow_identifier": "hops", "reference": "bench", "parameters": {}}
            response = httpx.post(f"{api}/workflows", json=body, timeout=30)
            if response.status_code != 201:
                raise SystemExit(f"launch failed: {response.status_code} {response.text}\n{processes.tails()}")
        total = chains * steps
        marks: dict[str, float] = {}
        rss: list[tuple[int, int]] = []  # (completed jobs, the bridge's RSS in bytes)
        deadline = time.monotonic() + 900 + total / 20
        if timing is not None:
            return {"durations": wait_for_durations(timing, deadline, processes.tails), "jobs": total}
        while time.monotonic() < deadline:
            with engine.connect() as db:
                done = db.execute(text("SELECT count(*) FROM jobs WHERE state = 'completed'")).scalar_one()
            now = time.perf_counter()
            if done >= total * 0.1 and "low" not in marks:
                marks["low"], marks["low_count"] = now, done
                rss.append((done, process_rss(processes.running["bridge"].pid)))
            if done >= total * 0.9 and "high" not in marks:
                marks["high"], marks["high_count"] = now, done
            if done >= total:
                rss.append((done, process_rss(processes.running["bridge"].pid)))
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"did not finish:\n{processes.tails()}")
        rate = (marks["high_count"] - marks["low_count"]) / (marks["high"] - marks["low"])
        return {"hops_per_second": rate, "jobs": total, "rss": rss}
    finally:
        if worker is not None:
            worker.terminate()
        processes.stop()
        engine.dispose()


def process_rss(pid: int) -> int:
    """Resident memory of a process (pid) and every process under it, in bytes."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        pending += [int(child) for child in children]
    return total


def latency(options: argparse.Namespace, box: Sandbox) -> None:
    """Latency mode: per-hop p50 / p90 / p99 of one chain for (a) and (c)."""
    with tempfile.TemporaryDirectory() as folder:
        timing = (str(Path(folder) / "bare-hops.json"), options.hops - 1)
        bare_async(box.amqp_url, box.dsn, 1, options.hops, timing)
        bare = wait_for_durations(timing, time.monotonic() + 30)[options.warmup :]
        timing = (str(Path(folder) / "stepflow-hops.json"), options.steps - 1)
        result = stepflow_path(
            box,
            Path(folder),
            1,
            options.steps,
            options.actor_processes,
            options.actor_threads,
            timing,
        )
        ours = result["durations"][options.warmup :]
    a, c = percentiles(bare), percentiles(ours)
    skipped = f"first {options.warmup} dropped as warm-up"
    print(f"(a) bare loop, one chain: {len(bare)} hops ({skipped})")
    print("    " + "  ".join(f"{key} {value:6.2f} ms" for key, value in a.items()))
    actors = f"{options.actor_processes}×{options.actor_threads}"
    workflow = f"one workflow of {options.steps} steps"
    print(f"(c) StepFlow bridge → order (actors {actors}), {workflow}: {len(ours)} hops ({skipped})")
    print("    " + "  ".join(f"{key} {value:6.2f} ms ({value / a[key]:.1f} × a)" for key, value in c.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=50, help="concurrent chains / workflows")
    parser.add_argument("--hops", type=int, default=4000, help="hops measured in (a) and (b)")
    parser.add_argument("--steps", type=int, default=40, help="steps per workflow in (c)")
    parser.add_argument("--actor-processes", type=int, default=1, help="actors processes in (c)")
    parser.add_argument("--actor-threads", type=int, default=8, help="threads per actors process in (c)")
    parser.add_argument("--warmup", type=int, default=10, help="hops dropped at the start (latency mode)")
    options = parser.parse_args()
    if options.chains == 1 and min(options.hops, options.steps) - 1 <= options.warmup + 1:
        parser.error("latency mode (--chains 1) needs --hops and --steps above --warmup + 2")

    with sandbox() as box:
        upgrade(box.database_url)
        if options.chains == 1:
            latency(options, box)
            return
        bare = bare_async(box.amqp_url, box.dsn, options.chains, options.hops)
        print(f"(a) bare loop, asynchronous confirms: {bare:7.1f} hops/s")
        sync = bare_sync(box.amqp_url, box.dsn, options.chains, options.hops)
        print(f"(b) bare loop, synchronous confirms:  {sync:7.1f} hops/s  ({sync / bare:.2f} × a)")
        with tempfile.TemporaryDirectory() as folder:
            result = stepflow_path(
                box,
                Path(folder),
                options.chains,
                options.steps,
                options.actor_processes,
                options.actor_threads,
            )
        rate = result["hops_per_second"]
        actors = f"{options.actor_processes}×{options.actor_threads}"
        print(f"(c) StepFlow bridge → order (actors {actors}): {rate:7.1f} hops/s  ({rate / bare:.2f} × a)")
        (early, early_rss), (end, end_rss) = result["rss"]
        print(
            f"    bridge's RSS: {early_rss / 2**20:.1f} MiB after {early} hops, {end_rss / 2**20:.1f} MiB after {end}"
            f" ({end_rss / early_rss:.2f} ×)"
        )

if __name__ == "__main__":
    main()
