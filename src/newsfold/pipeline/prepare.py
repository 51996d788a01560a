"""The CPU-bound part of ingest for one fetched document: parse → normalise → sketch.

Pure (no I/O, no database), so it runs in the calling thread or in a pool of
worker processes: on a multi-core machine this is where the time goes
(feedparser, HTML cleaning, language detection, MinHash and term sketches),
while the main process keeps the in-memory index and the database writes.

Sketches are computed only for entries the database did not already hold
(``known``): re-polling a feed with one new item sketches one item.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.errors import NewsfoldError
from newsfold.normalise import normalise_entry, without_template
from newsfold.normalise.dates import EARLIEST_PLAUSIBLE
from newsfold.normalise.language import detect_language
from newsfold.normalise.template import item_keys
from newsfold.parse import parse_feed
from newsfold.types import DateSource

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from newsfold.config import Settings
    from newsfold.dedup import Sketch
    from newsfold.normalise import BoilerplateModel
    from newsfold.types import Article, FeedSource, FetchResult, ParsedFeed, RawEntry

log = logging.getLogger("newsfold.prepare")

# Where the owner cannot be watched through a pidfd, how often a worker checks it is alive.
PARENT_POLL_S = 1.0


@dataclasses.dataclass(slots=True)
class Prepared:
    """A fetched document after parse + normalise (+ sketches of unseen entries)."""

    source: FeedSource
    result: FetchResult
    parsed: ParsedFeed | None  # None: 304, or the same bytes as last time
    articles: list[Article]
    entries: dict[str, RawEntry] = dataclasses.field(default_factory=dict)  # by entry key
    sketches: dict[str, Sketch] = dataclasses.field(default_factory=dict)  # by entry key
    # The template 3-grams of unseen entries' texts (``item_keys``), by entry key: the
    # writer teaches them to the feed's model without reading the texts again.
    template_keys: dict[str, frozenset[int]] = dataclasses.field(default_factory=dict)


def needs_parse(source: FeedSource, result: FetchResult) -> bool:
    return not result.not_modified and (
        result.body_hash is None or result.body_hash != source.last_body_hash
    )


def story_time(article: Article, *, future_tolerance: timedelta) -> datetime:
    """When an article's event happened, as far as we can tell: the clock stories run on.

    Its publication time when that is credible: the feed gave it (normalise
    already falls back to first-seen for a missing or pre-1990 date and for one
    beyond the future tolerance), it is not before ``EARLIEST_PLAUSIBLE`` and not
    further after its fetch than ``future_tolerance``. Otherwise its first-seen
    time. A back catalogue keeps its own dates, so its stories form among
    themselves, and a report seen late still meets the story of its day.
    Stored with the article (``stream_at``), so a restart rebuilds the same index.
    """
    seen = article.fetched_at
    published = article.published
    credible = (
        article.date_source is DateSource.FEED
        and EARLIEST_PLAUSIBLE <= published <= seen + future_tolerance
    )
    return published if credible else seen


def dedup_doc(article_id: int, a: Article, settings: Settings) -> DedupDoc:
    return DedupDoc(
        article_id=article_id,
        feed_id=a.feed_id,
        published=story_time(
            a, future_tolerance=timedelta(seconds=settings.normalise.future_tolerance_s)
        ),
        title=a.title,
        text=a.comparison_text,
        url=a.url,
        content_hash=a.content_hash,
        language=a.language,
        seen=a.fetched_at,
    )


def prepare(
    source: FeedSource,
    result: FetchResult,
    now: datetime,
    *,
    settings: Settings,
    boilerplate: BoilerplateModel,
    known: Mapping[str, str] | None,
    dedup: Deduplicator | None,
) -> Prepared:
    """Parse and normalise a document; sketch entries not in ``known`` (key → content hash)."""
    if not needs_parse(source, result):
        return Prepared(source, result, None, [])
    parsed = parse_feed(
        result.content,
        url=result.url,
        headers=result.headers,
        max_entries=settings.fetch.max_entries,
    )
    # The feed's own title and link teach the normaliser the site's name and domain.
    context = dataclasses.replace(
        source, title=source.title or parsed.title, site_url=parsed.link or source.site_url
    )
    articles: dict[str, Article] = {}
    entries: dict[str, RawEntry] = {}
    for entry in parsed.entries:
        try:
            article = normalise_entry(
                entry,
                context,
                fetched_at=now,
                settings=settings.normalise,
                boilerplate=boilerplate,
            )
        except NewsfoldError as e:
            log.warning("feed %s: entry skipped: %s", source.url, e)
            continue
        # A repeated GUID inside one document: the first occurrence wins.
        if article.entry_key not in articles:
            articles[article.entry_key] = article
            entries[article.entry_key] = entry
    compared, template_keys = learn_template(list(articles.values()), boilerplate, known)
    prepared = Prepared(source, result, parsed, compared, entries, template_keys=template_keys)
    if dedup is not None and known is not None:
        unseen = [a for a in prepared.articles if a.entry_key not in known]
        if unseen:
            sketches = dedup.sketch_many([dedup_doc(0, a, settings) for a in unseen])
            prepared.sketches = {a.entry_key: k for a, k in zip(unseen, sketches, strict=True)}
    return prepared


def learn_template(
    articles: list[Article], boilerplate: BoilerplateModel, known: Mapping[str, str] | None
) -> tuple[list[Article], dict[str, frozenset[int]]]:
    """``articles`` compared without their feed's template, learned first from the
    new ones among them (a copy learns: the writer teaches the feed's model), and
    the template 3-grams learned from each new one, by entry key.

    Learning the whole poll before stripping any of it matters on a feed's first
    poll: its first items would otherwise be hashed and placed with the template
    in, before the template was known.
    """
    template = boilerplate.template.copy()
    learned: dict[str, frozenset[int]] = {}
    for a in articles:
        if known is None or a.entry_key not in known:
            learned[a.entry_key] = keys = item_keys(a.text)
            template.observe(a.text, keys)
    return [without_template(a, template) for a in articles], learned


# --- worker processes ----------------------------------------------------------------------

_worker: tuple[Settings, Deduplicator] | None = None


def _init_worker(settings: Settings, parent_pid: int | None = None) -> None:
    global _worker  # noqa: PLW0603 - one per worker process, set once by the pool initializer
    # Ctrl-C reaches the whole process group: stopping is the parent's decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        threading.Thread(
            target=_exit_with, args=(parent_pid,), name="parent-watch", daemon=True
        ).start()
    _worker = (settings, Deduplicator(settings.dedup))
    if settings.normalise.detect_language:
        detect_language("warm " * 40)  # load the language model now, not mid-poll


def _exit_with(pid: int) -> None:
    """Exit when process ``pid`` (the pool's owner) is gone, however it died.

    A worker blocks on its task queue, whose write end it holds itself, so it would never
    notice a ``kill -9`` of its owner; and the forkserver lives as long as any worker does.
    Without this, both would outlive the daemon indefinitely.
    """
    try:
        fd = os.pidfd_open(pid)  # Linux: readable once the process has exited
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while _alive(pid):
            time.sleep(PARENT_POLL_S)
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prepare_in_worker(
    source: FeedSource,
    result: FetchResult,
    now: datetime,
    boilerplate: BoilerplateModel,
    known: Mapping[str, str],
) -> Prepared:
    assert _worker is not None, "worker not initialised"
    settings, dedup = _worker
    prepared = prepare(
        source, result, now, settings=settings, boilerplate=boilerplate, known=known, dedup=dedup
    )
    return _slim(prepared)


def _slim(prepared: Prepared) -> Prepared:
    """What crosses back to the parent: not the document it already has, nor the raw
    entries, which only full-text feeds need (a third of the pickling, otherwise)."""
    keep_entries = prepared.source.full_text
    parsed = prepared.parsed
    if parsed is not None and not keep_entries:
        parsed = dataclasses.replace(parsed, entries=())
    return dataclasses.replace(
        prepared,
        result=dataclasses.replace(prepared.result, content=b""),
        parsed=parsed,
        entries=prepared.entries if keep_entries else {},
    )


def _ping() -> int:
    return os.getpid()


class Preparer:
    """Runs ``prepare`` in a pool of worker processes when that pays, else in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        configured = settings.pipeline.workers
        self.workers = (os.cpu_count() or 1) if configured == 0 else configured
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes now (a daemon does, so its first poll pays no start-up)."""
        if self.workers > 1:
            pool = self._get_pool()
            for future in [pool.submit(_ping) for _ in range(self.workers)]:
                future.result()

    def use_pool(self, feeds: int) -> bool:
        return self.workers > 1 and feeds >= self.settings.pipeline.pool_min_feeds

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: children fork from a clean server process, never from this
            # one's threads (an event loop, database pools) with their locks held.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["newsfold.pipeline.prepare"])
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(self.settings, os.getpid()),
            )
        return self._pool

    async def run(
        self,
        source: FeedSource,
        result: FetchResult,
        now: datetime,
        *,
        boilerplate: BoilerplateModel,
        known: Mapping[str, str],
        dedup: Deduplicator | None,
        pooled: bool,
    ) -> Prepared:
        if pooled:
            loop = asyncio.get_running_loop()
            slim = await loop.run_in_executor(
                self._get_pool(), _prepare_in_worker, source, result, now, boilerplate, known
            )
            return dataclasses.replace(slim, result=result)
        return await asyncio.to_thread(
            prepare,
            source,
            result,
            now,
            settings=self.settings,
            boilerplate=boilerplate,
            known=known,
            dedup=dedup,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
