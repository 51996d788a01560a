"""The write side of the service: one transaction per feed, the index kept in step.

``WriterMixin`` is half of ``Service``: it takes a prepared document (see
``prepare.py``) and, under the cluster-assignment lock, inserts the new
articles, places them with the in-memory index, records revisions, and saves
the feed's new state and fetch log — all in one transaction, so a crash leaves
a feed as it was before the poll. It also owns the index's life: rebuild from
stored sketches, catch-up with other workers, eviction past the window.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from newsfold import metrics, schedule
from newsfold.dedup import Deduplicator
from newsfold.errors import FetchError, ParseError, StorageError
from newsfold.prepare import Prepared, dedup_doc
from newsfold.storage.feeds import apply_health, health_of, log_fetch
from newsfold.types import (
    Article,
    ErrorKind,
    FeedSource,
    FeedUpdateSummary,
    FetchResult,
    ParsedFeed,
    Placement,
    Tier,
)

if TYPE_CHECKING:
    import random
    import threading
    from collections.abc import Callable, Sequence

    from newsfold.config import Settings
    from newsfold.dedup import DedupDoc, Sketch
    from newsfold.normalise import BoilerplateModel
    from newsfold.storage import Batch, Storage

log = logging.getLogger("newsfold.service")

EVICT_EVERY_S = 300.0
# Estimated Jaccard between an entry's stored and new signature at or above which a
# revision is trivial (keeps its place); below it, the article is re-placed.
REVISION_SAME = 0.9


def signature_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard of two stored MinHash signatures (share of equal slots)."""
    from newsfold.dedup.minhash import decode

    sa, _ = decode(a)
    sb, _ = decode(b)
    if sa.shape != sb.shape or not len(sa):
        return 0.0
    return float((sa == sb).mean())


class WriterMixin:
    if TYPE_CHECKING:
        settings: Settings
        storage: Storage
        clock: Callable[[], datetime]
        rng: random.Random
        _write_lock: threading.Lock
        _dedup: Deduplicator | None
        _dedup_max_id: int
        _known_merges: int
        _last_evict: float
        _boilerplate: dict[int, BoilerplateModel]

        def _boilerplate_for(self, feed_id: int) -> BoilerplateModel: ...
        def _sketcher_instance(self) -> Deduplicator: ...

    def _store(self, prepared: Prepared, started_at: datetime, t0: float) -> FeedUpdateSummary:
        source, result, parsed = prepared.source, prepared.result, prepared.parsed
        with self._write_lock:
            dedup = self._ensure_dedup()
            self._evict_old(dedup)
            existing = self.storage.existing_keys(
                source.id, [a.entry_key for a in prepared.articles]
            )
            fresh = [a for a in prepared.articles if a.entry_key not in existing]
            revised = [
                a
                for a in prepared.articles
                if a.entry_key in existing and existing[a.entry_key][1] != a.content_hash
            ]
            docs = [dedup_doc(0, a, self.settings) for a in fresh + revised]
            sketches = self._sketches(prepared, fresh + revised, docs)
            revised_sketches = sketches[len(fresh) :]
            sketches = sketches[: len(fresh)]
            now = self.clock()
            placements = []
            try:
                with self.storage.batch() as batch:
                    dedup = self._catch_up(batch)
                    ids = batch.insert_articles(
                        source.id,
                        fresh,
                        sketches,
                        [d.published for d in docs[: len(fresh)]],
                    )
                    for aid, article, sketch in zip(ids, fresh, sketches, strict=True):
                        placements.append(
                            dedup.place(dedup_doc(aid, article, self.settings), sketch)
                        )
                    batch.record_placements(list(zip(placements, fresh, strict=True)), now=now)
                    replaced = self._revise(
                        batch,
                        dedup,
                        [(existing[a.entry_key][0], a) for a in revised],
                        revised_sketches,
                        now=now,
                    )
                    placements.extend(replaced)
                    if ids:
                        self._dedup_max_id = max(self._dedup_max_id, *ids)
                    if any(p.merged_stories for p in placements):
                        self._known_merges = batch.merge_count()
                    model = self._boilerplate_for(source.id)
                    for article in fresh:
                        model.observe(article.text)
                    self._update_feed(batch, prepared, started_at=started_at, now=now)
                    batch.log(
                        source.id,
                        started_at=started_at,
                        outcome=_outcome(result, parsed),
                        http_status=result.status,
                        nbytes=len(result.content),
                        duration_s=time.perf_counter() - t0,
                        new_items=len(fresh),
                        error=parsed.warning if parsed else None,
                    )
            except BaseException:
                # The index saw placements that were rolled back: rebuild it from the database.
                self._dedup = None
                self._boilerplate.pop(source.id, None)
                raise
        near = sum(1 for p in placements if p.copy.tier is Tier.NEAR)
        exact = sum(1 for p in placements if p.copy.tier is Tier.EXACT)
        summary = FeedUpdateSummary(
            feed_id=source.id,
            url=source.url,
            status=_outcome(result, parsed),
            http_status=result.status,
            new_articles=len(fresh),
            updated_articles=len(revised),
            duplicates=exact + (len(prepared.articles) - len(fresh) - len(revised)),
            near_duplicates=near,
            clusters_touched=len({p.story.cluster_id for p in placements}),
            duration_s=time.perf_counter() - t0,
            bytes=len(result.content),
        )
        metrics.FETCHES.labels(summary.status).inc()
        metrics.FETCH_SECONDS.observe(summary.duration_s)
        metrics.ARTICLES.inc(len(fresh))
        metrics.DUPLICATES.labels("exact").inc(exact)
        metrics.DUPLICATES.labels("near").inc(near)
        for p in placements:
            for level, join in (("copies", p.copy), ("stories", p.story)):
                event = "created" if join.tier is Tier.NEW else "extended"
                metrics.CLUSTERS.labels(level, event).inc()
            if p.merged_stories:
                metrics.CLUSTERS.labels("stories", "merged").inc(len(p.merged_stories))
        log.info(
            "fetched feed",
            extra={
                "event": "fetch",
                "feed_id": source.id,
                "feed_url": source.url,
                "status": result.status,
                "outcome": summary.status,
                "duration_ms": round(summary.duration_s * 1000),
                "bytes": summary.bytes,
                "new_items": summary.new_articles,
            },
        )
        return summary

    def _revise(
        self,
        batch: Batch,
        dedup: Deduplicator,
        revised: Sequence[tuple[int, Article]],
        sketches: Sequence[Sketch],
        *,
        now: datetime,
    ) -> list[Placement]:
        """Entries whose text changed since they were stored (tier 0 revision tracking).

        A trivial change (a fixed typo, a new timestamp line: the new signature is
        still ≥ ``REVISION_SAME`` similar to the stored one) updates the text and
        keeps the sketch and the place, so the stored sketch stays the one the
        index holds. A material change re-places the article with its new sketch
        — unless it founded a cluster that has other members: that cluster's id
        is the article's own, and the members joined it for what it said then.
        """
        if not revised:
            return []
        ids = [aid for aid, _ in revised]
        stored = batch.signatures(ids)
        founders = batch.founders(ids)
        placed: list[Placement] = []
        for (aid, article), sketch in zip(revised, sketches, strict=True):
            material = signature_similarity(stored[aid], sketch.signature) < REVISION_SAME
            if not material or aid in founders:
                batch.revise_article(aid, article, None)
                continue
            dedup.remove(aid)
            batch.unplace(aid)
            placement = dedup.place(dedup_doc(aid, article, self.settings), sketch)
            batch.record_placements([(placement, article)], now=now)
            batch.revise_article(aid, article, sketch)
            placed.append(placement)
        return placed

    def _sketches(
        self, prepared: Prepared, fresh: Sequence[Article], docs: Sequence[DedupDoc]
    ) -> list[Sketch]:
        """Sketches of the new articles: made while preparing, or here for the rest."""
        out: list[Sketch | None] = [prepared.sketches.get(a.entry_key) for a in fresh]
        missing = [i for i, k in enumerate(out) if k is None]
        if missing:
            made = self._sketcher_instance().sketch_many([docs[i] for i in missing])
            for i, k in zip(missing, made, strict=True):
                out[i] = k
        return [k for k in out if k is not None]

    def _update_feed(
        self, batch: Batch, prepared: Prepared, *, started_at: datetime, now: datetime
    ) -> None:
        """The feed's new state after a successful fetch: validators, health, next poll, URL."""
        source, result, parsed = prepared.source, prepared.result, prepared.parsed
        row = batch.feed(source.id)
        health = health_of(row)
        # Cadence from the feed's own stored dates (not dates we stamped at first sight).
        entry_times = batch.recent_published(source.id)
        if parsed is None:  # 304, or the very same bytes as last time
            health = schedule.after_not_modified(
                health,
                now=now,
                settings=self.settings.schedule,
                result=result,
                entry_times=entry_times,
                configured_interval_s=row.configured_interval_s,
                rng=self.rng,
            )
        else:
            health = schedule.after_success(
                health,
                now=now,
                settings=self.settings.schedule,
                result=result,
                ttl_minutes=parsed.ttl_minutes,
                update_period_minutes=parsed.update_period_minutes,
                entry_times=entry_times,
                configured_interval_s=row.configured_interval_s,
                rng=self.rng,
            )
        health, new_url = schedule.permanent_redirect_target(health, result)
        if new_url and not batch.url_taken(new_url, source.id):
            log.info("feed %s moved permanently to %s", row.url, new_url)
            row.url = new_url
        apply_health(row, health)
        row.last_fetch_at = started_at
        row.last_success_at = now
        if not result.not_modified:
            row.etag = result.etag
            row.last_modified = result.last_modified
            row.last_body_hash = result.body_hash
        if parsed is not None:
            row.title = row.title or parsed.title
            row.site_url = parsed.link or row.site_url
            row.boilerplate = self._boilerplate_for(source.id).to_json()
        row.lease_owner = None
        row.lease_expires_at = None

    def _record_error(
        self, source: FeedSource, error: FetchError | ParseError, started_at: datetime, t0: float
    ) -> FeedUpdateSummary:
        kind = error.kind
        status = error.status if isinstance(error, FetchError) else None
        log.warning(
            "feed %s failed (%s): %s",
            source.url,
            kind,
            error,
            extra={
                "event": "fetch",
                "feed_id": source.id,
                "feed_url": source.url,
                "outcome": "error",
                "status": status,
            },
        )
        metrics.FETCHES.labels("error").inc()
        metrics.FETCH_SECONDS.observe(time.perf_counter() - t0)
        now = self.clock()
        try:
            with self._write_lock, self.storage.session(write=True) as s:
                from newsfold.storage.tables import FeedRow

                row = s.get(FeedRow, source.id)
                if row is not None:
                    health = schedule.after_error(
                        health_of(row),
                        error,
                        now=now,
                        settings=self.settings.schedule,
                        rng=self.rng,
                    )
                    apply_health(row, health)
                    row.last_fetch_at = started_at
                    row.lease_owner = None
                    row.lease_expires_at = None
                    log_fetch(
                        s,
                        source.id,
                        started_at=started_at,
                        outcome="error",
                        http_status=status,
                        nbytes=0,
                        duration_s=time.perf_counter() - t0,
                        new_items=0,
                        error=str(error),
                    )
        except StorageError as e:
            log.error("feed %s: could not record its error: %s", source.url, e)
        return error_summary(source, kind, str(error), t0, status)

    # --- dedup index -------------------------------------------------------------------------

    def window_start(self) -> datetime:
        return self.clock() - timedelta(days=self.settings.dedup.window_days)

    def _ensure_dedup(self) -> Deduplicator:
        if self._dedup is None:
            dedup = Deduplicator(self.settings.dedup)
            self._known_merges = self.storage.merge_count()
            docs = list(self.storage.load_window(since=self.window_start()))
            dedup.load(docs)
            self._dedup_max_id = max((d.article_id for d in docs), default=0)
            self._dedup = dedup
        return self._dedup

    def _evict_old(self, dedup: Deduplicator) -> None:
        """Keep the index to the window, as a rebuild would (checked at most every few minutes)."""
        now = time.monotonic()
        if now - self._last_evict < EVICT_EVERY_S:
            return
        self._last_evict = now
        evicted = dedup.evict_before(self.window_start())
        if evicted:
            log.info("evicted %d articles older than the window from the index", evicted)

    def rebuild_index(self) -> int:
        """Drop and rebuild the in-memory index from stored signatures; returns its size."""
        with self._write_lock:
            self._dedup = None
            return len(self._ensure_dedup())

    def _catch_up(self, batch: Batch) -> Deduplicator:
        """Index what other workers committed since we last looked; returns the live index.

        New articles are added incrementally. A story merge made elsewhere changes
        ids already in our index, so then (rarely) the index is rebuilt from the
        database, inside this transaction and under the cluster lock.
        """
        assert self._dedup is not None
        merges = batch.merge_count()
        if merges != self._known_merges:
            dedup = Deduplicator(self.settings.dedup)
            docs = batch.docs_after(0, since=self.window_start())
            dedup.load(docs)
            self._dedup = dedup
            self._dedup_max_id = max((d.article_id for d in docs), default=0)
            self._known_merges = merges
            return dedup
        docs = batch.docs_after(self._dedup_max_id, since=self.window_start())
        if docs:
            self._dedup.load(docs)
            self._dedup_max_id = max(d.article_id for d in docs)
        return self._dedup


def _outcome(result: FetchResult, parsed: ParsedFeed | None) -> str:
    if result.not_modified:
        return "not_modified"
    return "unchanged" if parsed is None else "ok"


def error_summary(
    source: FeedSource, kind: ErrorKind, message: str, t0: float, status: int | None = None
) -> FeedUpdateSummary:
    return FeedUpdateSummary(
        feed_id=source.id,
        url=source.url,
        status="error",
        http_status=status,
        error_kind=kind,
        error=message,
        duration_s=time.perf_counter() - t0,
    )
