"""A small HTTP endpoint for the daemon: /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsfold.errors import ConfigError, NewsfoldError

if TYPE_CHECKING:
    from newsfold.scheduler import Daemon

# /readyz fails when no poll cycle ended within this many ticks.
STALE_CYCLES = 12


def readiness(daemon: Daemon) -> tuple[bool, dict[str, object]]:
    from newsfold.scheduler import TICK_S

    checks: dict[str, object] = {}
    try:
        daemon.service.storage.check()
        checks["database"] = "ok"
    except NewsfoldError as e:
        checks["database"] = f"unreachable: {e}"
    running = daemon.scheduler.running and not daemon.stopping.is_set()
    checks["scheduler"] = "running" if running else "stopped"
    last = daemon.last_cycle_at
    age = (datetime.now(UTC) - last).total_seconds() if last else None
    recent = age is not None and age < TICK_S * STALE_CYCLES + 60
    checks["last_cycle_age_s"] = None if age is None else round(age, 1)
    ok = checks["database"] == "ok" and running and recent
    return ok, checks


def start_health_server(listen: str, daemon: Daemon) -> ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--http wants HOST:PORT, got {listen!r}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status": "ok"}\n', "application/json")
            elif path == "/readyz":
                ok, checks = readiness(daemon)
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

    server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
