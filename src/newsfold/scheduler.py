"""The daemon: APScheduler 3.x ticks; each tick claims the feeds that are due and polls them.

The schedule itself lives in the database (``feeds.next_fetch_at``), not in
APScheduler: the scheduler only drives a short periodic *poll cycle*, so feeds
added, changed or removed by another process are picked up at the next tick,
and several daemons share the work through leases (``Storage.claim_due``:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a lease that expires after
``daemon.lease_s`` so a crashed worker's feeds are claimed again).

Stopping: the first SIGTERM/SIGINT stops taking new work and lets the running
cycle finish within ``daemon.grace_s``; what is still in flight then is
abandoned — each feed's writes are one transaction, so an abandoned feed has
written nothing, its lease is released, and it is simply polled again. A second
signal exits at once (status 128 + signal number).
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
from typing import TYPE_CHECKING, Any, TextIO

from apscheduler.schedulers.background import BackgroundScheduler

from newsfold import metrics
from newsfold.config import load_settings
from newsfold.errors import NewsfoldError, StorageError
from newsfold.health import start_health_server
from newsfold.logs import setup_logging
from newsfold.service import Service

if TYPE_CHECKING:
    from types import FrameType

    from newsfold.config import Settings
    from newsfold.types import FeedSource

log = logging.getLogger("newsfold.daemon")

# After the grace period the cycle is cancelled; this is how long cancellation may take.
ABANDON_WAIT_S = 5.0


class Daemon:
    """One worker: claims due feeds each tick and polls them with bounded concurrency."""

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
        self.abandoned = False  # the last stop had to cancel in-flight work
        # Guards the hand-over between a starting cycle and a stop request, and the loop.
        self._state = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running) and not self.stopping.is_set()

    # --- one poll cycle ----------------------------------------------------------------------

    def cycle(self) -> int:
        """Claim due feeds and poll them; returns how many were polled."""
        with self._state:
            if self.stopping.is_set():
                return 0
            self.cycle_idle.clear()
        claimed: list[FeedSource] = []
        try:
            self._reload_config()
            now = self.service.clock()
            storage = self.service.storage
            metrics.POLL_LAG.set(_lag_s(storage.next_due_at(), now))
            claimed = storage.claim_due(
                now=now,
                owner=self.worker_id,
                lease_s=self.settings.daemon.lease_s,
                limit=self.settings.fetch.concurrency * 4,
            )
            if claimed:
                self._poll(claimed)
                metrics.FEEDS_ERRORING.set(storage.stats().feeds_erroring)
            self.last_cycle_ok = True
            return len(claimed)
        except asyncio.CancelledError:
            log.warning(
                "poll cycle abandoned at shutdown; its feeds will be polled again",
                extra={"event": "abandon", "feeds": len(claimed)},
            )
            self._release(claimed)
            return 0
        except NewsfoldError as e:
            self.last_cycle_ok = False
            log.error("poll cycle failed: %s", e, extra={"event": "cycle_error"})
            self._release(claimed)
            return 0
        except Exception:
            self.last_cycle_ok = False
            log.exception("poll cycle crashed", extra={"event": "cycle_error"})
            self._release(claimed)
            return 0
        finally:
            self.last_cycle_at = datetime.now(UTC)
            metrics.LAST_CYCLE.set(self.last_cycle_at.timestamp())
            self.cycle_idle.set()

    def _poll(self, claimed: list[FeedSource]) -> None:
        loop = asyncio.new_event_loop()
        try:
            with self._state:
                self._loop = loop
                self._task = loop.create_task(self.service.poll_sources(claimed))
                task = self._task
            summary = loop.run_until_complete(task)
        finally:
            with self._state:
                self._loop = None
                self._task = None
            loop.close()
        log.info(
            "poll cycle done",
            extra={
                "event": "cycle",
                "worker": self.worker_id,
                "feeds": len(summary.feeds),
                "new_items": summary.new_articles,
                "errors": summary.errors,
                "duration_ms": round(summary.duration_s * 1000),
            },
        )

    def _release(self, claimed: list[FeedSource]) -> None:
        """Give back leases of feeds this cycle did not finish (finished ones are already free)."""
        if not claimed:
            return
        try:
            self.service.storage.release((s.id for s in claimed), owner=self.worker_id)
        except StorageError as e:  # the lease then simply expires after lease_s
            log.error("could not release leases: %s", e)

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
        added = self.service.sync_config_feeds(fresh)
        log.info("settings file reloaded", extra={"event": "reload", "feeds_added": added})

    # --- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        with self._state:
            self.stopping.set()

    def abandon_in_flight(self) -> None:
        with self._state:
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                # The loop may close between our look and the call: nothing left to cancel then.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)

    def serve(self, *, once: bool = False) -> int:
        """Run until ``request_stop``; returns the exit status."""
        if once:
            self.cycle()
            self.service.close()
            return 0 if self.last_cycle_ok else 1
        daemon = self.settings.daemon
        self.scheduler.add_job(
            self.cycle,
            "interval",
            seconds=daemon.tick_s,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="poll-cycle",
        )
        self.scheduler.start()
        log.info(
            "daemon started",
            extra={"event": "start", "worker": self.worker_id, "tick_s": daemon.tick_s},
        )
        self.stopping.wait()
        log.info(
            "stopping: no new work; waiting up to %.0fs for in-flight fetches",
            daemon.grace_s,
            extra={"event": "stopping"},
        )
        self.scheduler.shutdown(wait=False)
        if not self.cycle_idle.wait(daemon.grace_s):
            self.abandoned = True
            self.abandon_in_flight()
            self.cycle_idle.wait(ABANDON_WAIT_S)
        self.service.close()
        log.info("daemon stopped", extra={"event": "stop", "abandoned": self.abandoned})
        return 0


def run_daemon(
    settings: Settings,
    *,
    config_path: Path | None = None,
    http: str | None = None,
    once: bool = False,
) -> int:
    setup_logging(settings.log_level, settings.log_format)
    lock = single_writer_lock(settings.database_url)
    daemon = Daemon(settings, config_path=config_path)
    signals = {"count": 0}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: exiting at once", extra={"event": "kill"})
            logging.shutdown()
            os._exit(128 + signum)
        log.info("signal %s received", signal.Signals(signum).name, extra={"event": "signal"})
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listen = http or settings.http.listen
    server = None
    if listen and not once:
        server = start_health_server(listen, daemon)
    try:
        code = daemon.serve(once=once)
    finally:
        if server is not None:
            server.shutdown()
        if lock is not None:
            lock.close()
    if daemon.abandoned and not daemon.cycle_idle.is_set():
        # A worker thread is still stuck in a call that cannot be cancelled (a database
        # write, a parse). Its transaction is not committed, so leaving now loses nothing,
        # while waiting for it would break the grace period promised to the supervisor.
        logging.shutdown()
        os._exit(code)
    return code


def single_writer_lock(database_url: str) -> TextIO | None:
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


def _lag_s(next_due: datetime | None, now: datetime) -> float:
    """How long the most overdue feed has been waiting (0 when nothing is due)."""
    if next_due is None:
        return 0.0
    if next_due.tzinfo is None:
        next_due = next_due.replace(tzinfo=UTC)
    return max(0.0, (now - next_due).total_seconds())


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return None
