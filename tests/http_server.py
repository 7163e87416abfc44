"""A real HTTP server on 127.0.0.1 for tests: records every request, answers from programmed replies.

    with RecordingServer() as server:
        server.reply("/hook", (503, "busy"), (200, "ok"))   # 503 first, then 200 from then on
        ... send to server.url("/hook") ...
        assert server.requests[0].headers["content-type"] == "application/json"

Replies are per path (query string ignored). Each request takes the next reply of its path's
queue; the last one is kept and repeats once the queue runs dry. A path with no reply gets
404 "no reply programmed". A :class:`Reply` may wait ``delay`` seconds first (to test timeouts);
stopping the server cuts those waits short. The server runs in a daemon thread, stops when the
``with`` block ends (or on :meth:`RecordingServer.stop`), and never logs to stderr.
"""

from __future__ import annotations

import http.server
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str | bytes = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Recorded:
    """One request as received. ``headers`` has lower-case names (the last of repeated ones wins);
    ``header_pairs`` keeps them all as sent."""

    method: str
    path: str
    headers: Mapping[str, str]
    header_pairs: tuple[tuple[str, str], ...]
    raw_body: bytes

    @property
    def body(self) -> str:
        return self.raw_body.decode("utf-8", "replace")


class RecordingServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: dict[str, deque[Reply]] = {}
        self._stopping = threading.Event()
        self.requests: list[Recorded] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="recording-http-server", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(self, path: str, *replies: Reply | tuple[int, str | bytes]) -> None:
        """Queue replies for ``path`` (after any already queued)."""
        with self._lock:
            queue = self._replies.setdefault(path, deque())
            queue.extend(item if isinstance(item, Reply) else Reply(*item) for item in replies)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.path.split("?", 1)[0] == path]

    def stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            queue = self._replies.get(path.split("?", 1)[0])
            if not queue:
                return Reply(404, "no reply programmed")
            return queue.popleft() if len(queue) > 1 else queue[0]

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (timeouts) are expected; say nothing."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: no lingering keep-alive threads
    server: _Server

    def _handle(self) -> None:
        owner = self.server.owner
        owner._record(
            Recorded(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                header_pairs=tuple(self.headers.items()),
                raw_body=self._read_body(),
            )
        )
        reply = owner._next_reply(self.path)
        if reply.delay and owner._stopping.wait(reply.delay):
            return
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status not in (204, 304) and "content-length" not in {name.lower() for name in reply.headers}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass
