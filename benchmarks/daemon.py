"""Daemon steady state: many feeds, a simulated clock, many cycles; RSS must stay flat.

Each cycle does what ``Daemon.cycle`` does around the network: claim the due
feeds (``Storage.claim_due``), decide each one's next poll with the pure
schedule functions (mostly 304s, some new content, a few errors), write the
feed state and the fetch log through ``Batch`` (which ends the lease). The
clock is simulated, so a day of polling runs in seconds and nothing sleeps.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from benchmarks._common import bench_settings, settled_rss, slope
from newsfold.errors import FetchError
from newsfold.pipeline import policy
from newsfold.storage import Storage
from newsfold.storage.feeds import health_of
from newsfold.storage.records import FeedUpdate, FetchLogEntry
from newsfold.storage.tables import FeedRow
from newsfold.types import ErrorKind, FetchOutcome, FetchResult

STEP = timedelta(seconds=60)


def run(database_url: str, *, feeds: int = 10_000, cycles: int = 240) -> dict[str, Any]:
    full = bench_settings(database_url)
    settings, keep = full.schedule, full.retention.fetch_log_per_feed
    storage = Storage(database_url)
    storage.upgrade()
    rng = random.Random(8)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with storage.session(write=True) as s:
        s.execute(
            insert(FeedRow),
            [
                {
                    "url": f"https://outlet{i}.example/feed.xml",
                    "created_at": now,
                    # Spread first polls over one interval, as a long-running daemon has them.
                    "next_fetch_at": now + timedelta(seconds=rng.uniform(0, 1800)),
                    "interval_s": 1800,
                    "error_count": 0,
                    "redirect_seen": 0,
                    "tags": "",
                    "origin": "config",
                    "full_text": False,
                }
                for i in range(feeds)
            ],
        )
    samples: list[int] = []
    polled = 0
    t0 = time.perf_counter()
    for _ in range(cycles):
        claimed = storage.claim_due(now=now, owner="bench", lease_s=600)
        with storage.batch(placing=False) as batch:
            for src in claimed:
                feed = batch.feed(src.id)
                assert feed is not None
                draw = rng.random()
                result = FetchResult(src.url, src.url, 304, b"", not_modified=True)
                if draw < 0.05:
                    err = FetchError(
                        "503 Service Unavailable", url=src.url, kind=ErrorKind.TRANSIENT
                    )
                    health = policy.after_error(
                        health_of(feed), err, now=now, settings=settings, rng=rng
                    )
                else:
                    health = policy.after_not_modified(
                        health_of(feed), now=now, settings=settings, rng=rng, result=result
                    )
                batch.save_feed(src.id, FeedUpdate(health=health, last_fetch_at=now))
                batch.log(
                    src.id,
                    keep=keep,
                    entry=FetchLogEntry(
                        started_at=now,
                        outcome=FetchOutcome.NOT_MODIFIED,
                        http_status=304,
                        bytes=0,
                        duration_ms=10,
                        new_items=0,
                        error=None,
                    ),
                )
        polled += len(claimed)
        now += STEP
        samples.append(settled_rss())
    elapsed = time.perf_counter() - t0
    storage.close()
    half = samples[len(samples) // 2 :]
    return {
        "feeds": feeds,
        "cycles": cycles,
        "simulated_hours": cycles * STEP.total_seconds() / 3600,
        "polls": polled,
        "ms_per_cycle": 1000 * elapsed / max(cycles, 1),
        "polls_per_s": polled / elapsed if elapsed else 0.0,
        "rss_start_mb": samples[0] / 2**20 if samples else 0.0,
        "rss_end_mb": samples[-1] / 2**20 if samples else 0.0,
        # Second half only: the first cycles warm caches and the ORM.
        "rss_slope_kb_per_100_cycles": 100 * slope(half) / 1024,
    }
