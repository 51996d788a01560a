"""The in-memory dedup index kept in step with the database.

``IndexKeeper`` owns the index's life: built from stored sketches on first
use, caught up inside each write transaction with what other workers committed,
evicted past the window, told of the articles this worker deleted, rebuilt
when another process deleted some or merged stories, and dropped when a
transaction it saw placements in rolls back. Every rebuild takes one path
(``_rebuild``). Callers hold the service's write lock around all of it.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from newsfold.dedup import Deduplicator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from newsfold.config import DedupSettings
    from newsfold.dedup import StoredDoc
    from newsfold.storage import Batch, Storage

log = logging.getLogger("newsfold.service")

EVICT_EVERY_S = 300.0


class IndexKeeper:
    def __init__(
        self, settings: DedupSettings, storage: Storage, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.dedup: Deduplicator | None = None
        self._max_id = 0  # the highest article id the index holds
        self._known_merges = 0  # story merges in the database when the index was last in step
        self._known_deletions = b""  # the deletions token (``storage.state``) then
        self._last_evict = time.monotonic()

    def window_start(self) -> datetime:
        return self.clock() - timedelta(days=self.settings.window_days)

    def ensure(self) -> Deduplicator:
        """The index, built from the database if there is none (start-up, after a rollback)."""
        if self.dedup is None:
            merges, deletions = self.storage.merge_count(), self.storage.deletions()
            docs = self.storage.load_window(since=self.window_start())
            return self._rebuild(docs, merges, deletions)
        return self.dedup

    def rebuild(self) -> int:
        """Drop and rebuild the index from stored signatures; returns its size."""
        self.dedup = None
        return len(self.ensure())

    def invalidate(self) -> None:
        """The index saw placements that were rolled back: rebuild it on next use."""
        self.dedup = None

    def evict_old(self) -> None:
        """Keep the index to the window, as a rebuild would (checked at most every few minutes)."""
        now = time.monotonic()
        if self.dedup is None or now - self._last_evict < EVICT_EVERY_S:
            return
        self._last_evict = now
        evicted = self.dedup.evict_before(self.window_start())
        if evicted:
            log.info("evicted %d articles older than the window from the index", evicted)

    def catch_up(self, batch: Batch) -> Deduplicator:
        """Index what other workers committed since we last looked; returns the live index.

        New articles are added incrementally. A story merge made elsewhere changes
        ids already in our index, and a deletion made elsewhere (a prune, a feed
        removed) takes articles out of it, so then (rarely) the index is rebuilt
        from the database, inside this transaction and under the cluster lock.
        """
        dedup = self.ensure()
        merges, deletions = batch.merge_count(), batch.deletions()
        if merges != self._known_merges or deletions != self._known_deletions:
            docs = batch.docs_after(0, since=self.window_start())
            return self._rebuild(docs, merges, deletions)
        docs = batch.docs_after(self._max_id, since=self.window_start())
        if docs:
            dedup.load(docs)
            self._max_id = max(d.article_id for d in docs)
        return dedup

    def placed(self, article_ids: Iterable[int], *, merged: bool, batch: Batch) -> None:
        """Note what this worker placed, so catching up does not index it twice."""
        self._max_id = max(self._max_id, *article_ids, 0)
        if merged:
            self._known_merges = batch.merge_count()

    def deleted(self, article_ids: Iterable[int], *, batch: Batch) -> int:
        """Forget articles this worker deleted in ``batch`` (call inside its transaction,
        after the deletion); returns how many the index held.

        Their clusters keep their ids and shrink, as the database's do
        (``storage.articles.delete_articles``), so the index stays what a rebuild
        would load. Should the transaction roll back, ``invalidate`` the index.
        """
        self._known_deletions = batch.deletions()
        self._known_merges = batch.merge_count()  # an emptied story takes its merge records
        if self.dedup is None:
            return 0
        return sum(self.dedup.remove(article_id) for article_id in article_ids)

    def _rebuild(self, docs: Iterable[StoredDoc], merges: int, deletions: bytes) -> Deduplicator:
        dedup = Deduplicator(self.settings)
        docs = list(docs)
        dedup.load(docs)
        self.dedup = dedup
        self._max_id = max((d.article_id for d in docs), default=0)
        self._known_merges = merges
        self._known_deletions = deletions
        return dedup
