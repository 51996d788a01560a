"""The daemon: APScheduler 3.x ticks; each tick claims the feeds that are due and polls them.

The schedule itself lives in the database (``feeds.next_fetch_at``), not in
APScheduler: the scheduler only drives a short periodic *poll cycle*, so feeds
added, changed or removed by another process are picked up at the next tick,
and several daemons share the work through leases (see ``Storage.claim_due``).

Stopping: the first SIGTERM/SIGINT stops taking new work and lets the running
cycle finish within ``grace_s``; what is still in flight then is abandoned —
its transaction never committed, so the feed is simply polled again later. A
second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from newsfold.config import load_settings
from newsfold.errors import NewsfoldError, StorageError
from newsfold.logs import setup_logging
from newsfold.service import Service

if TYPE_CHECKING:
    from newsfold.config import Settings

log = logging.getLogger("newsfold.daemon")

TICK_S = 5.0  # how often due feeds are looked for
LEASE_S = 600.0  # a crashed worker's claimed feeds become claimable again after this
GRACE_S = 20.0


class Daemon:
    def __init__(self, settings: Settings, *, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.config_mtime = _mtime(config_path)
        self.service = Service.open(settings)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.cycle_idle = threading.Event()
        self.cycle_idle.set()
        self.last_cycle_at: datetime | None = None
        self.last_cycle_ok = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.scheduler = BackgroundScheduler(timezone=UTC)

    # --- one poll cycle ----------------------------------------------------------------------

    def cycle(self) -> int:
        """Claim due feeds and poll them; returns how many were polled."""
        if self.stopping.is_set():
            return 0
        self.cycle_idle.clear()
        try:
            self._reload_config()
            claimed = self.service.storage.claim_due(
                now=self.service.clock(), owner=self.worker_id, lease_s=LEASE_S
            )
            if claimed:
                loop = asyncio.new_event_loop()
                self._loop = loop
                try:
                    task = loop.create_task(self.service.poll_sources(claimed))
                    self._tasks = {task}
                    summary = loop.run_until_complete(task)
                finally:
                    self._loop = None
                    loop.close()
                log.info(
                    "poll cycle done",
                    extra={
                        "event": "cycle",
                        "feeds": len(summary.feeds),
                        "new_items": summary.new_articles,
                        "errors": summary.errors,
                        "duration_ms": round(summary.duration_s * 1000),
                    },
                )
            self.last_cycle_ok = True
            return len(claimed)
        except asyncio.CancelledError:
            log.warning("poll cycle abandoned at shutdown; its feeds will be polled again")
            return 0
        except NewsfoldError as e:
            self.last_cycle_ok = False
            log.error("poll cycle failed: %s", e)
            return 0
        except Exception:
            self.last_cycle_ok = False
            log.exception("poll cycle crashed")
            return 0
        finally:
            self.last_cycle_at = datetime.now(UTC)
            self.cycle_idle.set()

    def _reload_config(self) -> None:
        """Pick up feeds added to or changed in the settings file, without a restart."""
        mtime = _mtime(self.config_path)
        if self.config_path is None or mtime == self.config_mtime:
            return
        self.config_mtime = mtime
        try:
            fresh = load_settings(self.config_path)
        except NewsfoldError as e:
            log.error("settings file changed but is invalid, keeping the old one: %s", e)
            return
        added = self.service.storage.sync_config_feeds(
            ((f.url, f.title, f.interval_s, f.full_text, f.tags) for f in fresh.feeds),
            now=self.service.clock(),
            default_interval_s=fresh.schedule.default_interval_s,
        )
        log.info("settings file reloaded", extra={"feeds_added": added})

    # --- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stopping.set()

    def abandon_in_flight(self) -> None:
        loop = self._loop
        if loop is not None:
            for task in list(self._tasks):
                loop.call_soon_threadsafe(task.cancel)

    def serve(self, *, once: bool = False) -> int:
        if once:
            self.cycle()
            return 0 if self.last_cycle_ok else 1
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=TICK_S,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            id="poll-cycle",
        )
        self.scheduler.start()
        log.info("daemon started", extra={"worker": self.worker_id})
        self.stopping.wait()
        log.info("stopping: no new work; waiting up to %.0fs for in-flight fetches", GRACE_S)
        self.scheduler.shutdown(wait=False)
        if not self.cycle_idle.wait(GRACE_S):
            self.abandon_in_flight()
            self.cycle_idle.wait(5.0)
        self.service.close()
        log.info("daemon stopped")
        return 0


def run_daemon(
    settings: Settings,
    *,
    config_path: Path | None = None,
    http: str | None = None,
    once: bool = False,
) -> int:
    setup_logging(settings.log_level, settings.log_format)
    lock = _single_writer_lock(settings.database_url)
    daemon = Daemon(settings, config_path=config_path)
    signals = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: exiting at once")
            os._exit(1)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listen = http or settings.http.listen
    server = None
    if listen:
        from newsfold.health import start_health_server

        server = start_health_server(listen, daemon)
    try:
        return daemon.serve(once=once)
    finally:
        if server is not None:
            server.shutdown()
        if lock is not None:
            lock.close()


def _single_writer_lock(database_url: str) -> Any:
    """SQLite has one writer: a second daemon on the same file refuses to start."""
    if not database_url.startswith("sqlite") or ":memory:" in database_url:
        return None
    path = Path(database_url.split(":///", 1)[-1]).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = (path.parent / (path.name + ".daemon.lock")).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        handle.close()
        raise StorageError(
            f"another newsfold daemon is already running on {path}; SQLite allows one writer "
            "(use PostgreSQL to run several workers)"
        ) from e
    return handle


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return None
