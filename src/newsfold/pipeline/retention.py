"""Retention: ``newsfold prune`` and the daemon's daily run of it.

What goes is decided in storage (``storage.retention``: articles past
``[retention] days`` by story time whose story is closed; fetch-log lines past
``[retention] fetch_log_per_feed``). Here it is deleted in bounded batches, each
its own short transaction holding the service's write lock and the cluster lock,
so polls go on between batches; the in-memory index forgets each batch's
articles in the same step (``IndexKeeper.deleted``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from newsfold.pipeline.decide import retention_edges
from newsfold.storage.records import Deleted

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from datetime import datetime

    from newsfold.config import Settings
    from newsfold.pipeline.decide import RetentionEdges
    from newsfold.pipeline.index_keeper import IndexKeeper
    from newsfold.storage import Storage

log = logging.getLogger("newsfold.retention")

BATCH = 500  # articles (or fetch-log lines) per transaction
PRUNE_EVERY = timedelta(days=1)  # the daemon's schedule


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or, dry, would remove)."""

    dry_run: bool
    cutoff: datetime | None  # None: retention is off, articles are all kept
    open_since: datetime | None
    articles: int
    copies: int  # copy groups that became empty
    stories: int  # stories that became empty
    fetch_log: int  # fetch-log lines
    batches: int
    duration_s: float


@dataclass(slots=True)
class Pruner:
    settings: Settings
    storage: Storage
    index: IndexKeeper
    clock: Callable[[], datetime]
    lock: threading.Lock  # the service's write lock: one poll's writes or one batch at a time
    batch_size: int = BATCH

    def edges(self, now: datetime) -> RetentionEdges | None:
        return retention_edges(
            now, self.settings.retention, story_window_days=self.settings.dedup.story_window_days
        )

    def run(self, *, dry_run: bool = False, stop: Callable[[], bool] = bool) -> PruneReport:
        """Prune (or count, ``dry_run``); ``stop`` ends a prune between two batches."""
        started = time.perf_counter()
        now = self.clock()
        edges = self.edges(now)
        keep = self.settings.retention.fetch_log_per_feed
        if dry_run:
            found = (
                Deleted()
                if edges is None
                else self.storage.count_expired(cutoff=edges.cutoff, open_since=edges.open_since)
            )
            excess = self.storage.fetch_log_excess(keep)
            return self._report(
                edges, found=found, lines=excess, batches=0, started=started, dry_run=True
            )
        deleted, batches = Deleted(), 0
        if edges is not None:
            while not stop():
                step = self._delete_batch(edges)
                if not step.articles:
                    break
                deleted += step
                batches += 1
        lines = 0
        for feed_id in self.storage.feeds_over_log_limit(keep):
            while not stop():
                n = self.storage.trim_fetch_log(feed_id, keep, limit=self.batch_size)
                if not n:
                    break
                lines += n
                batches += 1
        self.storage.reclaim()
        if not stop():  # a prune cut short is done again at the next chance
            self.storage.set_last_prune(now)
        report = self._report(
            edges, found=deleted, lines=lines, batches=batches, started=started, dry_run=False
        )
        log.info(
            "pruned %d articles (%d copy groups, %d stories emptied), %d fetch-log lines",
            report.articles,
            report.copies,
            report.stories,
            report.fetch_log,
            extra={"event": "prune", "articles": report.articles, "fetch_log": report.fetch_log},
        )
        return report

    def _delete_batch(self, edges: RetentionEdges) -> Deleted:
        with self.lock:
            try:
                with self.storage.batch() as batch:
                    if self.index.dedup is not None:
                        # In step with other workers first, so that forgetting this
                        # batch leaves the index exactly what the database holds.
                        self.index.catch_up(batch)
                    ids = batch.expired(
                        cutoff=edges.cutoff, open_since=edges.open_since, limit=self.batch_size
                    )
                    if not ids:
                        return Deleted()
                    deleted = batch.delete_articles(ids)
                    self.index.deleted(ids, batch=batch)
            except BaseException:
                # The index may have forgotten articles the rollback kept: rebuild it.
                self.index.invalidate()
                raise
        return deleted

    @staticmethod
    def _report(
        edges: RetentionEdges | None,
        *,
        found: Deleted,
        lines: int,
        batches: int,
        started: float,
        dry_run: bool,
    ) -> PruneReport:
        return PruneReport(
            dry_run=dry_run,
            cutoff=None if edges is None else edges.cutoff,
            open_since=None if edges is None else edges.open_since,
            articles=found.articles,
            copies=found.copies,
            stories=found.stories,
            fetch_log=lines,
            batches=batches,
            duration_s=time.perf_counter() - started,
        )
