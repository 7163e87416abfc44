"""Cost of one worker message as a workflow grows (the engine issue's benchmark).

A root ``one_for_many`` job completes with N outputs; its child step then has N jobs (one per
input), and a third step gathers them. For N in 10, 100, 1,000, 10,000 this measures the
transaction a worker message costs in the actors (lock the workflow, move the job, update the
step counters, decide what may start, commit), without the broker: ``job_progression`` and
``job_completed`` for jobs spread over the big step, then the one completion that starts the
gathering step (which reads its N inputs once). The per-message cost must stay flat in N.
Run by hand::

    .venv/bin/python bench/advance.py [--sizes 10 100 1000 10000] [--samples 200]

It creates and drops its own database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepflow.orchestration import answers  # noqa: E402
from stepflow.orchestration.advance import advance  # noqa: E402
from stepflow.orchestration.locked_workflow import LockedWorkflow  # noqa: E402
from stepflow.migrate import upgrade  # noqa: E402
from stepflow.models import Job, Workflow, WorkflowStep  # noqa: E402
from stepflow.wire import messages  # noqa: E402

WORK_DIRECTORY = "/bench"


def create_workflow(sessions: sessionmaker[Session], size: int) -> int:
    """Launch, then complete the root job with ``size`` outputs: the big step starts."""
    steps = [
        {
            "id": 0,
            "name": "job_split",
            "mode": "one_for_many",
            "parameters": [{"id": "source_paths", "type": "array_of_strings", "value": ["/in/source.mov"]}],
        },
        {"id": 1, "name": "job_bench", "parent_ids": [0], "parameters": []},
        {"id": 2, "name": "job_gather", "parent_ids": [1], "mode": "one_for_many", "parameters": []},
    ]
    with sessions() as session, session.begin():
        workflow = Workflow(
            schema_version="1.8",
            identifier="bench",
            version_major=1,
            version_minor=0,
            version_micro=0,
            reference="bench",
            steps=steps,
        )
        session.add(workflow)
        session.flush()
        for step in steps:
            session.add(WorkflowStep(workflow_id=workflow.id, step_id=step["id"], name=step["name"]))
        workflow_id = workflow.id
    with sessions() as session, session.begin():
        locked = LockedWorkflow.lock(session, workflow_id)
        assert locked is not None
        advance(locked, WORK_DIRECTORY)
    with sessions() as session, session.begin():
        root = session.scalar(select(Job.id).where(Job.workflow_id == workflow_id))
        assert root is not None
        outputs = [f"/work/part_{index:05}.mov" for index in range(size)]
        answers.job_completed(
            session, messages.JobCompleted(job_id=root, destination_paths=outputs), WORK_DIRECTORY
        )
    return workflow_id


def timed(sessions: sessionmaker[Session], change: Callable[[Session], object]) -> float:
    started = time.perf_counter()
    with sessions() as session, session.begin():
        change(session)
    return time.perf_counter() - started


def measure(sessions: sessionmaker[Session], size: int, samples: int) -> dict[str, object]:
    started = time.perf_counter()
    workflow_id = create_workflow(sessions, size)
    launch_seconds = time.perf_counter() - started
    with sessions() as session:
        job_ids = list(
            session.scalars(select(Job.id).where(Job.workflow_id == workflow_id, Job.step_id == 1).order_by(Job.id))
        )
    assert len(job_ids) == size
    sample = job_ids[:: max(1, (size - 1) // samples)][:samples]
    sample = [job_id for job_id in sample if job_id != job_ids[-1]]
    progression, completion = [], []
    for job_id in sample:
        message = messages.JobProgression(job_id=job_id, progression=50, datetime="2026-11-26T12:00:00Z")
        progression.append(timed(sessions, lambda s, m=message: answers.job_progression(s, m, WORK_DIRECTORY)))
        done = messages.JobCompleted(job_id=job_id, destination_paths=[f"/out/{job_id}.mov"])
        completion.append(timed(sessions, lambda s, m=done: answers.job_completed(s, m, WORK_DIRECTORY)))
    with sessions() as session, session.begin():  # complete the rest quickly, leaving the last one
        session.execute(
            text(
                "UPDATE jobs SET state = 'completed' "
                "WHERE workflow_id = :w AND step_id = 1 AND id <> :last AND state <> 'completed'"
            ),
            {"w": workflow_id, "last": job_ids[-1]},
        )
        session.execute(
            text(
                "UPDATE workflow_steps SET completed = :n - 1, queued = 1, processing = 0 "
                "WHERE workflow_id = :w AND step_id = 1"
            ),
            {"w": workflow_id, "n": size},
        )
    last = messages.JobCompleted(job_id=job_ids[-1], destination_paths=[f"/out/{job_ids[-1]}.mov"])
    starting_next = timed(sessions, lambda s: answers.job_completed(s, last, WORK_DIRECTORY))
    with sessions() as session:
        assert session.scalar(select(Job.id).where(Job.workflow_id == workflow_id, Job.step_id == 2)) is not None

    def ms(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        }

    return {
        "jobs_in_step": size,
        "starting_the_big_step_ms": round(launch_seconds * 1000, 1),
        "messages_sampled": len(sample),
        "job_progression": ms(progression),
        "job_completed": ms(completion),
        "completion_starting_next_step_ms": round(starting_next * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--samples", type=int, default=200)
    options = parser.parse_args()
    name = f"stepflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1/{name}"
    engine = create_engine(url)
    try:
        upgrade(url)
        sessions = sessionmaker(engine, expire_on_commit=False)
        for size in options.sizes:
            print(json.dumps(measure(sessions, size, options.samples)), flush=True)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
