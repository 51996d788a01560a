"""A feed server for the stack test, run inside a container on the compose network.

Serves the files under /feeds (any host name: the container answers to one alias per outlet),
holds each response ``/feeds/delay`` seconds so that ingest takes long enough to interrupt,
and logs one JSON line per request (path, client address) for the test to count fetches.
It is also the alert webhook (host ``hooks``): each POST is logged with its Idempotency-Key.
Standard library only: it runs on the newsfold image's Python.
"""

import hashlib
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path("/feeds")
LOG_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        target = (ROOT / path.lstrip("/")).resolve()
        try:
            delay = float((ROOT / "delay").read_text())
        except (OSError, ValueError):
            delay = 0.0
        line = json.dumps({"path": path, "client": self.client_address[0]}) + "\n"
        with LOG_LOCK:  # one write per line: threads must not interleave their records
            sys.stdout.write(line)
            sys.stdout.flush()
        if ROOT not in target.parents or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        time.sleep(delay)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """The alert webhook: one JSON line per delivery (its key and story), then 200."""
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            story = json.loads(body)["story"]["id"]
        except (ValueError, KeyError, TypeError):
            story = None
        line = json.dumps(
            {"alert": self.path, "key": self.headers.get("Idempotency-Key"), "story": story}
        )
        with LOG_LOCK:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    # PID 1 in its container: without a handler, SIGTERM would be ignored until the kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(
        ("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 80), Handler
    )
    server.daemon_threads = True
    server.serve_forever()
