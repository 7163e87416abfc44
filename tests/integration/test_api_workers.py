"""Worker definitions, live workers and workers through the API (api.md §7.3–§7.5, §13 cases 5–11),
and the upserts the protocol consumers share (``stepflow.workers``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import pytest
from litestar.testing import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.app import create_app
from stepflow.models import Job, LiveWorker, Outbox, WorkerDefinition, WorkerStatus
from stepflow.settings import Settings
from stepflow.wire.topology import DIRECT_MESSAGING
from stepflow.workers import (
    InvalidWorkerPayload,
    terminate_live_workers,
    terminate_worker_status,
    upsert_live_worker,
    upsert_worker_definition,
    upsert_worker_status,
    worker_status_values,
)
from tests.integration.broker import Capture
from tests.support import stored_workflow

PREFIX = "/api/step_flow"

DEFINITION = {
    "queue_name": "my_queue",
    "label": "My Queue",
    "version": "1.2.3",
    "short_description": "short description",
    "description": "long description",
    "parameters": {},
}

SDK2_DESCRIPTION = {
    "description": "Tiny MCAI echo worker used to capture the StepFlow <-> MCAI AMQP protocol",
    "direct_messaging_queue_name": "direct_messaging_64955099-d784-456d-8c63-18b2348a3d48",
    "instance_id": "64955099-d784-456d-8c63-18b2348a3d48",
    "label": "echo_worker",
    "license": "MIT",
    "name": "echo_worker",
    "queue_name": "job_echo",
    "sdk_version": "2.2.1",
    "version": "0.1.0",
    "parameters": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["message"],
        "properties": {"message": {"type": "string"}, "requirements": {"type": "object"}},
    },
}

INSTANCE_ID = "e1297fe6-fe94-49cf-9ef8-1a751cba28f2"
SYSTEM_INFO = {
    "docker_container_id": INSTANCE_ID,
    "number_of_processors": 12,
    "total_memory": 16574754,
    "total_swap": 2046816,
    "used_memory": 8865633,
    "used_swap": 0,
}
IDLE_STATUS = {
    "job": None,
    "type": "status",
    "worker": {
        "activity": "Idle",
        "description": "This worker is just an example.",
        "direct_messaging_queue_name": f"direct_messaging_{INSTANCE_ID}",
        "instance_id": INSTANCE_ID,
        "label": "UnitTestWorker",
        "queue_name": "job_test_worker",
        "sdk_version": "2.3.4",
        "short_description": "A test worker",
        "system_info": SYSTEM_INFO,
        "version": "1.2.3",
    },
}
IDLE_VIEW = {
    "activity": "Idle",
    "current_job": None,
    "description": "This worker is just an example.",
    "direct_messaging_queue_name": f"direct_messaging_{INSTANCE_ID}",
    "instance_id": INSTANCE_ID,
    "label": "UnitTestWorker",
    "queue_name": "job_test_worker",
    "sdk_version": "2.3.4",
    "short_description": "A test worker",
    "system_info": SYSTEM_INFO,
    "version": "1.2.3",
}
BUSY_SYSTEM_INFO = {"docker_container_id": "2856099cee46", "number_of_processors": 4, "used_swap": 0}
BUSY_STATUS = {
    "job": {
        "destination_paths": [],
        "execution_duration": 4.6e-8,
        "job_id": 38,
        "parameters": [],
        "status": "initialized",
    },
    "type": "status",
    "worker": {"activity": "Busy", "system_info": BUSY_SYSTEM_INFO},
}
BUSY_VIEW = {
    "activity": "Busy",
    "current_job": {"execution_duration": 4.6e-8, "job_id": 38, "status": "initialized"},
    "description": "",
    "direct_messaging_queue_name": "",
    "instance_id": "2856099cee46",
    "label": "",
    "queue_name": "",
    "sdk_version": "",
    "short_description": "",
    "system_info": BUSY_SYSTEM_INFO,
    "version": "",
}


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, launcher=lambda _: None)) as test_client:
        yield test_client


def store_status(sessions: sessionmaker[Session], message: dict[str, Any]) -> str:
    with sessions() as session, session.begin():
        return upsert_worker_status(session, message)


def insert_job(sessions: sessionmaker[Session]) -> int:
    with sessions() as session, session.begin():
        workflow = stored_workflow(session)
        job = Job(workflow_id=workflow.id, step_id=0, input_index=0, name="job_live", is_live=True)
        session.add(job)
        session.flush()
        return job.id


# Worker definitions (cases 6–9)


def test_create_then_list_worker_definitions(client: TestClient) -> None:
    assert client.get(f"{PREFIX}/worker_definitions").json() == {"data": [], "total": 0}
    created = client.post(f"{PREFIX}/worker_definitions", json=DEFINITION)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert set(data) == {
        "id",
        "queue_name",
        "label",
        "short_description",
        "description",
        "version",
        "parameters",
        "created_at",
    }
    assert {key: data[key] for key in DEFINITION} == DEFINITION
    assert datetime.fromisoformat(data["created_at"]).tzinfo is None
    listed = client.get(f"{PREFIX}/worker_definitions").json()
    assert listed["total"] == 1 and listed["data"] == [data]


def test_create_worker_definition_requires_fields(client: TestClient) -> None:
    response = client.post(f"{PREFIX}/worker_definitions", json={})
    assert response.status_code == 422
    assert response.json() == {
        "errors": {
            "queue_name": ["can't be blank"],
            "label": ["can't be blank"],
            "version": ["can't be blank"],
            "short_description": ["can't be blank"],
            "description": ["can't be blank"],
        }
    }


def test_create_worker_definition_without_parameters(client: TestClient) -> None:
    body = {key: value for key, value in DEFINITION.items() if key != "parameters"}
    response = client.post(f"{PREFIX}/worker_definitions", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["parameters"] == {}


def test_show_worker_definition(client: TestClient) -> None:
    definition_id = client.post(f"{PREFIX}/worker_definitions", json=DEFINITION).json()["data"]["id"]
    response = client.get(f"{PREFIX}/worker_definitions/{definition_id}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["queue_name"] == "my_queue" and data["version"] == "1.2.3" and data["id"] == definition_id
    unknown = client.get(f"{PREFIX}/worker_definitions/{definition_id + 1}")
    assert unknown.status_code == 404
    assert unknown.json() == {"errors": {"detail": f"Worker definition {definition_id + 1} not found"}}
    malformed = client.get(f"{PREFIX}/worker_definitions/abc")
    assert malformed.status_code == 422 and malformed.json() == {"errors": {"id": ["is invalid"]}}


def test_sdk2_description_is_accepted_and_the_same_version_is_refreshed(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    created = client.post(f"{PREFIX}/worker_definitions", json=SDK2_DESCRIPTION)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["short_description"] == "" and data["parameters"] == SDK2_DESCRIPTION["parameters"]
    again = client.post(f"{PREFIX}/worker_definitions", json={**SDK2_DESCRIPTION, "description": "new text"})
    assert again.status_code == 201
    assert again.json()["data"]["id"] == data["id"] and again.json()["data"]["description"] == "new text"
    assert client.get(f"{PREFIX}/worker_definitions").json()["total"] == 1
    with sessions() as session:
        assert session.scalars(select(WorkerDefinition.sdk_version)).one() == "2.2.1"


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"parameters": "nope"}, {"parameters": ["is invalid"]}),
        ({"parameters": [1, 2]}, {"parameters": ["is invalid"]}),
        ({"label": 12}, {"label": ["is invalid"]}),
        ({"version": "  "}, {"version": ["can't be blank"]}),
        ({"short_description": None, "sdk_version": "1.4.0"}, {"short_description": ["can't be blank"]}),
        ({"sdk_version": 2}, {"sdk_version": ["is invalid"]}),
    ],
)
def test_create_worker_definition_names_bad_fields(
    client: TestClient, change: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = client.post(f"{PREFIX}/worker_definitions", json={**DEFINITION, **change})
    assert response.status_code == 422
    assert response.json() == {"errors": errors}


def test_worker_definition_body_must_be_an_object_and_old_parameter_lists_are_kept(client: TestClient) -> None:
    assert client.post(f"{PREFIX}/worker_definitions", json=[DEFINITION]).status_code == 422
    parameters = [{"id": "source_path", "type": "string", "required": True}]
    response = client.post(f"{PREFIX}/worker_definitions", json={**DEFINITION, "parameters": parameters})
    assert response.status_code == 201 and response.json()["data"]["parameters"] == parameters


def test_worker_definitions_are_paginated_newest_first(client: TestClient) -> None:
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        assert client.post(f"{PREFIX}/worker_definitions", json={**DEFINITION, "version": version}).status_code == 201
    first = client.get(f"{PREFIX}/worker_definitions", params={"size": "2"}).json()
    assert first["total"] == 3 and [item["version"] for item in first["data"]] == ["1.0.2", "1.0.1"]
    second = client.get(f"{PREFIX}/worker_definitions", params={"size": "2", "page": "1"}).json()
    assert [item["version"] for item in second["data"]] == ["1.0.0"]
    assert client.get(f"{PREFIX}/worker_definitions", params={"page": "x"}).status_code == 422


# Live workers (case 5)


@pytest.fixture
def live_workers(sessions: sessionmaker[Session]) -> int:
    job_id = insert_job(sessions)
    now = datetime.now(UTC)
    fixtures: list[dict[str, Any]] = [
        {"ips": ["127.0.0.1"], "ports": [8080]},
        {"ips": ["127.0.0.1"], "creation_date": now},
        {"ips": ["127.0.0.1"], "creation_date": now - timedelta(hours=1), "termination_date": now},
        {"creation_date": now - timedelta(hours=1)},
        {},
    ]
    with sessions() as session, session.begin():
        for index, values in enumerate(fixtures):
            session.add(LiveWorker(job_id=job_id, direct_messaging_queue_name=f"direct_messaging_{index}", **values))
    return job_id


@pytest.mark.parametrize(
    ("query", "total"),
    [({}, 5), ({"initializing": "true"}, 3), ({"started": "true"}, 1), ({"terminated": "true"}, 1)],
)
def test_live_worker_filters(client: TestClient, live_workers: int, query: dict[str, str], total: int) -> None:
    response = client.get(f"{PREFIX}/live_workers", params=query)
    assert response.status_code == 200
    assert response.json()["total"] == total


def test_live_worker_view(client: TestClient, live_workers: int) -> None:
    (worker,) = client.get(f"{PREFIX}/live_workers", params={"terminated": "false"}).json()["data"]
    assert set(worker) == {
        "id",
        "ips",
        "ports",
        "instance_id",
        "direct_messaging_queue_name",
        "creation_date",
        "termination_date",
        "inserted_at",
    }
    assert worker["ips"] == ["127.0.0.1"] and worker["ports"] == [] and worker["instance_id"] == ""
    assert worker["creation_date"].endswith("Z") and worker["termination_date"].endswith("Z")
    assert datetime.fromisoformat(worker["inserted_at"]).tzinfo is None
    both = client.get(f"{PREFIX}/live_workers", params={"initializing": "1", "terminated": "1"}).json()
    assert both == {"data": [], "total": 0}
    page = client.get(f"{PREFIX}/live_workers", params={"size": "2", "page": "2"}).json()
    assert page["total"] == 5 and len(page["data"]) == 1


def test_live_workers_go_with_their_job(client: TestClient, sessions: sessionmaker[Session], live_workers: int) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(Job).where(Job.id == live_workers))
    assert client.get(f"{PREFIX}/live_workers").json() == {"data": [], "total": 0}


# Workers (cases 10–11)


def test_show_worker(client: TestClient, sessions: sessionmaker[Session]) -> None:
    store_status(sessions, IDLE_STATUS)
    response = client.get(f"{PREFIX}/workers/{INSTANCE_ID}")
    assert response.status_code == 200
    assert seen_now(response.json()) == IDLE_VIEW
    assert response.text.startswith('{"activity":"Idle","current_job":null,')


def seen_now(view: dict[str, Any]) -> dict[str, Any]:
    """The view without ``last_seen_at``, checked to be a UTC time of the last few seconds."""
    seen = datetime.fromisoformat(view.pop("last_seen_at"))
    assert seen.tzinfo is not None and timedelta(0) <= datetime.now(UTC) - seen < timedelta(seconds=30)
    return view


def test_list_workers_newest_first(client: TestClient, sessions: sessionmaker[Session]) -> None:
    assert client.get(f"{PREFIX}/workers").json() == {"data": [], "total": 0}
    store_status(sessions, IDLE_STATUS)
    store_status(sessions, BUSY_STATUS)
    listed = client.get(f"{PREFIX}/workers").json()
    assert [seen_now(view) for view in listed["data"]] == [BUSY_VIEW, IDLE_VIEW] and listed["total"] == 2
    second = client.get(f"{PREFIX}/workers", params={"size": "1", "page": "1"}).json()
    assert [seen_now(view) for view in second["data"]] == [IDLE_VIEW] and second["total"] == 2


def test_a_worker_silent_for_three_status_broadcasts_is_lost(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    store_status(sessions, BUSY_STATUS)
    interval = settings.workers_status_interval
    with sessions() as session, session.begin():
        session.execute(update(WorkerStatus).values(updated_at=datetime.now(UTC) - timedelta(seconds=2.5 * interval)))
    busy = BUSY_VIEW["instance_id"]
    assert client.get(f"{PREFIX}/workers/{busy}").json()["activity"] == "Busy"
    with sessions() as session, session.begin():
        session.execute(update(WorkerStatus).values(updated_at=datetime.now(UTC) - timedelta(seconds=3.5 * interval)))
    view = client.get(f"{PREFIX}/workers").json()["data"][0]
    assert view["activity"] == "Lost" and view["current_job"] == BUSY_VIEW["current_job"]
    store_status(sessions, BUSY_STATUS)  # it answers again
    assert client.get(f"{PREFIX}/workers/{busy}").json()["activity"] == "Busy"


def test_unknown_worker_is_404(client: TestClient) -> None:
    response = client.get(f"{PREFIX}/workers/unknown")
    assert response.status_code == 404
    assert response.json() == {"errors": {"detail": "Worker unknown not found"}}


@pytest.fixture
def worker_orders(amqp_url: str) -> Iterator[Capture]:
    """Binds like the SDK worker ``INSTANCE_ID`` (headers exchange, x-match any)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    from stepflow.wire.topology import declare_direct_messaging

    declare_direct_messaging(connection.channel())
    connection.close()
    capture = Capture(amqp_url, DIRECT_MESSAGING, [])
    capture.channel.queue_bind(
        capture.queue, DIRECT_MESSAGING, arguments={"x-match": "any", "instance_id": INSTANCE_ID}
    )
    yield capture
    capture.close()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_order_reaches_the_worker(
    client: TestClient, sessions: sessionmaker[Session], worker_orders: Capture, method: str
) -> None:
    store_status(sessions, IDLE_STATUS)
    store_status(sessions, BUSY_STATUS)  # another worker: must not be addressed
    response = getattr(client, method)(
        f"{PREFIX}/workers/{INSTANCE_ID}", json={"type": "stop_process", "job_id": 123, "id": "ignored"}
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    ((properties, body),) = worker_orders.take(1)
    assert properties.headers == {"instance_id": INSTANCE_ID}
    assert body == {"type": "stop_process", "job_id": 123}
    assert worker_orders.take(1, timeout=0.3) == []
    with sessions() as session:
        assert session.scalars(select(Outbox)).all() == []  # confirmed, so deleted


def test_order_to_unknown_worker_or_with_a_bad_body(client: TestClient, sessions: sessionmaker[Session]) -> None:
    unknown = client.put(f"{PREFIX}/workers/nobody", json={"type": "status"})
    assert unknown.status_code == 404
    assert unknown.json() == {"errors": {"detail": "Worker nobody not found"}}
    store_status(sessions, IDLE_STATUS)
    for content in (b"[1]", b'"stop"', b"{not json"):
        response = client.put(
            f"{PREFIX}/workers/{INSTANCE_ID}", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, content
        assert list(response.json()["errors"]) == ["body"]
    with sessions() as session:
        assert session.scalars(select(Outbox)).all() == []


def test_order_left_to_the_clock_when_the_broker_fails(settings: Settings, sessions: sessionmaker[Session]) -> None:
    def broken(_: Any) -> int:
        raise ConnectionError("broker down")

    store_status(sessions, IDLE_STATUS)
    with TestClient(create_app(settings, launcher=lambda _: None, send_owed=broken)) as client:
        assert client.put(f"{PREFIX}/workers/{INSTANCE_ID}", json={"type": "status"}).status_code == 204
    with sessions() as session:
        (row,) = session.scalars(select(Outbox)).all()
        assert row.actor == "direct_message"
        assert row.payload == {"headers": {"instance_id": INSTANCE_ID}, "body": {"type": "status"}}


def test_worker_routes_need_credentials(settings: Settings, sessions: sessionmaker[Session]) -> None:
    closed = dataclasses.replace(settings, auth_anonymous=False)
    with TestClient(create_app(closed, launcher=lambda _: None)) as client:
        for method, path in [
            ("get", "/worker_definitions"),
            ("get", "/worker_definitions/1"),
            ("post", "/worker_definitions"),
            ("get", "/live_workers"),
            ("get", "/workers"),
            ("get", f"/workers/{INSTANCE_ID}"),
            ("put", f"/workers/{INSTANCE_ID}"),
            ("patch", f"/workers/{INSTANCE_ID}"),
        ]:
            response = getattr(client, method)(PREFIX + path)
            assert response.status_code == 401, (method, path)
            assert response.json() == {"errors": {"detail": "You need to login to view this resource"}}


# The upserts the protocol consumers use


def test_worker_status_upsert_keeps_one_row_per_instance(sessions: sessionmaker[Session]) -> None:
    store_status(sessions, IDLE_STATUS)
    with sessions() as session:
        first = session.get(WorkerStatus, INSTANCE_ID)
        assert first is not None
        inserted_at, updated_at = first.inserted_at, first.updated_at
    busy = {**IDLE_STATUS, "job": {"job_id": 7, "status": "processing"}, "worker": {**IDLE_STATUS["worker"]}}
    busy["worker"]["activity"] = "Busy"
    assert store_status(sessions, busy) == INSTANCE_ID
    with sessions() as session:
        row = session.scalars(select(WorkerStatus)).one()
        assert row.activity == "Busy" and row.inserted_at == inserted_at and row.updated_at > updated_at
        assert row.current_job == {"execution_duration": None, "job_id": 7, "status": "processing"}
    with sessions() as session, session.begin():
        assert terminate_worker_status(session, SDK2_DESCRIPTION | {"instance_id": INSTANCE_ID}) == INSTANCE_ID
        assert terminate_worker_status(session, SDK2_DESCRIPTION) == SDK2_DESCRIPTION["instance_id"]
    with sessions() as session:
        known = session.get(WorkerStatus, INSTANCE_ID)
        assert known is not None and known.activity == "Terminated" and known.current_job is None
        assert known.label == "UnitTestWorker"  # the rest of its last status stays
        new = session.get(WorkerStatus, SDK2_DESCRIPTION["instance_id"])
        assert new is not None and new.activity == "Terminated" and new.queue_name == "job_echo"


def test_worker_status_values_reject_messages_without_an_instance() -> None:
    with pytest.raises(InvalidWorkerPayload) as missing:
        worker_status_values({"type": "status", "job": None, "worker": {"activity": "Idle"}})
    assert missing.value.errors == {"instance_id": ["can't be blank"]}
    with pytest.raises(InvalidWorkerPayload):
        worker_status_values({"type": "status"})


def test_worker_definition_and_live_worker_upserts(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        first = upsert_worker_definition(session, SDK2_DESCRIPTION)
        assert upsert_worker_definition(session, SDK2_DESCRIPTION) == first
        with pytest.raises(InvalidWorkerPayload):
            upsert_worker_definition(session, {"queue_name": "job_x"})
    job_id = insert_job(sessions)
    started = datetime(2020, 1, 31, 9, 48, 53, tzinfo=UTC)
    with sessions() as session, session.begin():
        live = upsert_live_worker(session, job_id, "direct_messaging_abc")
        same = upsert_live_worker(
            session, job_id, "direct_messaging_abc", ips=["10.0.0.1"], ports=[9000], instance_id="abc"
        )
        assert same == live
        upsert_live_worker(session, job_id, "direct_messaging_abc", creation_date=started)
        assert terminate_live_workers(session, job_id, started + timedelta(minutes=1)) == 1
        assert terminate_live_workers(session, job_id) == 0
    with sessions() as session:
        row = session.scalars(select(LiveWorker)).one()
        assert (row.ips, row.ports, row.instance_id) == (["10.0.0.1"], [9000], "abc")
        assert row.creation_date == started and row.termination_date == started + timedelta(minutes=1)
