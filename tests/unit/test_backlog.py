"""Backlog and Courier: work handed to one background thread, everything waiting at once."""

from __future__ import annotations

import threading

from stepflow.orchestration.backlog import Backlog
from stepflow.orchestration.outbox import Courier, Owed
from stepflow.wire.orders import JobOrder, Submission


def test_what_waits_while_the_thread_is_busy_is_handled_together_in_order() -> None:
    release, started = threading.Event(), threading.Event()
    calls: list[list[int]] = []
    threads: set[str] = set()

    def handle(items: list[int]) -> None:
        threads.add(threading.current_thread().name)
        calls.append(items)
        started.set()
        release.wait(5)

    backlog: Backlog[int] = Backlog(handle, "test-backlog")
    backlog.add([1])
    assert started.wait(5)
    backlog.add([2, 3])
    backlog.add([4])
    assert not backlog.flush(timeout=0.05), "the first call is still running"
    release.set()
    assert backlog.flush(timeout=5)
    backlog.close()
    assert calls == [[1], [2, 3, 4]]
    assert threads == {"test-backlog"}


def test_a_failing_handler_drops_its_items_and_the_thread_goes_on() -> None:
    handled: list[list[str]] = []

    def handle(items: list[str]) -> None:
        if "bad" in items:
            raise RuntimeError("boom")
        handled.append(items)

    backlog: Backlog[str] = Backlog(handle, "test-backlog")
    backlog.add(["bad"])
    assert backlog.flush(timeout=5)
    backlog.add(["good"])
    assert backlog.flush(timeout=5)
    backlog.close()
    assert handled == [["good"]]


def test_close_handles_what_waits_then_finishes_on_the_thread_and_drops_later_items() -> None:
    handled: list[int] = []
    finished: list[str] = []
    backlog: Backlog[int] = Backlog(handled.extend, "test-backlog", lambda: finished.append(threading.current_thread().name))
    backlog.add([1, 2])
    backlog.close()
    backlog.add([3])
    assert handled == [1, 2] and finished == ["test-backlog"]


def order(job_id: int) -> Submission:
    return Submission("job_test", 0, JobOrder(job_id, []))


def test_the_courier_sends_what_waits_together_in_the_order_given_off_the_callers_thread() -> None:
    release, started = threading.Event(), threading.Event()
    sent: list[tuple[list[int], list[int], list[int], str]] = []

    def send(owed: Owed) -> None:
        started.set()
        release.wait(5)
        job_ids = [submission.order.job_id for submission in owed.orders]
        sent.append((job_ids, owed.notifications, owed.direct_messages, threading.current_thread().name))

    finished = threading.Event()
    courier = Courier(send, finish=finished.set)
    courier.send(Owed(orders=[order(1)]))
    assert started.wait(5)  # the courier is busy sending the first
    courier.send(Owed())  # nothing owed: nothing sent
    courier.send(Owed(orders=[order(2), order(3)], direct_messages=[7]))
    courier.send(Owed(orders=[order(4)], notifications=[9]))
    release.set()
    assert courier.flush(timeout=5)
    courier.close()
    assert finished.is_set()
    assert [call[:3] for call in sent] == [([1], [], []), ([2, 3, 4], [9], [7])]
    assert {call[3] for call in sent} == {"stepflow-courier"}
