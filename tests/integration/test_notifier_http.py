"""The notifier's HTTP core against a real local HTTP server (no database, no broker, no internet)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from stepflow.notifier import (
    MISSING_SLACK_CONFIGURATION,
    Delivery,
    HttpRequest,
    NotificationError,
    deliver,
    exponential_backoff,
    inspect_string,
    new_client,
    sign,
    signed_headers,
    slack_error_message,
    slack_outcome,
    slack_request,
    webhook_request,
)
from stepflow.notifier.http import MAX_BODY_BYTES
from stepflow.notifier.signing import verify
from tests.http_server import RecordingServer, Reply

TOKEN = "xoxb-very-secret-token-1234"
SECRET = "hook-signing-secret"


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client(timeout=5.0, trust_env=False) as http:
        yield http


class Sleeps(list[float]):
    """A fake ``sleep`` recording the delays asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A URL on 127.0.0.1 where nothing listens: a bound, non-listening socket holds the port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/hook"


def post(url: str, body: str = "{}") -> HttpRequest:
    return HttpRequest("POST", url, {"Content-Type": "application/json"}, body)


# --- deliver: statuses -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_succeeds_at_once(server, client, sleeps, status):
    server.reply("/hook", (status, "" if status == 204 else "fine"))
    delivery = deliver(client, post(server.url("/hook"), '{"a": 1}'), max_retries=3, sleep=sleeps)
    assert delivery == Delivery(ok=True, status=status, body="" if status == 204 else "fine", error=None, attempts=1)
    assert delivery.failure_message() == ""
    assert sleeps == []
    [received] = server.requests
    assert (received.method, received.path, received.body) == ("POST", "/hook", '{"a": 1}')
    assert received.headers["content-type"] == "application/json"


def test_404_is_permanent_with_the_originals_text(server, client, sleeps):
    server.reply("/hook", (404, ""))
    delivery = deliver(client, post(server.url("/hook")), max_retries=5, sleep=sleeps)
    assert not delivery.ok
    assert (delivery.status, delivery.attempts) == (404, 1)
    assert delivery.failure_message() == 'response status code: 404 with body: ""'
    assert len(server.requests) == 1 and sleeps == []


def test_503_then_200_succeeds_on_the_second_attempt(server, client, sleeps):
    server.reply("/hook", (503, "busy"), (200, "ok"))
    delivery = deliver(client, post(server.url("/hook")), max_retries=3, backoff=lambda n: n * 0.25, sleep=sleeps)
    assert delivery == Delivery(ok=True, status=200, body="ok", error=None, attempts=2)
    assert sleeps == [0.25]
    assert len(server.requests) == 2
    first, second = server.requests
    assert first.body == second.body and first.headers == second.headers


def test_500_forever_fails_after_all_retries_with_the_body(server, client, sleeps):
    server.reply("/hook", (500, 'boom: "quoted" \\ back\nslash'))
    delivery = deliver(client, post(server.url("/hook")), max_retries=3, backoff=lambda n: float(n), sleep=sleeps)
    assert not delivery.ok
    assert delivery.attempts == 4 == len(server.requests)
    assert sleeps == [1.0, 2.0, 3.0]
    assert delivery.failure_message() == ('response status code: 500 with body: "boom: \\"quoted\\" \\\\ back\\nslash"')


def test_no_retries_means_one_attempt(server, client, sleeps):
    server.reply("/hook", (502, ""))
    delivery = deliver(client, post(server.url("/hook")), max_retries=0, sleep=sleeps)
    assert (delivery.ok, delivery.attempts, sleeps) == (False, 1, [])


def test_redirect_is_not_followed_and_is_permanent(server, client, sleeps):
    server.reply("/hook", Reply(302, "", {"Location": "https://example.invalid/"}))
    delivery = deliver(client, post(server.url("/hook")), max_retries=3, sleep=sleeps)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, 302, 1)
    assert delivery.failure_message() == 'response status code: 302 with body: ""'


def test_response_body_is_capped(server, client):
    server.reply("/hook", (500, "é" * MAX_BODY_BYTES))
    delivery = deliver(client, post(server.url("/hook")), max_retries=0)
    assert len(delivery.body.encode()) <= MAX_BODY_BYTES
    assert delivery.body == "é" * (MAX_BODY_BYTES // 2)
    assert delivery.failure_message().endswith('" <> ...')


# --- deliver: transport errors and invalid requests ---------------------------------------------


def test_closed_port_is_a_transport_failure_after_retries(client, sleeps, closed_url):
    request = HttpRequest("POST", closed_url, {"Authorization": f"Bearer {TOKEN}"}, "{}")
    delivery = deliver(client, request, max_retries=2, sleep=sleeps)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, None, 3)
    assert len(sleeps) == 2
    assert delivery.failure_message().startswith("request failed: ConnectError")
    assert "\n" not in delivery.failure_message() and TOKEN not in delivery.failure_message()


def test_slow_server_times_out(server, sleeps):
    server.reply("/slow", Reply(200, "late", delay=5.0))
    with new_client(timeout=0.2, trust_env=False) as client:
        delivery = deliver(client, post(server.url("/slow")), max_retries=1, sleep=sleeps)
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, None, 2)
    assert delivery.failure_message().startswith("request failed: ReadTimeout")
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("method", "url", "message"),
    [
        ("FROB", "http://127.0.0.1:1/x", "unsupported HTTP method: 'FROB'"),
        ("POST", "not a url", "invalid URL: expected an http:// or https:// URL"),
        ("POST", "ftp://127.0.0.1/x", "invalid URL: expected an http:// or https:// URL"),
        ("POST", "", "invalid URL: expected an http:// or https:// URL"),
        ("POST", "http:///path", "invalid URL: no host"),
    ],
)
def test_invalid_requests_fail_without_sending(client, sleeps, method, url, message):
    delivery = deliver(client, HttpRequest(method, url, (), ""), max_retries=3, sleep=sleeps)
    assert delivery == Delivery(ok=False, status=None, body="", error=message, attempts=0)
    assert sleeps == []


def test_method_is_case_insensitive(server, client):
    server.reply("/hook", (200, "ok"))
    assert deliver(client, HttpRequest("put", server.url("/hook"), (), "x"), max_retries=0).ok
    assert server.requests[0].method == "PUT"


def test_backoff_doubles_from_half_a_second_capped_with_jitter():
    assert [exponential_backoff(n, jitter=lambda: 0.999999) for n in (1, 2, 3)] == pytest.approx([0.5, 1.0, 2.0])
    assert [exponential_backoff(n, jitter=lambda: 0.0) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert exponential_backoff(50) <= 30.0 and exponential_backoff(10_000) >= 15.0


def test_repr_never_shows_header_values():
    request = HttpRequest("POST", "http://h/x", {"Authorization": f"Bearer {TOKEN}"}, "")
    assert TOKEN not in repr(request) and "Authorization" in repr(request)
    assert request.headers == (("Authorization", f"Bearer {TOKEN}"),)


# --- webhooks ------------------------------------------------------------------------------------


def test_webhook_applies_headers_and_is_verifiably_signed(server, client):
    server.reply("/hook", (204, ""))
    body = '{"job": "done", "accents": "é"}'
    request = webhook_request(
        url=server.url("/hook?x=1"),
        method="put",
        headers_json='{"Content-Type": "application/json", "X-Count": 3, "X-StepFlow-Signature": "forged"}',
        body=body,
        signing_secret=SECRET,
    )
    assert deliver(client, request, max_retries=0).ok
    [received] = server.requests
    assert (received.method, received.path, received.body) == ("PUT", "/hook?x=1", body)
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-count"] == "3"
    assert [name for name, _ in received.header_pairs].count("X-StepFlow-Signature") == 1
    sent_at = received.headers["x-stepflow-timestamp"]
    assert received.headers["x-stepflow-signature"] == sign(SECRET, sent_at, body)
    assert verify(SECRET, sent_at, received.body, received.headers["x-stepflow-signature"])
    assert not verify("other", sent_at, received.body, received.headers["x-stepflow-signature"])
    assert len(received.headers["x-stepflow-delivery"]) == 36


def test_webhook_defaults_without_secret(server, client):
    server.reply("/hook", (200, "ok"))
    assert deliver(client, webhook_request(url=server.url("/hook")), max_retries=0).ok
    [received] = server.requests
    assert (received.method, received.body) == ("POST", "")
    assert "x-stepflow-signature" not in received.headers
    assert {"x-stepflow-delivery", "x-stepflow-timestamp"} <= received.headers.keys()


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"key", b"2024-05-01T12:00:00.000Z.{}", hashlib.sha256).hexdigest()
    assert sign("key", "2024-05-01T12:00:00.000Z", "{}") == f"sha256={expected}"
    headers = signed_headers(SECRET, "b", sent_at="t", delivery_id="d")
    assert headers == {
        "X-StepFlow-Delivery": "d",
        "X-StepFlow-Timestamp": "t",
        "X-StepFlow-Signature": sign(SECRET, "t", "b"),
    }


@pytest.mark.parametrize(
    ("headers_json", "message"),
    [
        ("{not json", "invalid headers: not valid JSON"),
        ('["a"]', "invalid headers: expected a JSON object, got an array"),
        ('"x"', "invalid headers: expected a JSON object, got a string"),
        ('{"X-A": null}', "invalid headers: the value of 'X-A' must be a string, got null"),
        ('{"X-A": {"b": 1}}', "invalid headers: the value of 'X-A' must be a string, got an object"),
        ('{"Bad Name": "v"}', "invalid headers: 'Bad Name' is not a valid header name"),
        ('{"X-A": "line\\nbreak"}', "invalid headers: the value of 'X-A' has control or non-ASCII characters"),
    ],
)
def test_webhook_rejects_bad_headers(headers_json, message):
    with pytest.raises(NotificationError) as raised:
        webhook_request(url="http://127.0.0.1/x", headers_json=headers_json)
    assert str(raised.value).startswith(message)


def test_blank_headers_mean_none():
    request = webhook_request(url="http://127.0.0.1/x", headers_json="  ", sent_at="t", delivery_id="d")
    assert request.headers == (("X-StepFlow-Delivery", "d"), ("X-StepFlow-Timestamp", "t"))


# --- Slack ---------------------------------------------------------------------------------------


def test_slack_request_sends_url_headers_and_body(server, client):
    server.reply("/api/chat.postMessage", (200, '{"ok": true, "channel": "C1"}'))
    request = slack_request(server.url("/api/"), TOKEN, "alerts", "hello «world»")
    delivery = slack_outcome(deliver(client, request, max_retries=0))
    assert delivery.ok and delivery.failure_message() == ""
    [received] = server.requests
    assert (received.method, received.path) == ("POST", "/api/chat.postMessage")
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.headers["content-type"].startswith("application/json")
    assert json.loads(received.body) == {"channel": "#alerts", "text": "hello «world»"}


@pytest.mark.parametrize(("channel", "expected"), [(None, "#general"), ("", "#general"), ("#ops", "#ops")])
def test_slack_channel_default_and_hash(channel, expected):
    assert json.loads(slack_request("http://h/api", TOKEN, channel, "t").body)["channel"] == expected


def test_slack_ok_false_is_a_failure(server, client):
    server.reply("/api/chat.postMessage", (200, '{"ok":false,"error":"channel_not_found"}'))
    delivery = slack_outcome(deliver(client, slack_request(server.url("/api"), TOKEN, "x", "t"), max_retries=2))
    assert (delivery.ok, delivery.status, delivery.attempts) == (False, 200, 1)
    assert delivery.failure_message() == "slack error: channel_not_found"


def test_slack_non_json_answer_is_a_failure(server, client):
    server.reply("/api/chat.postMessage", (200, "<html>proxy</html>"))
    delivery = slack_outcome(deliver(client, slack_request(server.url("/api"), TOKEN, "x", "t"), max_retries=0))
    assert delivery.failure_message() == "slack error: unexpected response"


def test_slack_http_failure_keeps_the_status_text(server, client):
    server.reply("/api/chat.postMessage", (403, '{"ok":false,"error":"invalid_auth"}'))
    delivery = slack_outcome(deliver(client, slack_request(server.url("/api"), TOKEN, "x", "t"), max_retries=2))
    assert delivery.attempts == 1
    assert delivery.failure_message() == (
        'response status code: 403 with body: "{\\"ok\\":false,\\"error\\":\\"invalid_auth\\"}"'
    )
    assert TOKEN not in delivery.failure_message()


def test_slack_transport_failure_never_shows_the_token(client, sleeps, closed_url):
    api = closed_url.rsplit("/", 1)[0]
    delivery = slack_outcome(deliver(client, slack_request(api, TOKEN, "x", "t"), max_retries=1, sleep=sleeps))
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert delivery.failure_message().startswith("request failed: ")
    assert TOKEN not in delivery.failure_message() and TOKEN not in repr(delivery)


@pytest.mark.parametrize("token", [None, "", "  "])
def test_slack_without_token_is_missing_configuration(token):
    with pytest.raises(NotificationError, match=f"^{MISSING_SLACK_CONFIGURATION}$"):
        slack_request("http://127.0.0.1/api", token, "general", "t")


def test_slack_error_message_is_the_originals():
    assert slack_error_message("my_job", 12, "https://sf.example", 34, "boom") == (
        "Error for job my_job #12 <https://sf.example/workflows/34 |Open Workflow>\n```boom```"
    )


# --- Elixir inspect ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('say "hi" \\ #{x}', '"say \\"hi\\" \\\\ \\#{x}"'),
        ("tab\tnl\ncr\r", '"tab\\tnl\\ncr\\r"'),
        ("é ✓", '"é ✓"'),
        ("\x00a", "<<0, 97>>"),
        ("\x01" * 60, "<<" + ", ".join(["1"] * 50) + ", ...>>"),
    ],
)
def test_inspect_string_matches_elixir(text, expected):
    assert inspect_string(text) == expected
