"""A small HTTP endpoint for the daemon: /healthz, /readyz and /metrics.

* ``/healthz`` — the process answers (liveness: restart me if this fails);
* ``/readyz`` — the database answers with our schema, the scheduler runs and a
  poll cycle ended recently (readiness: 503 with the failing check otherwise);
* ``/metrics`` — Prometheus text format from ``newsfold.metrics``.

It reads the daemon through ``Probe`` and never writes anything.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsfold.errors import ConfigError, NewsfoldError

if TYPE_CHECKING:
    from newsfold.config import Settings


class _Storage(Protocol):
    def check(self) -> None: ...


class _Service(Protocol):
    @property
    def storage(self) -> _Storage: ...


class Probe(Protocol):
    """What readiness looks at (``newsfold.daemon.scheduler.Daemon`` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def service(self) -> _Service: ...
    @property
    def running(self) -> bool: ...
    @property
    def last_cycle_at(self) -> datetime | None: ...


# /readyz fails when no poll cycle ended within this many ticks (plus a minute of slack,
# since one cycle may legitimately wait on slow feeds up to the fetch timeout).
STALE_TICKS = 12
STALE_SLACK_S = 60.0


def readiness(probe: Probe, *, now: datetime | None = None) -> tuple[bool, dict[str, object]]:
    """Run the readiness checks; returns (ready, details for the response body)."""
    now = now or datetime.now(UTC)
    checks: dict[str, object] = {}
    try:
        probe.service.storage.check()
        checks["database"] = "ok"
    except NewsfoldError as e:
        checks["database"] = f"unreachable: {e}"
    checks["scheduler"] = "running" if probe.running else "stopped"
    last = probe.last_cycle_at
    age = (now - last).total_seconds() if last else None
    limit = probe.settings.daemon.tick_s * STALE_TICKS + STALE_SLACK_S
    recent = age is not None and age < limit
    checks["last_cycle_age_s"] = None if age is None else round(age, 1)
    from newsfold.normalise.page import extractor_problem

    # Shown, not failed on: feeds keep flowing without it, full-text pages as plain text.
    checks["extractor"] = extractor_problem() or "ok"
    ok = checks["database"] == "ok" and probe.running and recent
    return ok, checks


def parse_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8080' / '[::1]:8080' / '0.0.0.0:8080' → (host, port)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--http wants HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def start_health_server(listen: str, probe: Probe) -> ThreadingHTTPServer:
    """Serve the endpoints from a daemon thread; ``.shutdown()`` stops it."""
    host, port = parse_listen(listen)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # probes every few seconds: not news
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status": "ok"}\n', "application/json")
            elif path == "/readyz":
                ok, checks = readiness(probe)
                body = json.dumps({"ready": ok, **checks}).encode() + b"\n"
                self._send(200 if ok else 503, body, "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error": "not found"}\n', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        raise ConfigError(f"cannot listen on {listen}: {e}") from e
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
