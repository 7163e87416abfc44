"""The feed's notices (coalescing, the 8000-byte limit) and the frames a websocket makes of them."""

from __future__ import annotations

import anyio
import pytest

from stepflow import changes
from stepflow.api.notifications.controller import MAX_BACKLOG, TooSlow, relay
from stepflow.api.notifications.frames import frame, visible, wanted
from stepflow.changes import Change, JobRef, WorkflowRef
from stepflow.feed import MAX_PAYLOAD_BYTES, Notice, decode, encode, notices
from stepflow.security import Principal


def workflow(workflow_id: int, groups: tuple[str, ...] = ("administrator",)) -> WorkflowRef:
    return WorkflowRef(workflow_id, "flow", "1.0.0", "ref", "processing", groups)


def job(job_id: int, state: str = "queued") -> JobRef:
    return JobRef(job_id, "job_a", 0, state)


def test_a_big_step_coalesces_to_one_notice_per_workflow_and_kind() -> None:
    batch = [
        Change(changes.WORKFLOW_CREATED, workflow(1)),
        *(Change(changes.JOB_STATE, workflow(1), job(job_id)) for job_id in range(10_000)),
        Change(changes.WORKFLOW_STATUS, workflow(1), previous="pending"),
        Change(changes.WORKERS_STATUS),
        Change(changes.JOB_STATE, workflow(2), job(20_000)),
        Change(changes.WORKERS_STATUS),
    ]
    assert [(notice.event, notice.workflow_id) for notice in notices(batch)] == [
        ("new_workflow", 1),
        ("update_workflow", 1),
        ("workers_status_updated", None),
        ("update_workflow", 2),
    ]


def test_progressions_keep_one_notice_per_job_with_its_last_value() -> None:
    batch = [
        Change(changes.JOB_PROGRESSION, workflow(1), job(7), progression=10),
        Change(changes.JOB_PROGRESSION, workflow(1), job(8), progression=5),
        Change(changes.JOB_PROGRESSION, workflow(1), job(7), progression=60),
    ]
    assert [(notice.job_id, notice.progression) for notice in notices(batch)] == [(7, 60), (8, 5)]


def test_retries_and_deletions_have_their_own_notices() -> None:
    batch = [
        Change(changes.JOB_RETRIED, workflow(3), job(9, "error")),
        Change(changes.JOB_STATE, workflow(3), job(9, "retrying")),
        Change(changes.WORKFLOW_DELETED, workflow(4)),
    ]
    assert notices(batch) == [
        Notice("retry_job", 3, job_id=9, groups=("administrator",)),
        Notice("update_workflow", 3, groups=("administrator",)),
        Notice("delete_workflow", 4, groups=("administrator",)),
    ]


def test_a_payload_stays_under_the_limit_by_leaving_the_groups_out() -> None:
    small = Notice("update_workflow", 5, groups=("administrator", "team"))
    assert decode(encode(small)) == small
    many = tuple(f"group_{index:05d}" for index in range(1000))
    (notice,) = notices([Change(changes.JOB_STATE, workflow(5, many), job(1))])
    payload = encode(notice)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert decode(payload) == Notice("update_workflow", 5)


def test_frames_carry_ids_and_never_the_groups() -> None:
    assert frame(Notice("update_workflow", 5, groups=("secret_group",))) == (
        '{"topic":"notifications:all","event":"update_workflow_5","payload":{"body":{"workflow_id":5}}}'
    )
    assert frame(Notice("job_progression", 5, job_id=9, progression=40, groups=("g",))) == (
        '{"topic":"notifications:all","event":"job_progression",'
        '"payload":{"body":{"workflow_id":5,"job_id":9,"progression":40}}}'
    )
    assert frame(Notice("retry_job", 5, job_id=9)) == (
        '{"topic":"notifications:all","event":"retry_job","payload":{"body":{"workflow_id":5,"job_id":9}}}'
    )
    assert frame(Notice("workers_status_updated")) == (
        '{"topic":"notifications:all","event":"workers_status_updated","payload":{"body":{}}}'
    )


def test_who_sees_a_notice() -> None:
    member, outsider = Principal("m", ("team",)), Principal("o", ("other",))
    update = Notice("update_workflow", 5)
    assert visible(update, member, ("team", "admins"))
    assert not visible(update, outsider, ("team", "admins"))
    assert not visible(update, member, None)  # deleted, groups unknown: nobody
    assert visible(Notice("workers_status_updated"), outsider, None)
    assert wanted(update, None) and wanted(update, 5) and not wanted(update, 6)
    assert not wanted(Notice("workers_status_updated"), 5)


class Backlogged:
    """A subscriber with ``waiting`` notices queued behind the one it yields."""

    def __init__(self, notice: Notice, waiting: int) -> None:
        self.notice, self.waiting = notice, waiting

    @property
    def qsize(self) -> int:
        return self.waiting

    async def iter_events(self):  # type: ignore[no-untyped-def]
        yield encode(self.notice)


def relayed(waiting: int) -> list[str]:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    notice = Notice(event="new_workflow", workflow_id=7, groups=("viewers",))
    principal = Principal(name="ann", groups=("viewers",))
    anyio.run(relay, Backlogged(notice, waiting), send, principal, None, None)
    return sent


def test_a_socket_too_far_behind_is_given_up_rather_than_left_to_grow() -> None:
    assert len(relayed(MAX_BACKLOG)) == 1
    with pytest.raises(TooSlow):
        relayed(MAX_BACKLOG + 1)
