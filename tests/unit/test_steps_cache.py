"""The per-process cache of launched workflows' steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepflow.engine.graph import StepGraph
from stepflow.models import Workflow
from stepflow.orchestration.steps_cache import StepsCache

CREATED = datetime(2026, 12, 3, tzinfo=UTC)


def workflow(workflow_id: int, created: datetime = CREATED) -> Workflow:
    return Workflow(id=workflow_id, inserted_at=created)


def test_a_workflow_is_known_by_its_id_and_creation_time() -> None:
    cache = StepsCache()
    graph = StepGraph([{"id": 0, "name": "job_a"}])
    cache.put(workflow(1), graph)
    assert cache.get(workflow(1)) is graph
    assert cache.get(workflow(1, CREATED + timedelta(seconds=1))) is None, "the id came back after a reset"
    assert cache.get(workflow(2)) is None


def test_the_least_recently_used_workflow_leaves_first() -> None:
    cache = StepsCache(size=2)
    for workflow_id in (1, 2):
        cache.put(workflow(workflow_id), StepGraph([{"id": workflow_id}]))
    assert cache.get(workflow(1)) is not None  # 2 is now the least recently used
    cache.put(workflow(3), StepGraph([{"id": 3}]))
    assert [cache.get(workflow(n)) is not None for n in (1, 2, 3)] == [True, False, True]
