"""The service: the only module that knows the order of the stages.

    fetch ──▶ parse ──▶ normalise ──▶ (full-text pages) ──▶ dedup ──▶ store

Fetching is concurrent (asyncio, one shared HTTP client). The CPU stages
(``prepare.py``: parse, normalise, sketch) run in worker processes for larger
polls, else in a thread. The writes (``writer.FeedWriter``, deciding with
``decide.py``) of a poll (``poll_sources``: ``newsfold fetch``) wait for its
last feed and run under one lock in one transaction, its new articles placed
in story-time order across its feeds (feed by feed should that fail); the
daemon's one-feed tasks (``poll_source``) write each feed when it is ready.
``IndexKeeper`` keeps the in-memory index in step with the database. Every
per-feed outcome is a value (``FeedUpdateSummary``): a feed's failure is
recorded on the feed and logged, and never stops the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from newsfold.dedup import Deduplicator
from newsfold.errors import (
    FetchError,
    InvalidURLError,
    NewsfoldError,
    NotFoundError,
    ParseError,
    StorageError,
)
from newsfold.fetch import Fetcher
from newsfold.normalise import canonical_url, extract_page, normalise_entry, without_template
from newsfold.pipeline.index_keeper import IndexKeeper
from newsfold.pipeline.prepare import Prepared, Preparer, needs_parse
from newsfold.pipeline.retention import Pruner
from newsfold.pipeline.subscriptions import sync_config_feeds
from newsfold.pipeline.writer import BoilerplateModels, FeedWriter, error_summary
from newsfold.storage import Storage
from newsfold.types import (
    Article,
    ErrorKind,
    FeedSource,
    FeedUpdateSummary,
    FetchResult,
    PollSummary,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from newsfold.config import Settings
    from newsfold.normalise import BoilerplateModel, PageExtract
    from newsfold.pipeline.alerts import DeliveryReport
    from newsfold.pipeline.retention import PruneReport
    from newsfold.storage.records import FeedInfo

log = logging.getLogger("newsfold.service")


class PollWatcher(Protocol):
    """Told how a poll gets on (``newsfold fetch`` draws a progress bar from it)."""

    def started(self, sources: Sequence[FeedSource]) -> None: ...
    def fetched(self, source: FeedSource) -> None: ...
    def writing(self, count: int) -> None: ...


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
        self._write_lock = threading.Lock()  # one poll's writes at a time, and the index with them
        self.preparer = Preparer(settings)
        self._sketcher: Deduplicator | None = None  # sketches only; the index is ``index``'s
        self.index = IndexKeeper(settings.dedup, self.storage, self._now)
        self.boilerplate = BoilerplateModels(settings.normalise, self.storage)
        self.writer = FeedWriter(
            settings,
            self.storage,
            index=self.index,
            boilerplate=self.boilerplate,
            sketcher=self._sketcher_instance,
            clock=self._now,
            rng=self.rng,
            lock=self._write_lock,
        )
        self.pruner = Pruner(settings, self.storage, self.index, self._now, self._write_lock)

    def _now(self) -> datetime:
        # Late-bound: tests and tools swap ``clock`` after construction.
        return self.clock()

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
        return sync_config_feeds(self.storage, settings, now=self.clock())

    def close(self) -> None:
        self.preparer.close()
        self.storage.close()

    # --- feeds -----------------------------------------------------------------------------

    def add_feed(
        self,
        url: str,
        *,
        title: str | None = None,
        site_url: str | None = None,
        interval_s: int | None = None,
        full_text: bool = False,
        tags: Sequence[str] = (),
        origin: str = "cli",
    ) -> FeedInfo:
        clean = canonical_url(url.strip())
        if clean is None or not clean.startswith(("http://", "https://")):
            raise InvalidURLError(f"not an http(s) URL: {url!r}", url=url)
        return self.storage.add_feed(
            clean,
            now=self.clock(),
            title=title,
            site_url=site_url,
            interval_s=interval_s,
            default_interval_s=self.settings.schedule.default_interval_s,
            full_text=full_text,
            tags=tags,
            origin=origin,
        )

    # --- polling ----------------------------------------------------------------------------

    def deliver_alerts(self, *, within_s: float | None = None) -> DeliveryReport:
        """Deliver queued alerts (``pipeline.alerts``) for at most ``within_s`` seconds."""
        from newsfold.pipeline.alerts import AlertSender

        sender = AlertSender(self.settings, clock=self.clock)
        return asyncio.run(sender.deliver_due(self.storage, within_s=within_s))

    def poll(
        self, refs: Iterable[str | int] | None = None, *, watch: PollWatcher | None = None
    ) -> PollSummary:
        """Poll the given feeds (all enabled feeds when ``None``) now, regardless of schedule."""
        sources = self.storage.feed_sources(refs)
        if refs is None:
            disabled = {f.id for f in self.storage.list_feeds() if f.disabled_reason}
            sources = [s for s in sources if s.id not in disabled]
        return asyncio.run(self.poll_sources(sources, watch=watch))

    def fetcher(self) -> Fetcher:
        """An HTTP client with this service's limits (the daemon keeps one for its lifetime)."""
        return Fetcher(
            self.settings.fetch, allow_private_networks=self.settings.allow_private_networks
        )

    async def poll_source(
        self, fetcher: Fetcher, source: FeedSource, *, pooled: bool
    ) -> FeedUpdateSummary:
        """Poll one feed with a shared client (the daemon runs one such task per claimed feed).

        The feed is written as soon as it is ready (one slow feed never holds the
        others): its new articles are placed in story-time order among themselves.
        """
        outcome = await self._poll_one(fetcher, source, pooled=pooled)
        if isinstance(outcome, FeedUpdateSummary):
            return outcome
        return (await asyncio.to_thread(self._write_poll, [outcome]))[0][0]

    async def poll_sources(
        self, sources: Sequence[FeedSource], *, watch: PollWatcher | None = None
    ) -> PollSummary:
        """Fetch and prepare the feeds concurrently, then write them together.

        The writes wait for the whole poll so that its new articles are placed
        in one order across feeds (see ``FeedWriter.place_new``), as ``eval``
        places them: a feed that answers first gets no say in the stories.
        """
        started = time.perf_counter()
        if watch is not None:
            watch.started(sources)
        async with self.fetcher() as fetcher:
            pooled = self.preparer.use_pool(len(sources))

            async def one(
                source: FeedSource,
            ) -> tuple[Prepared, datetime, float] | FeedUpdateSummary:
                outcome = await self._poll_one(fetcher, source, pooled=pooled)
                if watch is not None:
                    watch.fetched(source)
                return outcome

            tasks = [asyncio.ensure_future(one(s)) for s in sources]
            try:
                outcomes = await asyncio.gather(*tasks)
            except asyncio.CancelledError:
                # Stopping: the feeds already fetched are written (in one order among
                # themselves); the rest are abandoned, written nothing, and polled again.
                done = [t.result() for t in tasks if t.done() and not t.cancelled()]
                ready = [o for o in done if not isinstance(o, FeedUpdateSummary)]
                if ready:
                    await asyncio.to_thread(self._write_poll, ready)
                raise
        ready = [o for o in outcomes if not isinstance(o, FeedUpdateSummary)]
        if watch is not None and ready:
            watch.writing(len(ready))
        written, write_s = await asyncio.to_thread(self._write_poll, ready) if ready else ([], 0.0)
        stored = iter(written)
        results = [o if isinstance(o, FeedUpdateSummary) else next(stored) for o in outcomes]
        return PollSummary(
            feeds=tuple(results), duration_s=time.perf_counter() - started, write_s=write_s
        )

    async def _poll_one(
        self, fetcher: Fetcher, source: FeedSource, *, pooled: bool = False
    ) -> tuple[Prepared, datetime, float] | FeedUpdateSummary:
        """Fetch and prepare one feed: what to write, with its start and the seconds it took
        (its own fetch, parse and normalise: not the wait for the rest of a poll or for the
        write), or the summary of its failure."""
        started_at = self.clock()
        t0 = time.perf_counter()
        result: FetchResult | None = None
        try:
            result = await fetcher.fetch(source)
            model, known = await asyncio.to_thread(self._before_prepare, source, result)
            prepared = await self.preparer.run(
                source,
                result,
                started_at,
                boilerplate=model,
                known=known,
                # Workers have their own sketcher: building one here (LSH parameters are
                # optimised numerically) would only hold up the event loop.
                dedup=None if pooled else self._sketcher_instance(),
                pooled=pooled,
            )
            if source.full_text and prepared.articles:
                await self._add_full_text(fetcher, prepared, started_at)
        except Exception as e:  # every failure becomes the feed's summary
            took_s = time.perf_counter() - t0
            return await asyncio.to_thread(self._failed, source, e, started_at, took_s, result)
        log.debug(
            "feed prepared; written with the rest of the poll",
            extra={"event": "prepared", "feed_id": source.id, "feed_url": source.url},
        )
        return prepared, started_at, time.perf_counter() - t0

    def _write_poll(
        self, ready: Sequence[tuple[Prepared, datetime, float]]
    ) -> tuple[list[FeedUpdateSummary], float]:
        """``FeedWriter.write_all``, and the seconds the writing took; should the poll's write
        fail, each feed is written alone, so one feed's bad data never stops the others."""
        w0 = time.perf_counter()
        if len(ready) > 1:
            try:
                return self.writer.write_all(ready), time.perf_counter() - w0
            except Exception as e:  # retried feed by feed below
                log.warning("poll write failed (%s): writing its feeds one by one", e)
        out = []
        for prepared, started_at, took_s in ready:
            try:
                out.append(self.writer.write(prepared, started_at, took_s))
            except Exception as e:  # every failure becomes the feed's summary
                out.append(self._failed(prepared.source, e, started_at, took_s))
        return out, time.perf_counter() - w0

    def _failed(
        self,
        source: FeedSource,
        e: Exception,
        started_at: datetime,
        took_s: float,
        result: FetchResult | None = None,
    ) -> FeedUpdateSummary:
        """A feed's failure as its summary, recorded on the feed where that is possible;
        ``result`` is the answer when one came (a 200 that is not a feed)."""
        if isinstance(e, (FetchError, ParseError)):
            return self.writer.record_error(source, e, started_at, took_s, result)
        if isinstance(e, StorageError):
            log.error("feed %s: database error: %s", source.url, e, extra={"feed_id": source.id})
            return error_summary(source, ErrorKind.TRANSIENT, str(e), took_s)
        # A bug must not stop the other feeds.
        log.error("feed %s: internal error", source.url, exc_info=e, extra={"feed_id": source.id})
        err = ParseError(f"internal error: {type(e).__name__}: {e}", kind=ErrorKind.TRANSIENT)
        return self.writer.record_error(source, err, started_at, took_s, result)

    # --- stages -------------------------------------------------------------------------------

    def _before_prepare(
        self, source: FeedSource, result: FetchResult
    ) -> tuple[BoilerplateModel, dict[str, str]]:
        """The feed's boilerplate model, and the entries it already has (not re-sketched)."""
        model = self.boilerplate.get(source.id)
        if not needs_parse(source, result):
            return model, {}
        since = self.clock() - timedelta(days=self.settings.pipeline.known_entries_days)
        return model, self.storage.known_entries(source.id, since=since)

    def _sketcher_instance(self) -> Deduplicator:
        if self._sketcher is None:
            self._sketcher = Deduplicator(self.settings.dedup)
        return self._sketcher

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
                # Extraction is CPU work: off the event loop, which keeps fetching.
                return article, await asyncio.to_thread(extract_page, page.content, page.url)
            except NewsfoldError as e:  # fall back to the feed's content
                log.info("full text of %s unavailable: %s", article.url, e)
                return article, None

        pages = await asyncio.gather(*(page_for(a) for a in fresh))
        await asyncio.to_thread(self._renormalise, prepared, pages, now)

    def _renormalise(
        self,
        prepared: Prepared,
        pages: Sequence[tuple[Article, PageExtract | None]],
        now: datetime,
    ) -> None:
        by_key = {a.entry_key: a for a in prepared.articles}
        model = self.boilerplate.get(prepared.source.id)
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
            redone = without_template(redone, model.template)
            # The page may name another canonical URL; the entry keeps its identity.
            by_key[article.entry_key] = dataclasses.replace(redone, entry_key=article.entry_key)
            prepared.sketches.pop(article.entry_key, None)  # new text, new sketch
            prepared.template_keys.pop(article.entry_key, None)
        prepared.articles = list(by_key.values())

    def prune(self, *, dry_run: bool = False) -> PruneReport:
        """Apply ``[retention]``: delete (or, dry, count) what it no longer keeps."""
        return self.pruner.run(dry_run=dry_run)

    def rebuild_index(self) -> int:
        """Drop and rebuild the in-memory index from stored signatures; returns its size."""
        with self._write_lock:
            return self.index.rebuild()


__all__ = ["NotFoundError", "Service", "utcnow"]
