"""The write side: one transaction per feed, the index kept in step.

``FeedWriter.write`` takes a prepared document (see ``prepare.py``) and, under
the service's write lock and the cluster-assignment lock, asks ``decide`` what
the poll changes and writes it: new articles inserted and placed
(``place_new``), revisions applied, the feed's new state and fetch log saved —
all in one transaction, so a crash leaves a feed as it was before the poll.
``FeedWriter.record_error`` does the same for a failed poll. The index's life
is ``IndexKeeper``'s; each feed's boilerplate model is ``BoilerplateModels``'.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsfold import decide, metrics
from newsfold.errors import FetchError, StorageError
from newsfold.normalise import BoilerplateModel
from newsfold.prepare import dedup_doc
from newsfold.storage.records import FetchLogEntry
from newsfold.types import FeedUpdateSummary, FetchOutcome, Level, Tier

if TYPE_CHECKING:
    import random
    import threading
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from newsfold.config import NormaliseSettings, Settings
    from newsfold.dedup import Deduplicator, Sketch
    from newsfold.errors import ParseError
    from newsfold.index_keeper import IndexKeeper
    from newsfold.prepare import Prepared
    from newsfold.storage import Batch, Storage
    from newsfold.storage.records import FeedInfo
    from newsfold.types import Article, ErrorKind, FeedSource, Placement

log = logging.getLogger("newsfold.service")


class BoilerplateModels:
    """Each feed's learned boilerplate model, read once from the database, with today's
    thresholds; the writer stores it back with the feed's state."""

    def __init__(self, settings: NormaliseSettings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self._models: dict[int, BoilerplateModel] = {}

    def get(self, feed_id: int) -> BoilerplateModel:
        model = self._models.get(feed_id)
        if model is None:
            fresh = BoilerplateModel.from_settings(self.settings)
            data = self.storage.boilerplate_json(feed_id)
            try:
                model = BoilerplateModel.from_json(data) if data else fresh
            except StorageError as e:  # a damaged model is relearned, not fatal
                log.warning("feed %d: boilerplate model unreadable, relearning: %s", feed_id, e)
                model = fresh
            model.window, model.min_share, model.min_docs = (
                fresh.window,
                fresh.min_share,
                fresh.min_docs,
            )
            self._models[feed_id] = model
        return model

    def forget(self, feed_id: int) -> None:
        """Drop the cached model (it learned from a poll that was rolled back)."""
        self._models.pop(feed_id, None)


@dataclass(slots=True)
class FeedWriter:
    settings: Settings
    storage: Storage
    index: IndexKeeper
    boilerplate: BoilerplateModels
    sketcher: Callable[[], Deduplicator]  # for sketches the preparing step did not make
    clock: Callable[[], datetime]
    rng: random.Random
    lock: threading.Lock  # one feed's writes at a time, and the index with them

    def write(self, prepared: Prepared, started_at: datetime, t0: float) -> FeedUpdateSummary:
        """Store one successful poll: its new and revised entries and the feed's new state."""
        source = prepared.source
        with self.lock:
            self.index.ensure()
            self.index.evict_old()
            keys = [a.entry_key for a in prepared.articles]
            changes = decide.diff_entries(
                prepared.articles, self.storage.existing_keys(source.id, keys)
            )
            sketches = self._sketches(prepared, [*changes.new, *(a for _, a in changes.revised)])
            new_sketches, revised_sketches = (
                sketches[: len(changes.new)],
                sketches[len(changes.new) :],
            )
            now = self.clock()
            try:
                with self.storage.batch() as batch:
                    feed = batch.feed(source.id)
                    if feed is None:
                        return skipped_summary(source, t0)
                    dedup = self.index.catch_up(batch)
                    placements = self.place_new(
                        batch, dedup, source.id, changes.new, new_sketches, now=now
                    )
                    ids = [p.article_id for p in placements]
                    placements += self._revise(
                        batch, dedup, changes.revised, revised_sketches, now=now
                    )
                    self.index.placed(
                        ids, merged=any(p.merged_stories for p in placements), batch=batch
                    )
                    self._save_feed(
                        batch, feed, prepared, changes, started_at=started_at, now=now, t0=t0
                    )
            except BaseException:
                # The index saw placements that were rolled back: rebuild it from the database.
                self.index.invalidate()
                self.boilerplate.forget(source.id)
                raise
        summary = summarise(prepared, changes, placements, t0)
        report(summary, placements)
        return summary

    def _save_feed(
        self,
        batch: Batch,
        feed: FeedInfo,
        prepared: Prepared,
        changes: decide.EntryChanges,
        *,
        started_at: datetime,
        now: datetime,
        t0: float,
    ) -> None:
        """The feed's new state (with what its boilerplate model learned) and its fetch log."""
        source, result, parsed = prepared.source, prepared.result, prepared.parsed
        model = self.boilerplate.get(source.id)
        for article in changes.new:
            model.observe(article.text)
        update = decide.after_success(
            feed,
            result,
            parsed,
            started_at=started_at,
            now=now,
            settings=self.settings.schedule,
            rng=self.rng,
            entry_times=batch.recent_published(source.id),
            boilerplate=None if parsed is None else model.to_json(),
        )
        if batch.save_feed(source.id, update):
            log.info("feed %s moved permanently to %s", feed.url, update.moved_to)
        batch.log(
            source.id,
            FetchLogEntry(
                started_at=started_at,
                outcome=decide.outcome(result, parsed),
                http_status=result.status,
                bytes=len(result.content),
                duration_ms=round((time.perf_counter() - t0) * 1000),
                new_items=len(changes.new),
                error=parsed.warning if parsed else None,
            ),
        )

    def place_new(
        self,
        batch: Batch,
        dedup: Deduplicator,
        feed_id: int,
        articles: Sequence[Article],
        sketches: Sequence[Sketch],
        *,
        now: datetime,
    ) -> list[Placement]:
        """Insert a poll's new articles and place them with the index, in the order given.

        The one place where new articles meet the index: their ids come from the
        insert, each placement sees the ones before it, and the memberships are
        written in the same order.
        """
        stream_times = [dedup_doc(0, a, self.settings).published for a in articles]
        ids = batch.insert_articles(feed_id, articles, sketches, stream_times)
        placements = [
            dedup.place(dedup_doc(aid, article, self.settings), sketch)
            for aid, article, sketch in zip(ids, articles, sketches, strict=True)
        ]
        batch.record_placements(list(zip(placements, articles, strict=True)), now=now)
        return placements

    def _revise(
        self,
        batch: Batch,
        dedup: Deduplicator,
        revised: Sequence[tuple[int, Article]],
        sketches: Sequence[Sketch],
        *,
        now: datetime,
    ) -> list[Placement]:
        """Apply ``decide.decide_revisions``: new text for each, a new place for some."""
        if not revised:
            return []
        ids = [aid for aid, _ in revised]
        plan = decide.decide_revisions(
            revised, sketches, batch.signatures(ids), batch.founders(ids)
        )
        placed: list[Placement] = []
        for r in plan:
            if r.sketch is None:
                batch.revise_article(r.article_id, r.article, None)
                continue
            dedup.remove(r.article_id)
            batch.unplace(r.article_id)
            placement = dedup.place(dedup_doc(r.article_id, r.article, self.settings), r.sketch)
            batch.record_placements([(placement, r.article)], now=now)
            batch.revise_article(r.article_id, r.article, r.sketch)
            placed.append(placement)
        return placed

    def _sketches(self, prepared: Prepared, articles: Sequence[Article]) -> list[Sketch]:
        """Sketches of the given articles: made while preparing, or here for the rest."""
        out: list[Sketch | None] = [prepared.sketches.get(a.entry_key) for a in articles]
        missing = [i for i, k in enumerate(out) if k is None]
        if missing:
            docs = [dedup_doc(0, articles[i], self.settings) for i in missing]
            for i, k in zip(missing, self.sketcher().sketch_many(docs), strict=True):
                out[i] = k
        return [k for k in out if k is not None]

    def record_error(
        self, source: FeedSource, error: FetchError | ParseError, started_at: datetime, t0: float
    ) -> FeedUpdateSummary:
        """Record a failed poll on the feed (back-off, error count) and in its fetch log."""
        status = error.status if isinstance(error, FetchError) else None
        now = self.clock()
        try:
            with self.lock, self.storage.batch(placing=False) as batch:
                feed = batch.feed(source.id)
                if feed is None:
                    return skipped_summary(source, t0)
                update = decide.after_error(
                    feed,
                    error,
                    started_at=started_at,
                    now=now,
                    settings=self.settings.schedule,
                    rng=self.rng,
                )
                batch.save_feed(source.id, update)
                batch.log(
                    source.id,
                    FetchLogEntry(
                        started_at=started_at,
                        outcome=FetchOutcome.ERROR,
                        http_status=status,
                        bytes=0,
                        duration_ms=round((time.perf_counter() - t0) * 1000),
                        new_items=0,
                        error=str(error),
                    ),
                )
        except StorageError as e:
            log.error("feed %s: could not record its error: %s", source.url, e)
        log.warning(
            "feed %s failed (%s): %s",
            source.url,
            error.kind,
            error,
            extra={
                "event": "fetch",
                "feed_id": source.id,
                "feed_url": source.url,
                "outcome": str(FetchOutcome.ERROR),
                "status": status,
            },
        )
        metrics.FETCHES.labels(FetchOutcome.ERROR).inc()
        metrics.FETCH_SECONDS.observe(time.perf_counter() - t0)
        return error_summary(source, error.kind, str(error), t0, status)


def summarise(
    prepared: Prepared,
    changes: decide.EntryChanges,
    placements: Sequence[Placement],
    t0: float,
) -> FeedUpdateSummary:
    near = sum(1 for p in placements if p.copy.tier is Tier.NEAR)
    exact = sum(1 for p in placements if p.copy.tier is Tier.EXACT)
    return FeedUpdateSummary(
        feed_id=prepared.source.id,
        url=prepared.source.url,
        status=decide.outcome(prepared.result, prepared.parsed),
        http_status=prepared.result.status,
        new_articles=len(changes.new),
        updated_articles=len(changes.revised),
        duplicates=exact + changes.unchanged,
        near_duplicates=near,
        clusters_touched=len({p.story.cluster_id for p in placements}),
        duration_s=time.perf_counter() - t0,
        bytes=len(prepared.result.content),
    )


def report(summary: FeedUpdateSummary, placements: Sequence[Placement]) -> None:
    """A stored poll's metrics and its log line."""
    metrics.FETCHES.labels(summary.status).inc()
    metrics.FETCH_SECONDS.observe(summary.duration_s)
    metrics.ARTICLES.inc(summary.new_articles)
    metrics.DUPLICATES.labels("exact").inc(sum(p.copy.tier is Tier.EXACT for p in placements))
    metrics.DUPLICATES.labels("near").inc(summary.near_duplicates)
    for p in placements:
        for level, join in ((Level.COPIES, p.copy), (Level.STORIES, p.story)):
            event = "created" if join.tier is Tier.NEW else "extended"
            metrics.CLUSTERS.labels(level, event).inc()
        if p.merged_stories:
            metrics.CLUSTERS.labels(Level.STORIES, "merged").inc(len(p.merged_stories))
    log.info(
        "fetched feed",
        extra={
            "event": "fetch",
            "feed_id": summary.feed_id,
            "feed_url": summary.url,
            "status": summary.http_status,
            "outcome": str(summary.status),
            "duration_ms": round(summary.duration_s * 1000),
            "bytes": summary.bytes,
            "new_items": summary.new_articles,
        },
    )


def error_summary(
    source: FeedSource, kind: ErrorKind, message: str, t0: float, status: int | None = None
) -> FeedUpdateSummary:
    return FeedUpdateSummary(
        feed_id=source.id,
        url=source.url,
        status=FetchOutcome.ERROR,
        http_status=status,
        error_kind=kind,
        error=message,
        duration_s=time.perf_counter() - t0,
    )


def skipped_summary(source: FeedSource, t0: float) -> FeedUpdateSummary:
    """The feed was removed while it was being polled: nothing is written for it."""
    log.info(
        "feed %s was removed during its poll: skipped",
        source.url,
        extra={"event": "fetch", "feed_id": source.id, "feed_url": source.url},
    )
    return FeedUpdateSummary(
        feed_id=source.id,
        url=source.url,
        status=FetchOutcome.SKIPPED,
        duration_s=time.perf_counter() - t0,
    )
