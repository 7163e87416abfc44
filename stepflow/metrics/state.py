"""Gauges computed from the database at each scrape; registered in the web process only.

The window starts at ``now + delta·scale`` (``STEPFLOW_METRICS_DELTA``, default -1, and
``STEPFLOW_METRICS_SCALE``, default ``day``), as the original's ``step_flow_workflows_duration``:

- ``stepflow_workflows_created_window{identifier}``: workflows created in the window;
- ``stepflow_workflow_duration_window_seconds{identifier}``: the average duration (its last
  artifact's time − its creation) of the workflows that ended in the window. A workflow's
  artifact is written when it completes, so these are the completed workflows;
- ``stepflow_jobs_in_flight{queue}``: worker jobs not in a final state (created, sent, running),
  read from the ``jobs`` columns, so it never drifts nor goes negative. A queue with no job in
  flight has no sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from stepflow.engine.states import FINAL_JOB_STATES

log = structlog.get_logger(__name__)

WINDOW_START = "now() + CAST(:window AS interval)"

CREATED_IN_WINDOW = text(
    f"SELECT identifier, count(*) FROM workflows WHERE inserted_at > {WINDOW_START} GROUP BY identifier"
)
DURATION_IN_WINDOW = text(
    f"""
    SELECT w.identifier, EXTRACT(EPOCH FROM avg(a.ended_at - w.inserted_at))
    FROM workflows w
    JOIN (
        SELECT workflow_id, max(inserted_at) AS ended_at FROM artifacts
        WHERE inserted_at > {WINDOW_START} GROUP BY workflow_id
    ) a ON a.workflow_id = w.id
    GROUP BY w.identifier
    """
)
_FINAL = ", ".join(f"'{state}'" for state in sorted(FINAL_JOB_STATES))
IN_FLIGHT = text(f"SELECT name, count(*) FROM jobs WHERE kind = 'worker' AND state NOT IN ({_FINAL}) GROUP BY name")
"""Its condition is the one of the partial index ``ix_jobs_in_flight`` (migration 0008)."""


class StateCollector(Collector):
    """The scrape-time SQL gauges. A database error leaves them out of that scrape (logged), so
    the counters are still served."""

    def __init__(self, sessions: sessionmaker[Session], scale: str, delta: int) -> None:
        self._sessions = sessions
        self._scale = scale
        self._delta = delta

    def collect(self) -> Iterator[Metric]:
        since = f"{self._delta} {self._scale}(s)"
        created = GaugeMetricFamily(
            "stepflow_workflows_created_window", f"Workflows created since {since}.", labels=["identifier"]
        )
        duration = GaugeMetricFamily(
            "stepflow_workflow_duration_window_seconds",
            f"Average duration of the workflows that ended since {since}.",
            labels=["identifier"],
        )
        in_flight = GaugeMetricFamily("stepflow_jobs_in_flight", "Worker jobs not in a final state.", labels=["queue"])
        window = {"window": f"{self._delta} {self._scale}"}
        queries = ((created, CREATED_IN_WINDOW), (duration, DURATION_IN_WINDOW), (in_flight, IN_FLIGHT))
        try:
            with self._sessions() as session:
                results = [(family, session.execute(query, window).all()) for family, query in queries]
        except SQLAlchemyError as error:
            log.warning("metrics: database gauges left out of this scrape", error=str(error))
            return
        for family, rows in results:
            for label, value in rows:
                family.add_metric([label], float(value))
            yield family
