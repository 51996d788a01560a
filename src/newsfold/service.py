"""The service: the only module that knows the order of the stages.

    fetch ──▶ parse ──▶ normalise ──▶ (full-text pages) ──▶ dedup ──▶ store

Fetching is concurrent (asyncio, one shared HTTP client); the CPU stages and
the database writes of each feed run in a worker thread, one feed at a time
(``_write_lock``), each feed's writes in one transaction. Every per-feed outcome
is a value (``FeedUpdateSummary``): a feed's failure is recorded on the feed and
logged here, and never stops the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from newsfold import metrics, schedule
from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.errors import FetchError, NewsfoldError, NotFoundError, ParseError, StorageError
from newsfold.fetch import Fetcher
from newsfold.normalise import BoilerplateModel, extract_page, normalise_entry
from newsfold.prepare import Prepared, Preparer, dedup_doc, needs_parse
from newsfold.storage import Batch, Storage
from newsfold.storage.feeds import apply_health, health_of, log_fetch
from newsfold.types import (
    Article,
    ErrorKind,
    FeedSource,
    FeedUpdateSummary,
    FetchResult,
    ParsedFeed,
    Placement,
    PollSummary,
    Tier,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from newsfold.config import Settings
    from newsfold.dedup import Sketch
    from newsfold.normalise import PageExtract
    from newsfold.storage.records import FeedInfo

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


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        storage: Storage | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage or Storage(settings.database_url)
        self.clock = clock
        self.rng = rng or random.Random()
        self._dedup: Deduplicator | None = None
        self._dedup_max_id = 0
        self._last_evict = time.monotonic()
        self._known_merges = 0  # story merges in the database when the index was last in step
        self._boilerplate: dict[int, BoilerplateModel] = {}
        self._write_lock = threading.Lock()
        self.preparer = Preparer(settings)
        self._sketcher: Deduplicator | None = None  # sketches only; the index is ``_dedup``

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Service:
        """Open the database (migrating it to the current schema) and sync config feeds."""
        service = cls(settings)
        if migrate:
            service.storage.upgrade()
        service.sync_config_feeds(settings)
        return service

    def sync_config_feeds(self, settings: Settings) -> int:
        """Subscribe to the settings file's feeds (canonical URLs); disable ones taken out."""
        from newsfold.normalise import canonical_url

        return self.storage.sync_config_feeds(
            (
                (canonical_url(f.url) or f.url, f.title, f.interval_s, f.full_text, f.tags)
                for f in settings.feeds
            ),
            now=self.clock(),
            default_interval_s=settings.schedule.default_interval_s,
        )

    def close(self) -> None:
        self.preparer.close()
        self.storage.close()

    # --- feeds -----------------------------------------------------------------------------

    def add_feed(
        self,
        url: str,
        *,
        title: str | None = None,
        interval_s: int | None = None,
        full_text: bool = False,
        tags: Sequence[str] = (),
        origin: str = "cli",
    ) -> FeedInfo:
        from newsfold.normalise import canonical_url

        clean = canonical_url(url.strip())
        if clean is None or not clean.startswith(("http://", "https://")):
            raise FetchError(f"not an http(s) URL: {url!r}", url=url, kind=ErrorKind.PERMANENT)
        return self.storage.add_feed(
            clean,
            now=self.clock(),
            title=title,
            interval_s=interval_s,
            default_interval_s=self.settings.schedule.default_interval_s,
            full_text=full_text,
            tags=tags,
            origin=origin,
        )

    # --- polling ----------------------------------------------------------------------------

    def poll(self, refs: Iterable[str | int] | None = None) -> PollSummary:
        """Poll the given feeds (all enabled feeds when ``None``) now, regardless of schedule."""
        sources = self.storage.feed_sources(refs)
        if refs is None:
            disabled = {f.id for f in self.storage.list_feeds() if f.disabled_reason}
            sources = [s for s in sources if s.id not in disabled]
        return asyncio.run(self.poll_sources(sources))

    async def poll_sources(self, sources: Sequence[FeedSource]) -> PollSummary:
        started = time.perf_counter()
        async with Fetcher(
            self.settings.fetch, allow_private_networks=self.settings.allow_private_networks
        ) as fetcher:
            pooled = self.preparer.use_pool(len(sources))
            results = await asyncio.gather(
                *(self._poll_one(fetcher, s, pooled=pooled) for s in sources)
            )
        return PollSummary(feeds=tuple(results), duration_s=time.perf_counter() - started)

    async def _poll_one(
        self, fetcher: Fetcher, source: FeedSource, *, pooled: bool = False
    ) -> FeedUpdateSummary:
        started_at = self.clock()
        t0 = time.perf_counter()
        try:
            result = await fetcher.fetch(source)
            model, known = await asyncio.to_thread(self._before_prepare, source, result)
            prepared = await self.preparer.run(
                source,
                result,
                started_at,
                boilerplate=model,
                known=known,
                dedup=self._sketcher_instance(),
                pooled=pooled,
            )
            if source.full_text and prepared.articles:
                await self._add_full_text(fetcher, prepared, started_at)
            return await asyncio.to_thread(self._store, prepared, started_at, t0)
        except (FetchError, ParseError) as e:
            return await asyncio.to_thread(self._record_error, source, e, started_at, t0)
        except StorageError as e:
            log.error("feed %s: database error: %s", source.url, e, extra={"feed_id": source.id})
            return _error_summary(source, ErrorKind.TRANSIENT, str(e), t0)
        except Exception as e:  # a bug must not stop the other feeds
            log.exception("feed %s: internal error", source.url, extra={"feed_id": source.id})
            err = ParseError(f"internal error: {type(e).__name__}: {e}", kind=ErrorKind.TRANSIENT)
            return await asyncio.to_thread(self._record_error, source, err, started_at, t0)

    # --- stages -------------------------------------------------------------------------------

    def _before_prepare(
        self, source: FeedSource, result: FetchResult
    ) -> tuple[BoilerplateModel, dict[str, str]]:
        """The feed's boilerplate model, and the entries it already has (not re-sketched)."""
        model = self._boilerplate_for(source.id)
        if not needs_parse(source, result):
            return model, {}
        since = self.clock() - timedelta(days=self.settings.pipeline.known_entries_days)
        return model, self.storage.known_entries(source.id, since=since)

    def _sketcher_instance(self) -> Deduplicator:
        if self._sketcher is None:
            self._sketcher = Deduplicator(self.settings.dedup)
        return self._sketcher

    def _prepare(self, source: FeedSource, result: FetchResult, now: datetime) -> Prepared:
        """In-process ``prepare`` (tests and tools that have the bytes already)."""
        from newsfold.prepare import prepare

        return prepare(
            source,
            result,
            now,
            settings=self.settings,
            boilerplate=self._boilerplate_for(source.id),
            known=None,
            dedup=None,
        )

    async def _add_full_text(self, fetcher: Fetcher, prepared: Prepared, now: datetime) -> None:
        """Full-text feeds: fetch each *new* entry's page and re-normalise with its main text."""
        known = await asyncio.to_thread(
            self.storage.existing_keys, prepared.source.id, [a.entry_key for a in prepared.articles]
        )
        fresh = [a for a in prepared.articles if a.entry_key not in known and a.url]

        async def page_for(article: Article) -> tuple[Article, PageExtract | None]:
            assert article.url is not None
            try:
                page = await fetcher.fetch_page(article.url)
                return article, extract_page(page.content, page.url)
            except NewsfoldError as e:  # fall back to the feed's content
                log.info("full text of %s unavailable: %s", article.url, e)
                return article, None

        pages = await asyncio.gather(*(page_for(a) for a in fresh))
        by_key = {a.entry_key: a for a in prepared.articles}
        model = self._boilerplate_for(prepared.source.id)
        for article, page in pages:
            if page is None:
                continue
            redone = normalise_entry(
                prepared.entries[article.entry_key],
                prepared.source,
                fetched_at=now,
                settings=self.settings.normalise,
                boilerplate=model,
                page=page,
            )
            # The page may name another canonical URL; the entry keeps its identity.
            by_key[article.entry_key] = dataclasses.replace(redone, entry_key=article.entry_key)
            prepared.sketches.pop(article.entry_key, None)  # new text, new sketch
        prepared.articles = list(by_key.values())

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
        return _error_summary(source, kind, str(error), t0, status)

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

    def _boilerplate_for(self, feed_id: int) -> BoilerplateModel:
        model = self._boilerplate.get(feed_id)
        if model is None:
            data = self.storage.boilerplate_json(feed_id)
            model = BoilerplateModel.from_json(data) if data else BoilerplateModel()
            self._boilerplate[feed_id] = model
        return model


def _outcome(result: FetchResult, parsed: ParsedFeed | None) -> str:
    if result.not_modified:
        return "not_modified"
    return "unchanged" if parsed is None else "ok"


def _error_summary(
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


__all__ = ["NotFoundError", "Service", "utcnow"]
