"""Where the processes of a host share their metric values (prometheus-client multiprocess mode).

prometheus-client decides when it is first imported whether a process keeps its values in
memory or in files under ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` adds up the files of
every process. So the directory must be in the environment before that import, and be the same
for the web, the actors (and Dramatiq's worker processes), the bridge and the clock. The
``stepflow`` command sees to it (:func:`export_multiprocess_dir`): it keeps
``PROMETHEUS_MULTIPROC_DIR`` when set, else uses :func:`default_multiprocess_dir`, creates the
directory and exports it (``stepflow actors`` execs Dramatiq, which inherits it).

The files of processes that exited are kept: their counts are part of the totals, which would
otherwise go backwards (Prometheus would read a counter reset). StepFlow keeps no per-process
gauge (what is in flight is read from the database at each scrape), so there is nothing for
``prometheus_client.multiprocess.mark_process_dead`` to clean. To start the counts again, stop
every process and empty the directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

from stepflow.settings import Settings

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def default_multiprocess_dir(settings: Settings) -> Path:
    """``<tmp>/stepflow-metrics-<uid>-<database hash>``: shared by the processes of one StepFlow on
    this host (they share the database), apart from another StepFlow (another database) on it."""
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"stepflow-metrics-{os.getuid()}-{digest}"


def export_multiprocess_dir(settings: Settings, environ: MutableMapping[str, str] = os.environ) -> Settings:
    """Create the metrics directory, put it in ``environ`` and return the settings naming it.

    Call it before prometheus-client is imported. Does nothing when metrics are disabled."""
    if not settings.metrics_enabled:
        return settings
    directory = settings.prometheus_multiproc_dir or default_multiprocess_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    environ[ENVIRONMENT_VARIABLE] = str(directory)
    return dataclasses.replace(settings, prometheus_multiproc_dir=directory)
