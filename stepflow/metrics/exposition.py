"""What ``GET {prefix}/metrics`` serves: the text exposition format (version 0.0.4) of every
process's instruments, added up from ``PROMETHEUS_MULTIPROC_DIR`` (or this process's own when
there is none), and the scrape-time SQL gauges."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from stepflow.metrics.instruments import PROCESS_REGISTRY
from stepflow.metrics.state import StateCollector
from stepflow.settings import Settings

MEDIA_TYPE = "text/plain; version=0.0.4"
"""The media type of :func:`render`'s output, in UTF-8 (``CONTENT_TYPE_PLAIN_0_0_4`` without the
charset, which the web framework appends)."""


class _ProcessInstruments(Collector):
    """This process's registry as a collector of the scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return PROCESS_REGISTRY.collect()


def scrape_registry(settings: Settings, sessions: sessionmaker[Session]) -> CollectorRegistry:
    """The registry ``/metrics`` renders: the instruments, then the SQL gauges."""
    registry = CollectorRegistry()
    if settings.prometheus_multiproc_dir is not None:
        MultiProcessCollector(registry, path=str(settings.prometheus_multiproc_dir))
    else:
        registry.register(_ProcessInstruments())
    registry.register(StateCollector(sessions, settings.metrics_scale, settings.metrics_delta))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
