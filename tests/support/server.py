"""A real HTTP server on 127.0.0.1 for tests: routes are plain Python callables.

    with FeedServer() as server:
        server.route("/feed.xml", Static(body, content_type="application/rss+xml"))
        server.url("/feed.xml")  # -> "http://127.0.0.1:PORT/feed.xml"

Each handler gets the parsed request and returns a ``Reply`` (or writes to the
socket itself for trickling/endless bodies). Every request is logged in
``server.requests`` so tests can count hits.

Ready-made misbehaving handlers: ``Redirect``, ``Sequence`` (replies in turn,
e.g. a 500 storm then recovery), ``Trickle`` (slowloris), ``Endless``,
``Stall`` (headers, then silence) and ``Gated`` (counts requests in flight).
Every streamed body is bounded in length and stops when the client hangs up.
"""

from __future__ import annotations

import email.utils
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when the request arrived
    client_port: int = 0  # the client's source port: one port = one kept-alive connection


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to sleep between chunks of an iterable body (slow servers).
    delay_s: float = 0.0


Handler = Callable[[Request], Reply]


class Static:
    """Serve fixed bytes with ETag/Last-Modified and honour conditional requests."""

    def __init__(
        self,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: bool = True,
        last_modified: float | None = 1_700_000_000.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"' if etag else None
        self.last_modified = (
            email.utils.formatdate(last_modified, usegmt=True) if last_modified else None
        )
        self.extra = headers or {}

    def __call__(self, request: Request) -> Reply:
        headers = {"Content-Type": self.content_type, **self.extra}
        if self.etag:
            headers["ETag"] = self.etag
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
        inm = request.headers.get("if-none-match")
        ims = request.headers.get("if-modified-since")
        if (self.etag and inm == self.etag) or (
            not inm and self.last_modified and ims == self.last_modified
        ):
            return Reply(304, b"", headers)
        return Reply(200, self.body, headers)


class Redirect:
    """Redirect to ``location`` (absolute, or a path on this server) with ``status``."""

    def __init__(self, location: str, status: int = 301) -> None:
        self.location = location
        self.status = status

    def __call__(self, request: Request) -> Reply:
        return Reply(self.status, b"", {"Location": self.location})


class Sequence:
    """Answer each request with the next handler (or reply); the last one repeats."""

    def __init__(self, *steps: Handler | Reply) -> None:
        self.steps = list(steps)
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            step = self.steps[min(self.calls, len(self.steps) - 1)]
            self.calls += 1
        return step if isinstance(step, Reply) else step(request)


def _bounded(chunk: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield chunk


class Trickle:
    """A slowloris: ``chunk`` every ``every_s`` seconds, at most ``count`` times."""

    def __init__(self, chunk: bytes = b" ", *, every_s: float = 0.05, count: int = 400) -> None:
        self.chunk, self.every_s, self.count = chunk, every_s, count

    def __call__(self, request: Request) -> Reply:
        body = _bounded(self.chunk, self.count)
        return Reply(200, body, {"Content-Type": "application/rss+xml"}, delay_s=self.every_s)


class Endless:
    """A body that never ends (bounded to ``count`` chunks so the thread always stops)."""

    def __init__(self, chunk: bytes = b"<rss>" + b"x" * 65531, *, count: int = 20_000) -> None:
        self.chunk, self.count = chunk, count

    def __call__(self, request: Request) -> Reply:
        return Reply(200, _bounded(self.chunk, self.count), {"Content-Type": "application/rss+xml"})


class Stall:
    """Send the status line and headers, then nothing for ``seconds``."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds

    def __call__(self, request: Request) -> Reply:
        def body() -> Iterator[bytes]:
            time.sleep(self.seconds)
            yield b"<rss/>"

        return Reply(200, body(), {"Content-Type": "application/rss+xml"})


class Gated:
    """Wrap a handler, hold each request ``hold_s`` and record the most in flight at once."""

    def __init__(self, inner: Handler, *, hold_s: float = 0.2) -> None:
        self.inner, self.hold_s = inner, hold_s
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.hold_s)
            return self.inner(request)
        finally:
            with self._lock:
                self.in_flight -= 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-exchange is what many tests do on purpose.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                path = self.path
                request = Request(
                    "GET",
                    path,
                    {k.lower(): v for k, v in self.headers.items()},
                    at=time.monotonic(),
                    client_port=int(self.client_address[1]),
                )
                with server._lock:
                    server.requests.append(request)
                handler = server.routes.get(path) or server.routes.get(path.split("?")[0])
                reply = handler(request) if handler else Reply(404, b"not found")
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    self.close_connection = True

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                # Streamed body: close-delimited, so no length is needed.
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for chunk in reply.body:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if reply.delay_s:
                        time.sleep(reply.delay_s)

        self._httpd = _QuietServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
