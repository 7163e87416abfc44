"""CountersCache: counters kept per workflow and version, copied in and out."""

from __future__ import annotations

from datetime import datetime, timezone

from stepflow.engine.status import StepCounts, StepTally
from stepflow.orchestration.counters_cache import CountersCache

AT = datetime(2026, 12, 3, tzinfo=timezone.utc)


def test_counters_are_given_back_only_for_the_version_they_were_kept_at() -> None:
    cache = CountersCache()
    cache.put(1, AT, 3, ({0: StepCounts(queued=1)}, {0: AT}, None))
    assert cache.get(1, AT, 3) == ({0: StepCounts(queued=1)}, {0: AT}, None)
    assert cache.get(1, AT, 4) is None, "another process wrote them since"
    assert cache.get(1, datetime(2026, 12, 4, tzinfo=timezone.utc), 3) is None, "a new workflow with a reused id"


def test_an_older_version_does_not_replace_a_newer_one_and_copies_are_independent() -> None:
    cache = CountersCache()
    cache.put(1, AT, 5, ({0: StepCounts(completed=1)}, {}, StepTally(0, 0, 1)))
    cache.put(1, AT, 4, ({0: StepCounts(queued=1)}, {}, StepTally(1, 0, 1)))
    counts, _, tally = cache.get(1, AT, 5)  # type: ignore[misc]
    counts[0] = StepCounts(errors=1)
    assert tally is not None
    tally.failing = 1
    assert cache.get(1, AT, 5) == ({0: StepCounts(completed=1)}, {}, StepTally(0, 0, 1))


def test_it_holds_the_most_recently_used_workflows() -> None:
    cache = CountersCache(size=2)
    for workflow_id in (1, 2):
        cache.put(workflow_id, AT, 0, ({}, {}, None))
    assert cache.get(1, AT, 0) is not None
    cache.put(3, AT, 0, ({}, {}, None))
    assert cache.get(2, AT, 0) is None and cache.get(1, AT, 0) is not None
