"""End-to-end throughput: StepFlow's four processes and real MCAI SDK copy workers.

Launches ``--workflows`` two-step workflows (one input each) at once and measures the time
until all are completed: job orders per second through web → actors → RabbitMQ → SDK worker →
bridge → actors. Run by hand on a machine with PostgreSQL and RabbitMQ::

    .venv/bin/python bench/pipeline.py --workflows 50 --workers 2

It creates its own database and vhost and removes them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepflow.migrate import upgrade  # noqa: E402
from bench.sandbox import sandbox  # noqa: E402
from stepflow.security import hash_password  # noqa: E402
from tests.e2e.processes import StepFlowProcesses, free_port  # noqa: E402
from tests.e2e.workers import start_worker, wait_until_consuming  # noqa: E402
from tests.support import definition, step, write_definitions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()

    with sandbox() as box:
        name, database_url = box.name, box.database_url
        workers = []
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            work = root / "work"
            (work / "in").mkdir(parents=True)
            inputs = []
            for index in range(options.workflows):
                path = work / "in" / f"file_{index}.txt"
                path.write_text(f"input {index}\n")
                inputs.append(str(path))
            document = definition(
                "bench",
                [
                    step(0, "job_copy", [{"id": "source_paths", "type": "template", "value": "{source_file}"}]),
                    step(1, "job_copy", [], parent_ids=[0]),
                ],
                parameters=[{"id": "source_file", "type": "string", "value": ""}],
            )
            write_definitions(root / "definitions", document)
            upgrade(database_url)
            processes = StepFlowProcesses(
                {
                    "PATH": os.environ["PATH"],
                    "DATABASE_URL": database_url,
                    "AMQP_URL": box.amqp_url,
                    "PORT": str(free_port()),
                    "STEPFLOW_WORKFLOW_DEFINITIONS": str(root / "definitions"),
                    "STEPFLOW_WORKERS_WORK_DIRECTORY": str(work),
                    "STEPFLOW_AUTH_ANONYMOUS": "true",
                    "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
                    "STEPFLOW_AUTH_USERS": json.dumps({"w@b": {"password_hash": hash_password("pw"), "groups": []}}),
                    "STEPFLOW_SESSION_SECRET": "bench",
                    "STEPFLOW_LOG_LEVEL": "warning",
                },
                root,
            )
            try:
                processes.start("serve", "actors", "bridge", "clock")
                amqp = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest", "vhost": name}
                for _ in range(options.workers):
                    workers.append(
                        start_worker(
                            "job_copy",
                            amqp=amqp,
                            backend_url=f"http://127.0.0.1:{processes.port}/api",
                            username="w@b",
                            password="pw",
                            work_dir=work,
                            log_file=root / "orders.jsonl",
                        )
                    )
                wait_until_consuming("job_copy", amqp=amqp, min_consumers=options.workers)
                api = f"http://127.0.0.1:{processes.port}/api/step_flow"
                started = time.monotonic()
                ids = []
                for path in inputs:
                    body = {"workflow_identifier": "bench", "reference": "b", "parameters": {"source_file": path}}
                    response = httpx.post(f"{api}/workflows", json=body)
                    if response.status_code != 201:
                        raise SystemExit(
                            f"launch failed: {response.status_code} {response.text}\n{processes.tail('serve')}"
                        )
                    ids.append(response.json()["data"]["id"])
                launched = time.monotonic() - started
                pending = set(ids)
                while pending and time.monotonic() - started < 600:
                    for workflow_id in list(pending):
                        status = httpx.get(f"{api}/workflows/{workflow_id}", params={"mode": "simple"}).json()["data"][
                            "status"
                        ]
                        if status["state"] in ("completed", "error"):
                            pending.discard(workflow_id)
                    time.sleep(0.1)
                elapsed = time.monotonic() - started
                jobs = 2 * (options.workflows - len(pending))
                print(
                    json.dumps(
                        {
                            "workflows": options.workflows,
                            "sdk_workers": options.workers,
                            "launch_seconds": round(launched, 2),
                            "total_seconds": round(elapsed, 2),
                            "jobs_completed": jobs,
                            "job_orders_per_second": round(jobs / elapsed, 1),
                            "unfinished": len(pending),
                        }
                    )
                )
            finally:
                for worker in workers:
                    worker.stop()
                processes.stop()


if __name__ == "__main__":
    main()
