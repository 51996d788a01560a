"""End-to-end ingest (feed server → clusters in the DB), newsfold vs a naive pipeline.

The naive pipeline is what a straightforward one-process implementation does
with the same parse and normalise stages: fetch feeds one by one, datasketch's
default ``MinHash`` per item fed one shingle at a time, datasketch's
``MinHashLSH`` for candidates, and one commit per item.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from datasketch import MinHash, MinHashLSH
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    insert,
)
from tests.support.reference import shingle_strings

from benchmarks._common import bench_settings
from newsfold.dedup.shingles import words
from newsfold.normalise import normalise_entry
from newsfold.parse import parse_feed
from newsfold.pipeline.service import Service
from newsfold.types import FeedSource

if TYPE_CHECKING:
    from benchmarks.corpus import Corpus

_naive_meta = MetaData()
_naive_articles = Table(
    "naive_articles",
    _naive_meta,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer),
    Column("entry_key", Text),
    Column("url", Text),
    Column("title", Text),
    Column("text", Text),
    Column("signature", LargeBinary),
    Column("cluster_id", Integer),
)


def warm_up() -> None:
    """Load the language model and the async I/O backend, and choose the LSH parameters,
    once, as a running daemon has: both pipelines then start warm (the backend's first
    import alone is ~0.1 s)."""
    from newsfold.config import DedupSettings, NormaliseSettings
    from newsfold.dedup import lsh_params
    from newsfold.types import RawEntry

    lsh_params(DedupSettings())

    async def touch_backend() -> None:
        anyio.Event()  # what the HTTP client's first request imports

    asyncio.run(touch_backend())

    entry = RawEntry(
        "g",
        "https://example.org/a",
        "Warm up",
        "<p>The quick brown fox jumps over the lazy dog again and again.</p>",
    )
    normalise_entry(
        entry,
        FeedSource(1, "https://example.org/feed"),
        fetched_at=datetime.now(UTC),
        settings=NormaliseSettings(),
    )


def run_newsfold(corpus: Corpus, base: str, database_url: str) -> dict[str, Any]:
    """``Service.poll`` over every feed of the corpus into a fresh database."""
    settings = bench_settings(database_url)
    service = Service(settings, rng=random.Random(1))
    service.storage.upgrade()
    try:
        for f in range(corpus.feeds):
            service.add_feed(f"{base}/feed{f}.xml")
        # A running daemon has its worker processes up already: start them before timing.
        workers = _start_workers(service)
        t0, cpu0, wcpu0 = time.perf_counter(), time.process_time(), _cpu_of(workers)
        summary = service.poll()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0 + _cpu_of(workers) - wcpu0
        stats = service.storage.stats()
        t1 = time.perf_counter()
        indexed = service.rebuild_index()
        rebuild_s = time.perf_counter() - t1
    finally:
        service.close()
    items = summary.new_articles
    return {
        "items": items,
        "errors": summary.errors,
        "seconds": elapsed,
        "items_per_s": items / elapsed if elapsed else 0.0,
        # CPU seconds of this process (server threads included) and of its worker
        # processes: on a shared machine wall time also counts other processes' turns.
        "cpu_s": cpu,
        "items_per_cpu_s": items / cpu if cpu else 0.0,
        "copy_groups": stats.copy_groups,
        "stories": stats.clusters,
        "exact_duplicates": stats.exact_duplicates,
        "near_duplicates": stats.near_duplicates,
        "story_joins": stats.story_joins,
        "expected_rewrites": sum(1 for i in corpus.items if i.original),
        "startup_rebuild_docs": indexed,
        "startup_rebuild_s": rebuild_s,
    }


def _start_workers(service: Service) -> list[int]:
    """Start the service's worker pool (when it would use one); returns the workers' pids."""
    if not service.preparer.use_pool(10**9):
        return []
    service.preparer.start()
    pool = service.preparer._pool
    return list(pool._processes) if pool is not None else []


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of live processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def run_naive(corpus: Corpus, base: str, database_url: str) -> dict[str, Any]:
    settings = bench_settings(database_url)
    engine = create_engine(database_url)
    _naive_meta.create_all(engine)
    lsh = MinHashLSH(threshold=settings.dedup.copy_threshold, num_perm=settings.dedup.num_perm)
    cluster_of: dict[int, int] = {}
    now = datetime.now(UTC)
    items = dupes = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    with httpx.Client() as client:
        for f in range(corpus.feeds):
            url = f"{base}/feed{f}.xml"
            response = client.get(url)
            parsed = parse_feed(response.content, url=url, headers=dict(response.headers))
            source = FeedSource(id=f + 1, url=url, title=parsed.title, site_url=parsed.link)
            for entry in parsed.entries:
                article = normalise_entry(
                    entry, source, fetched_at=now, settings=settings.normalise
                )
                m = MinHash(num_perm=settings.dedup.num_perm)
                for shingle in shingle_strings(words(article.comparison_text), 3):
                    m.update(shingle)
                candidates = lsh.query(m)
                cluster = min(cluster_of[c] for c in candidates) if candidates else None
                with engine.begin() as conn:  # commit per item
                    row_id = conn.execute(
                        insert(_naive_articles).values(
                            feed_id=source.id,
                            entry_key=article.entry_key,
                            url=article.url,
                            title=article.title,
                            text=article.text,
                            signature=m.hashvalues.astype("<u4").tobytes(),
                            cluster_id=cluster,
                        )
                    ).inserted_primary_key
                key = int(row_id[0]) if row_id else items
                cluster_of[key] = cluster if cluster is not None else key
                lsh.insert(key, m)
                items += 1
                dupes += cluster is not None
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    engine.dispose()
    return {
        "items": items,
        "seconds": elapsed,
        "items_per_s": items / elapsed if elapsed else 0.0,
        "cpu_s": cpu,
        "items_per_cpu_s": items / cpu if cpu else 0.0,
        "duplicates": dupes,
    }
