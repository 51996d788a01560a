"""The write side: one transaction per poll, the index kept in step.

``FeedWriter.write_all`` takes a poll's prepared documents (see ``prepare.py``)
and, under the service's write lock and the cluster-assignment lock, asks
``decide`` what the poll changes and writes it: new articles inserted and
placed (``place_new``: all the poll's feeds' in one order, story time first,
the order ``eval`` places a labelled set in), revisions applied, each feed's
new state and fetch log saved — all in one transaction, so a crash leaves
every feed as it was before the poll. ``write`` is the same for one feed.
``FeedWriter.record_error`` does the same for a failed poll. The index's life
is ``IndexKeeper``'s; each feed's boilerplate model is ``BoilerplateModels``'.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from newsfold import metrics
from newsfold.dedup.order import placement_order
from newsfold.errors import FetchError, StorageError
from newsfold.normalise import BoilerplateModel
from newsfold.pipeline import decide
from newsfold.pipeline.prepare import dedup_doc, story_time
from newsfold.storage.records import FetchLogEntry
from newsfold.types import FeedUpdateSummary, FetchOutcome, Level, Tier

if TYPE_CHECKING:
    import random
    import threading
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from newsfold.config import NormaliseSettings, Settings
    from newsfold.dedup import DedupDoc, Deduplicator, Sketch
    from newsfold.errors import ParseError
    from newsfold.pipeline.index_keeper import IndexKeeper
    from newsfold.pipeline.prepare import Prepared
    from newsfold.storage import Batch, Storage
    from newsfold.storage.records import FeedInfo
    from newsfold.types import Article, ErrorKind, FeedSource, FetchResult, Placement

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
    lock: threading.Lock  # one poll's writes at a time, and the index with them

    def write(self, prepared: Prepared, started_at: datetime, took_s: float) -> FeedUpdateSummary:
        """Store one successful poll: its new and revised entries and the feed's new state."""
        return self.write_all([(prepared, started_at, took_s)])[0]

    def write_all(
        self, polled: Sequence[tuple[Prepared, datetime, float]]
    ) -> list[FeedUpdateSummary]:
        """Store a poll's feeds in one transaction. Each comes with its start time and the
        seconds its fetch and preparing took: its ``duration``, which leaves out the wait for
        the poll's other feeds and this write (the summaries' ``write_s``)."""
        w0 = time.perf_counter()
        with self.lock:
            self.index.ensure()
            self.index.evict_old()
            plans = [self._plan(prepared) for prepared, _, _ in polled]
            now = self.clock()
            try:
                with self.storage.batch() as batch:
                    feeds = [batch.feed(prepared.source.id) for prepared, _, _ in polled]
                    live = [i for i, feed in enumerate(feeds) if feed is not None]
                    dedup = self.index.catch_up(batch)
                    new = self.place_new(
                        batch,
                        dedup,
                        [(polled[i][0].source.id, plans[i][0].new, plans[i][1]) for i in live],
                        now=now,
                    )
                    placements: dict[int, list[Placement]] = dict(zip(live, new, strict=True))
                    ids = [p.article_id for placed in new for p in placed]
                    for i in live:
                        changes, _, revised_sketches = plans[i]
                        placements[i] += self._revise(
                            batch, dedup, changes.revised, revised_sketches, now=now
                        )
                    # The one-pass placements become the partition of the set: the stories
                    # the new and revised documents touch are clustered again, once per
                    # batch, whatever order the documents came in.
                    seeds = [p.article_id for ps in placements.values() for p in ps]
                    moved = dedup.consolidate(seeds, batch.story_id_free)
                    batch.record_consolidation(
                        moved.moves, moved.merges, moved.splits, now=now, evidence=moved.evidence
                    )
                    merged = bool(moved.moves or moved.merges) or any(
                        p.merged_stories for ps in placements.values() for p in ps
                    )
                    self.index.placed(ids, merged=merged, batch=batch)
                    for i in live:
                        feed, (prepared, started_at, took_s) = feeds[i], polled[i]
                        assert feed is not None
                        self._save_feed(
                            batch,
                            feed,
                            prepared,
                            plans[i][0],
                            started_at=started_at,
                            now=now,
                            took_s=took_s,
                        )
                    # In the placing transaction (after the feeds' titles are saved, which the
                    # body names): an alert is queued exactly when its story is placed.
                    batch.raise_alerts(
                        {dedup.stories.docs.story_of(a) or a for a in seeds}
                        | set(moved.moves.values()),
                        self.settings.alerts,
                        now=now,
                    )
            except BaseException:
                # The index saw placements that were rolled back: rebuild it from the database.
                self.index.invalidate()
                for prepared, _, _ in polled:
                    self.boilerplate.forget(prepared.source.id)
                raise
        write_s = time.perf_counter() - w0
        out = []
        for i, (prepared, _, took_s) in enumerate(polled):
            if i not in placements:
                out.append(skipped_summary(prepared.source, took_s))
                continue
            summary = summarise(prepared, plans[i][0], placements[i], took_s, write_s)
            report(summary, placements[i])
            out.append(summary)
        return out

    def _plan(self, prepared: Prepared) -> tuple[decide.EntryChanges, list[Sketch], list[Sketch]]:
        """A feed's new and revised entries, and their sketches (new, revised)."""
        keys = [a.entry_key for a in prepared.articles]
        changes = decide.drop_expired(
            decide.diff_entries(
                prepared.articles, self.storage.existing_keys(prepared.source.id, keys)
            ),
            decide.retention_edges(
                self.clock(),
                self.settings.retention,
                story_window_days=self.settings.dedup.story_window_days,
            ),
            functools.partial(story_time, future_tolerance=self._future_tolerance),
        )
        sketches = self._sketches(prepared, [*changes.new, *(a for _, a in changes.revised)])
        return changes, sketches[: len(changes.new)], sketches[len(changes.new) :]

    @property
    def _future_tolerance(self) -> timedelta:
        return timedelta(seconds=self.settings.normalise.future_tolerance_s)

    def _save_feed(
        self,
        batch: Batch,
        feed: FeedInfo,
        prepared: Prepared,
        changes: decide.EntryChanges,
        *,
        started_at: datetime,
        now: datetime,
        took_s: float,
    ) -> None:
        """The feed's new state (with what its boilerplate model learned) and its fetch log."""
        source, result, parsed = prepared.source, prepared.result, prepared.parsed
        model = self.boilerplate.get(source.id)
        for article in changes.new:
            model.observe(article.text, prepared.template_keys.get(article.entry_key))
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
            keep=self.settings.retention.fetch_log_per_feed,
            entry=FetchLogEntry(
                started_at=started_at,
                outcome=decide.outcome(result, parsed),
                http_status=result.status,
                bytes=len(result.content),
                duration_ms=round(took_s * 1000),
                new_items=len(changes.new),
                error=parsed.warning if parsed else None,
                wait_ms=round(result.wait_s * 1000),
            ),
        )

    def place_new(
        self,
        batch: Batch,
        dedup: Deduplicator,
        feeds: Sequence[tuple[int, Sequence[Article], Sequence[Sketch]]],
        *,
        now: datetime,
    ) -> list[list[Placement]]:
        """Insert the new articles of a poll's feeds and place them with the index.

        The one place where new articles meet the index: their ids come from the
        insert; they are placed in ``placement_order`` across all the feeds
        (story time first: whichever feed answered first, the same documents
        give the same stories, as in ``eval``), each placement seeing the ones
        before it, and the memberships are written in that order. Returns each
        feed's placements, in its articles' order.
        """
        docs: list[DedupDoc] = []
        owner: list[tuple[int, int]] = []  # (feed position, article position)
        for f, (feed_id, articles, sketches) in enumerate(feeds):
            stream_times = [dedup_doc(0, a, self.settings).published for a in articles]
            ids = batch.insert_articles(feed_id, articles, sketches, stream_times)
            for k, (aid, article) in enumerate(zip(ids, articles, strict=True)):
                docs.append(dedup_doc(aid, article, self.settings))
                owner.append((f, k))
        out: list[list[Placement | None]] = [[None] * len(f[1]) for f in feeds]
        written: list[tuple[Placement, Article]] = []
        for i in placement_order(docs):
            f, k = owner[i]
            placement = dedup.place(docs[i], feeds[f][2][k])
            out[f][k] = placement
            written.append((placement, feeds[f][1][k]))
        batch.record_placements(written, now=now)
        return [[p for p in placed if p is not None] for placed in out]

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
        self,
        source: FeedSource,
        error: FetchError | ParseError,
        started_at: datetime,
        took_s: float,
        result: FetchResult | None = None,
    ) -> FeedUpdateSummary:
        """Record a failed poll on the feed (back-off, error count) and in its fetch log.

        ``took_s``: how long the poll took until it failed; ``result``: the answer, when the
        failure came after one (it was not a feed).
        """
        status = error.status if isinstance(error, FetchError) else None
        size = error.size if isinstance(error, FetchError) else 0
        if result is not None:
            status, size = result.status, len(result.content)
        now = self.clock()
        w0 = time.perf_counter()
        try:
            with self.lock, self.storage.batch(placing=False) as batch:
                feed = batch.feed(source.id)
                if feed is None:
                    return skipped_summary(source, took_s)
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
                    keep=self.settings.retention.fetch_log_per_feed,
                    entry=FetchLogEntry(
                        started_at=started_at,
                        outcome=FetchOutcome.ERROR,
                        http_status=status,
                        bytes=size,
                        duration_ms=round(took_s * 1000),
                        new_items=0,
                        error=str(error),
                        wait_ms=round(error.wait_s * 1000) if isinstance(error, FetchError) else 0,
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
                "bytes": size,
            },
        )
        metrics.FETCHES.labels(FetchOutcome.ERROR).inc()
        metrics.FETCH_SECONDS.observe(took_s)
        return error_summary(
            source,
            error.kind,
            str(error),
            took_s,
            status,
            size=size,
            write_s=time.perf_counter() - w0,
        )


def summarise(
    prepared: Prepared,
    changes: decide.EntryChanges,
    placements: Sequence[Placement],
    took_s: float,
    write_s: float,
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
        duration_s=took_s,
        write_s=write_s,
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
            "write_ms": round(summary.write_s * 1000),
            "bytes": summary.bytes,
            "new_items": summary.new_articles,
        },
    )


def error_summary(
    source: FeedSource,
    kind: ErrorKind,
    message: str,
    took_s: float,
    status: int | None = None,
    *,
    size: int = 0,
    write_s: float = 0.0,
) -> FeedUpdateSummary:
    return FeedUpdateSummary(
        feed_id=source.id,
        url=source.url,
        status=FetchOutcome.ERROR,
        http_status=status,
        error_kind=kind,
        error=message,
        duration_s=took_s,
        write_s=write_s,
        bytes=size,
    )


def skipped_summary(source: FeedSource, took_s: float) -> FeedUpdateSummary:
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
        duration_s=took_s,
    )
