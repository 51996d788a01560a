"""A real HTTP server on 127.0.0.1 for tests: routes are plain Python callables.

    with FeedServer() as server:
        server.route("/feed.xml", Static(body, content_type="application/rss+xml"))
        server.url("/feed.xml")  # -> "http://127.0.0.1:PORT/feed.xml"

Each handler gets the parsed request and returns a ``Reply`` (or writes to the
socket itself for trickling/endless bodies). Every request is logged in
``server.requests`` so tests can count hits.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


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
                request = Request("GET", path, {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.requests.append(request)
                handler = server.routes.get(path) or server.routes.get(path.split("?")[0])
                reply = handler(request) if handler else Reply(404, b"not found")
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

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

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
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
