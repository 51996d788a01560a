"""The daemon: APScheduler 3.x ticks; each tick claims as many due feeds as it has free slots.

The schedule itself lives in the database (``feeds.next_fetch_at``), not in
APScheduler: the scheduler only drives a short periodic *tick*, so feeds added,
changed or removed by another process are picked up at the next tick, and
several daemons share the work through leases (``Storage.claim_due``:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

Fair sharing: a tick claims at most the daemon's free slots
(``fetch.concurrency`` minus the feeds it is working on), and every claimed
feed is its own task on a long-lived event loop. No daemon hoards a queue it
cannot work on, so N daemons fetch about N times as many feeds as one when
the work is there; and one slow feed holds one slot, never the feeds due after
it. A slot that frees up is refilled at once (an early tick), not a tick later.
A tick never waits for fetches, and the next one is booked only when it ends, so
ticks never overlap (nor warn that they would).

Leases are short (``daemon.lease_s``, 60 s by default) and renewed by every tick
while a feed is being worked on (a heartbeat, every third of the lease): a
long fetch keeps its feed, and a dead daemon's feeds are claimed by another
within about ``lease_s``.

Retention: once a day (by the service's clock, and counted from the last prune any
worker of the database finished) a tick starts ``newsfold prune`` in a thread of
its own; the prune deletes in short batches between the polls' writes.

Stopping: the first SIGTERM/SIGINT stops taking new work and lets the feeds in
flight finish within ``daemon.grace_s``; what is still in flight then is
abandoned — each feed's writes are one transaction, so an abandoned feed has
written nothing, its lease is released, and it is simply polled again. A second
signal exits at once (status 128 + signal number).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from newsfold import metrics
from newsfold.config import load_settings
from newsfold.daemon.lock import DaemonLock
from newsfold.daemon.owners import (
    Owner,
    issued_here,
    pid_alive,
    provably_dead,
    this_process,
)
from newsfold.daemon.probes import start_health_server
from newsfold.errors import NewsfoldError, StorageError
from newsfold.logs import setup_logging
from newsfold.pipeline.policy import humanize_s
from newsfold.pipeline.retention import PRUNE_EVERY
from newsfold.pipeline.service import Service

if TYPE_CHECKING:
    from pathlib import Path
    from types import FrameType

    from newsfold.config import Settings
    from newsfold.fetch import Fetcher
    from newsfold.types import FeedSource, FeedUpdateSummary

log = logging.getLogger("newsfold.daemon")

# After the grace period the feeds in flight are cancelled; this is how long cancellation may take.
ABANDON_WAIT_S = 5.0
ALERTS_JOB = "alerts"
TICK_JOB = "poll-tick"


class Daemon:
    """One worker: each tick claims due feeds for its free slots and polls each as its own task."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        owner: Owner | None = None,
        sole_daemon: bool = False,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.config_mtime = _mtime(config_path)
        self.service = Service.open(settings)
        # Right from the start (before /metrics is served), not 0 until a feed is fetched.
        metrics.FEEDS_ERRORING.set(self.service.storage.feeds_erroring())
        self.owner = owner or this_process()
        self.worker_id = str(self.owner)
        self._reclaim_dead_leases(sole_daemon=sole_daemon)
        self.slots = settings.fetch.concurrency
        self.stopping = threading.Event()
        # Set while no feed is in flight (the name is older than per-feed tasks).
        self.cycle_idle = threading.Event()
        self.cycle_idle.set()
        self.last_cycle_at: datetime | None = None
        self.last_cycle_ok = False
        self.abandoned = False  # the last stop had to cancel in-flight work
        # Guards the in-flight table and the hand-over between a tick and a stop request.
        self._state = threading.RLock()  # re-entered when a future finishes at once
        self._inflight: dict[int, concurrent.futures.Future[FeedUpdateSummary]] = {}
        self._finished: list[FeedUpdateSummary] = []
        self._claimed_once: set[int] = set()
        self._last_renew = time.monotonic()
        self._refill = threading.Event()  # a feed finished since the tick began: tick again soon
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._fetcher: Fetcher | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.prune_daily = True  # not for ``--once``: one poll, then exit
        self.prune_thread: threading.Thread | None = None
        self._prune_check_at: datetime | None = None  # no need to ask the database before

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running) and not self.stopping.is_set()

    @property
    def in_flight(self) -> int:
        with self._state:
            return len(self._inflight)

    def _reclaim_dead_leases(self, *, sole_daemon: bool) -> None:
        """Free at once the feeds whose lease holder is provably dead (see ``owners``),
        rather than leave them unpolled for a lease period after a crash."""
        storage = self.service.storage
        ours = issued_here()
        dead = [
            owner
            for owner in storage.lease_holders()
            if provably_dead(
                owner, me=self.owner, sole_daemon=sole_daemon, pid_alive=pid_alive, ours=ours
            )
        ]
        freed = storage.break_leases(dead)
        if freed:
            log.info(
                "reclaimed the leases of %d feed(s) held by a dead worker",
                freed,
                extra={"event": "leases_reclaimed", "feeds": freed, "owners": sorted(dead)},
            )

    # --- one tick ------------------------------------------------------------------------------

    def cycle(self) -> int:
        """One tick: renew leases, report finished feeds, claim due feeds for the free slots.

        Returns how many feeds were claimed. Never waits for a fetch.
        """
        claimed: list[FeedSource] = []
        try:
            self._reload_config()
            now = self.service.clock()
            storage = self.service.storage
            self._heartbeat(now)
            self._report_finished()
            metrics.POLL_LAG.set(_lag_s(storage.next_due_at(), now))
            with self._state:
                free = 0 if self.stopping.is_set() else self.slots - len(self._inflight)
            if free > 0:
                claimed = storage.claim_due(
                    now=now,
                    owner=self.worker_id,
                    lease_s=self.settings.daemon.lease_s,
                    limit=free,
                )
                self._start(claimed)
            self._maybe_prune(now)
            self.last_cycle_ok = True
            return len(claimed)
        except NewsfoldError as e:
            self.last_cycle_ok = False
            log.error("poll tick failed: %s", e, extra={"event": "cycle_error"})
            return 0
        except Exception:
            self.last_cycle_ok = False
            log.exception("poll tick crashed", extra={"event": "cycle_error"})
            return 0
        finally:
            self.last_cycle_at = datetime.now(UTC)
            metrics.LAST_CYCLE.set(self.last_cycle_at.timestamp())

    def _maybe_prune(self, now: datetime) -> None:
        """Start the daily prune in its own thread when it is due and none is running."""
        if not self.prune_daily or self.stopping.is_set():
            return
        if self._prune_check_at is not None and now < self._prune_check_at:
            return
        if self.prune_thread is not None and self.prune_thread.is_alive():
            return
        last = self.service.storage.last_prune()
        if last is not None and now - last < PRUNE_EVERY:
            self._prune_check_at = last + PRUNE_EVERY
            return
        self._prune_check_at = now + PRUNE_EVERY
        self.prune_thread = threading.Thread(target=self._prune, name="newsfold-prune", daemon=True)
        self.prune_thread.start()

    def _prune(self) -> None:
        try:
            self.service.pruner.run(stop=self.stopping.is_set)
        except NewsfoldError as e:  # tried again at the next day's tick
            log.error("daily prune failed: %s", e, extra={"event": "prune_error"})
        except Exception:
            log.exception("daily prune crashed", extra={"event": "prune_error"})

    def _start(self, claimed: list[FeedSource]) -> None:
        """Hand each claimed feed to the event loop as its own task."""
        if not claimed:
            return
        refused: list[FeedSource] = []
        with self._state:
            loop, fetcher = self._loop, self._fetcher
            if self.stopping.is_set() or loop is None or fetcher is None:
                refused = claimed
            else:
                pooled = self.service.preparer.use_pool(len(self._inflight) + len(claimed))
                self.cycle_idle.clear()
                for source in claimed:
                    self._claimed_once.add(source.id)
                    future = asyncio.run_coroutine_threadsafe(
                        self.service.poll_source(fetcher, source, pooled=pooled), loop
                    )
                    self._inflight[source.id] = future
                    future.add_done_callback(functools.partial(self._done, source.id))
        self._release([s.id for s in refused])

    def _done(self, feed_id: int, future: concurrent.futures.Future[FeedUpdateSummary]) -> None:
        with self._state:
            self._inflight.pop(feed_id, None)
            if not future.cancelled() and future.exception() is None:
                self._finished.append(future.result())
            if not self._inflight:
                self.cycle_idle.set()
            stopping = self.stopping.is_set()
        if not stopping:
            # A slot is free: claim for it now rather than at the next regular tick.
            self._refill.set()
            with contextlib.suppress(JobLookupError):  # a tick is running; it will see _refill
                self.scheduler.modify_job(TICK_JOB, next_run_time=datetime.now(UTC))

    def _report_finished(self) -> None:
        with self._state:
            done, self._finished = self._finished, []
            busy = len(self._inflight)
        if not done:
            return
        metrics.FEEDS_ERRORING.set(self.service.storage.feeds_erroring())
        log.info(
            "poll cycle done",
            extra={
                "event": "cycle",
                "worker": self.worker_id,
                "feeds": len(done),
                "in_flight": busy,
                "new_items": sum(f.new_articles for f in done),
                "errors": sum(1 for f in done if f.status == "error"),
                "duration_ms": round(max(f.duration_s for f in done) * 1000),
            },
        )

    def _heartbeat(self, now: datetime) -> None:
        """Renew the leases of the feeds in flight, every third of the lease."""
        lease_s = self.settings.daemon.lease_s
        if time.monotonic() - self._last_renew < lease_s / 3:
            return
        with self._state:
            ids = list(self._inflight)
        held = self.service.storage.renew(ids, owner=self.worker_id, now=now, lease_s=lease_s)
        self._last_renew = time.monotonic()
        lost = set(ids) - held
        with self._state:
            lost &= set(self._inflight)  # a feed that finished meanwhile released its own lease
        if lost:
            log.warning(
                "lost the lease of %d feed(s) still in flight (another worker may poll them too)",
                len(lost),
                extra={"event": "lease_lost", "feeds": sorted(lost)},
            )

    def _release(self, feed_ids: list[int]) -> None:
        """Give back leases of feeds not finished (finished ones are already free)."""
        if not feed_ids:
            return
        try:
            self.service.storage.release(feed_ids, owner=self.worker_id)
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

    # --- the event loop the feed tasks run on --------------------------------------------------

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="newsfold-poll", daemon=True)
        thread.start()

        async def make_fetcher() -> Fetcher:
            return self.service.fetcher()

        fetcher = asyncio.run_coroutine_threadsafe(make_fetcher(), loop).result()
        with self._state:
            self._loop, self._loop_thread, self._fetcher = loop, thread, fetcher

    def _stop_loop(self) -> None:
        with self._state:
            loop, thread, fetcher = self._loop, self._loop_thread, self._fetcher
            self._loop = self._fetcher = None
        if loop is None or thread is None:
            return
        if fetcher is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(fetcher.aclose(), loop).result(ABANDON_WAIT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(ABANDON_WAIT_S)
        if not thread.is_alive():
            loop.close()

    # --- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        with self._state:
            self.stopping.set()

    def abandon_in_flight(self) -> None:
        """Cancel the feeds still in flight and give their leases back."""
        with self._state:
            pending = dict(self._inflight)
        if pending:
            log.warning(
                "poll cycle abandoned at shutdown; its feeds will be polled again",
                extra={"event": "abandon", "feeds": len(pending)},
            )
        for future in pending.values():
            future.cancel()  # thread-safe: cancels the task on its loop
        self.cycle_idle.wait(ABANDON_WAIT_S)
        self._release(list(pending))

    def _tick_job(self) -> None:
        """Run a tick, then book the next one: a tick can never overlap the one before it."""
        started = datetime.now(UTC)
        self._refill.clear()
        try:
            self.cycle()
        finally:
            if not self.stopping.is_set():
                next_at = datetime.now(UTC)
                if not self._refill.is_set():
                    next_at = max(started + timedelta(seconds=self.settings.daemon.tick_s), next_at)
                with contextlib.suppress(Exception):  # the scheduler is shutting down
                    self.scheduler.add_job(
                        self._tick_job,
                        "date",
                        run_date=next_at,
                        id=TICK_JOB,
                        replace_existing=True,
                        misfire_grace_time=None,
                    )

    def _alerts_job(self) -> None:
        """Deliver the alerts due now (this worker's and any other's, each claimed once)."""
        try:
            self.service.deliver_alerts(within_s=self.settings.alerting.lease_s / 2)
        except NewsfoldError as e:
            log.error("alert delivery failed: %s", e, extra={"event": "alert_failed"})

    def _run_once(self) -> None:
        """``--once``: poll every due feed once, at most ``fetch.concurrency`` at a time."""
        self.prune_daily = False
        while True:
            with self._state:
                seen = set(self._claimed_once)
            claimed_before = len(seen)
            self.cycle()
            with self._state:
                fresh = len(self._claimed_once) - claimed_before
                busy = len(self._inflight)
            if fresh == 0 and busy == 0:
                break
            if busy >= self.slots or fresh == 0:
                # Wait for a free slot (or the end) rather than spin.
                self._wait_for_slot()
        self._report_finished()
        with self._state:
            polled = bool(self._claimed_once)
        if not polled and self.last_cycle_ok:
            self._report_idle()

    def _report_idle(self) -> None:
        """``--once`` found nothing to poll: one line that says so, and when to come back."""
        now = self.service.clock()
        due = self.service.storage.next_due_at()
        if due is None:
            log.info("nothing to poll: no feed is enabled", extra={"event": "idle"})
            return
        due = (due if due.tzinfo else due.replace(tzinfo=UTC)).astimezone(UTC)
        when = due.isoformat(timespec="seconds").replace("+00:00", "Z")
        if due > now:
            message = "nothing was due; the next feed is due at %s (in %s)"
        else:  # due, but leased by another worker polling it now
            message = "nothing was polled: the feeds due since %s (%s ago) are another worker's"
        wait = humanize_s((due - now).total_seconds())  # unsigned
        log.info(message, when, wait, extra={"event": "idle", "next_due": when})

    def _wait_for_slot(self) -> None:
        with self._state:
            pending = list(self._inflight.values())
        if pending:
            concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)

    def serve(self, *, once: bool = False) -> int:
        """Run until ``request_stop``; returns the exit status."""
        self._start_loop()
        if once:
            try:
                self._run_once()
                if self.settings.alerts:
                    self._alerts_job()
            finally:
                self._stop_loop()
                self.service.close()
            return 0 if self.last_cycle_ok else 1
        daemon = self.settings.daemon
        self.scheduler.add_job(
            self._tick_job,
            "date",
            run_date=datetime.now(UTC),
            id=TICK_JOB,
            misfire_grace_time=None,
        )
        if self.settings.alerts:
            # Its own job, apart from the ticks: a slow endpoint never delays a poll.
            self.scheduler.add_job(
                self._alerts_job,
                "interval",
                seconds=daemon.tick_s,
                id=ALERTS_JOB,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self.scheduler.start()
        if daemon.tick_s * 2 > daemon.lease_s:
            # Leases are renewed by ticks: too few ticks per lease and a feed being worked
            # on could be claimed by another worker.
            log.warning(
                "daemon.lease_s (%.0fs) should be at least twice daemon.tick_s (%.0fs)",
                daemon.lease_s,
                daemon.tick_s,
                extra={"event": "config_warning"},
            )
        log.info(
            "daemon started",
            extra={
                "event": "start",
                "worker": self.worker_id,
                "tick_s": daemon.tick_s,
                "slots": self.slots,
                "lease_s": daemon.lease_s,
            },
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
        if self.cycle_idle.is_set():
            self._stop_loop()
        if self.prune_thread is not None:
            # It stops after the batch it is in (each batch is one short transaction).
            self.prune_thread.join(daemon.grace_s)
        with contextlib.suppress(NewsfoldError):  # a closing summary is not worth a failed stop
            self._report_finished()
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
    # Said once at start, in the background (the extractor's import takes a second).
    threading.Thread(target=_check_extractor, name="extractor-check", daemon=True).start()
    owner = this_process()
    lock = DaemonLock.acquire(settings.database_url, holder=str(owner))
    try:
        daemon = Daemon(
            settings, config_path=config_path, owner=owner, sole_daemon=lock is not None
        )
    except BaseException:
        if lock is not None:
            lock.release()
        raise
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
            lock.release()
    if daemon.abandoned and not daemon.cycle_idle.is_set():
        # A worker thread is still stuck in a call that cannot be cancelled (a database
        # write, a parse). Its transaction is not committed, so leaving now loses nothing,
        # while waiting for it would break the grace period promised to the supervisor.
        logging.shutdown()
        os._exit(code)
    return code


def _check_extractor() -> None:
    from newsfold.normalise.page import unreported_extractor_problem

    problem = unreported_extractor_problem()
    if problem is not None:
        log.error(
            "%s; full-text feeds get plain page text until it is fixed",
            problem,
            extra={"event": "extractor_unavailable"},
        )


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
