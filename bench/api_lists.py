"""GET /workflows at scale: 100,000 workflows and 1,000,000 jobs stored (the API issue's benchmark).

Seeds its own database with SQL (``generate_series``), starts ``stepflow serve`` on it, and
times, over HTTP on 127.0.0.1, a page of 20 workflows (full views, rights-filtered, with the
total) and one full workflow view; prints p50/p95/p99 and the query plans of the list. Run by
hand::

    .venv/bin/python bench/api_lists.py [--workflows 100000] [--jobs-per-workflow 10] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepflow.migrate import upgrade  # noqa: E402
from tests.e2e.processes import StepFlowProcesses, free_port  # noqa: E402

STEPS = json.dumps(
    [
        {"id": 0, "name": "job_source", "label": "source", "icon": "i", "parameters": []},
        {"id": 1, "name": "job_next", "label": "next", "icon": "i", "parent_ids": [0], "parameters": []},
    ]
)

SEED = [
    # Definitions, workflows and their rights.
    """INSERT INTO workflow_definitions (schema_version, identifier, label, icon, version_major, version_minor,
         version_micro, tags, is_live, steps, start_parameters, parameters, document, source_file, inserted_at,
         notification_hooks)
       VALUES ('1.8', 'bench', 'bench', 'i', 1, 0, 0, '[]', false, CAST(:steps AS jsonb), '[]', '[]', '{}', '',
         now(), '[]')""",
    """INSERT INTO workflows (definition_id, schema_version, identifier, version_major, version_minor, version_micro,
         tags, is_live, reference, steps, parameters, status, inserted_at, updated_at, notification_hooks,
         view_groups)
       SELECT 1, '1.8', CASE WHEN n % 10 = 0 THEN 'other' ELSE 'bench' END, 1, 0, 0, '[]', false, 'ref-' || n,
         CAST(:steps AS jsonb), '[]',
         (ARRAY['completed','completed','completed','error','processing'])[1 + n % 5],
         now() - make_interval(secs => n * 30), now() - make_interval(secs => n * 30), '[]', ARRAY['administrator']
       FROM generate_series(1, :workflows) AS n""",
    """INSERT INTO rights (workflow_id, action, groups, inserted_at)
       SELECT id, action, ARRAY['administrator'], inserted_at
       FROM workflows CROSS JOIN unnest(ARRAY['view','create','retry','abort','delete']) AS action""",
    """INSERT INTO workflow_steps (workflow_id, step_id, name, queued, processing, completed, errors, skipped,
         stopped, launched_at)
       SELECT id, s, CASE s WHEN 0 THEN 'job_source' ELSE 'job_next' END, 0, 0, :half, 0, 0, 0, inserted_at
       FROM workflows CROSS JOIN generate_series(0, 1) AS s""",
    """INSERT INTO workflow_status (workflow_id, state, inserted_at)
       SELECT id, state, inserted_at FROM workflows CROSS JOIN unnest(ARRAY['pending','processing']) AS state""",
    # Jobs (half in each step), one status and one progression each.
    """INSERT INTO jobs (workflow_id, step_id, input_index, name, kind, parameters, state, attempt, is_live,
         dispatched_at, inserted_at, updated_at)
       SELECT w.id, CASE WHEN i < :half THEN 0 ELSE 1 END, i % :half,
         CASE WHEN i < :half THEN 'job_source' ELSE 'job_next' END, 'worker',
         jsonb_build_array(
           jsonb_build_object('id', 'source_path', 'type', 'string', 'value', '/in/' || w.id || '_' || i),
           jsonb_build_object('id', 'destination_path', 'type', 'string', 'value', '/out/' || w.id || '_' || i),
           jsonb_build_object('id', 'requirements', 'type', 'requirements', 'value', '{"paths": []}'::jsonb)),
         'completed', 1, false, w.inserted_at, w.inserted_at, w.inserted_at
       FROM workflows w CROSS JOIN generate_series(0, :jobs_per_workflow - 1) AS i""",
    """INSERT INTO job_status (job_id, state, description, inserted_at)
       SELECT id, 'completed', '{}', inserted_at FROM jobs""",
    """INSERT INTO progressions (job_id, datetime, docker_container_id, progression, inserted_at)
       SELECT id, inserted_at, 'worker-1', 100, inserted_at FROM jobs""",
    "VACUUM ANALYZE",
]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 2)

    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--jobs-per-workflow", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    options = parser.parse_args()
    name = f"stepflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1/{name}"
    processes: StepFlowProcesses | None = None
    try:
        upgrade(url)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        started = time.monotonic()
        bind = {
            "steps": STEPS,
            "workflows": options.workflows,
            "jobs_per_workflow": options.jobs_per_workflow,
            "half": max(1, options.jobs_per_workflow // 2),
        }
        with engine.connect() as connection:
            for statement in SEED:
                names = [key for key in bind if f":{key}" in statement]
                connection.execute(text(statement), {key: bind[key] for key in names})
            counts = {
                table: connection.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("workflows", "jobs", "job_status", "progressions", "rights")
            }
        print(json.dumps({"seeded": counts, "seconds": round(time.monotonic() - started, 1)}), flush=True)

        log_dir = Path(f"/tmp/{name}")
        log_dir.mkdir()
        processes = StepFlowProcesses(
            {
                "PATH": os.environ["PATH"],
                "DATABASE_URL": url,
                "PORT": str(free_port()),
                "STEPFLOW_AUTH_ANONYMOUS": "true",
                "STEPFLOW_AUTH_ANONYMOUS_GROUPS": "administrator",
                "STEPFLOW_LOG_LEVEL": "warning",
            },
            log_dir,
        )
        processes.start("serve")
        api = f"http://127.0.0.1:{processes.port}/api/step_flow"
        with httpx.Client(timeout=30) as client:
            for _ in range(20):  # warm up connections and caches
                client.get(f"{api}/workflows", params={"size": 20})
            pages, shows, filtered = [], [], []
            ids = random.Random(7).sample(range(1, options.workflows + 1), options.requests)
            for index, workflow_id in enumerate(ids):
                page = index % 50
                began = time.perf_counter()
                response = client.get(f"{api}/workflows", params={"size": 20, "page": page})
                pages.append(time.perf_counter() - began)
                assert response.status_code == 200 and len(response.json()["data"]) == 20, response.text[:300]
                began = time.perf_counter()
                response = client.get(f"{api}/workflows/{workflow_id}")
                shows.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text[:300]
                began = time.perf_counter()
                response = client.get(
                    f"{api}/workflows", params={"size": 20, "states[]": "error", "workflow_ids[]": "bench"}
                )
                filtered.append(time.perf_counter() - began)
                assert response.status_code == 200, response.text[:300]
        print(json.dumps({"GET /workflows?size=20": percentiles(pages)}))
        print(json.dumps({"GET /workflows/:id (full view)": percentiles(shows)}))
        print(json.dumps({"GET /workflows?size=20&states[]=error&workflow_ids[]=bench": percentiles(filtered)}))
    finally:
        if processes is not None:
            processes.stop()
        if options.keep:
            print(f"kept: {url}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
