"""Serve feed documents from memory on 127.0.0.1 (a real socket: fetch cost is real)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
import contextlib


def _handler(docs: Mapping[str, bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real feed host

        def do_GET(self) -> None:
            body = docs.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) overflows when a poll opens its connections at once:
    # the dropped SYNs are retried after 1 s, which timed the kernel, not the pipeline.
    request_queue_size = 128


@contextlib.contextmanager
def serve(docs: Mapping[str, bytes]) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) while serving ``docs``."""
    server = _Server(("127.0.0.1", 0), _handler(docs))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
