"""Retention: database size over a simulated month of polls, with ``[retention] days`` on.

    python -m benchmarks.retention [--days 30] [--feeds 8] [--per-day 12] [--polls-per-day 4]
                                   [--retention-days 5] [--baseline] [--postgres URL|none]
                                   [--out FILE.json]

Each feed publishes ``--per-day`` items a day (a share rewriting another feed's
item); every poll hands each feed's document (its newest 20 items) to the
service's write path on a simulated clock (no network: prepare, decide, place,
write, as a poll does after its fetch), and once a simulated day the service
prunes, as the daemon does. After each day: rows, and the database's size (SQLite:
the file after a WAL checkpoint; PostgreSQL: the schema's tables with indexes and
TOAST, autovacuum left to itself). ``--baseline`` runs the same month with
retention off. Small by default: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from benchmarks._common import (
    DEFAULT_POSTGRES,
    bench_settings,
    postgres_available,
    postgres_schema,
    sqlite_url,
)
from benchmarks.corpus import Item, WordModel, rss
from newsfold.config import sqlite_path
from newsfold.pipeline.prepare import prepare
from newsfold.pipeline.service import Service
from newsfold.storage.tables import ArticleRow, ClusterRow, FetchLogRow
from newsfold.types import FetchResult

if TYPE_CHECKING:
    from collections.abc import Iterator

START = datetime(2025, 3, 1, tzinfo=UTC)
FEED_LENGTH = 20  # items a feed document carries
DUP_SHARE = 0.3


def _items(feeds: int, per_day: int, days: int, seed: int = 8) -> Iterator[Item]:
    """Items in publication order over ``days``, round-robin over feeds."""
    rng = random.Random(seed)
    model = WordModel(rng)
    total = feeds * per_day * days
    step = timedelta(days=days) / total
    originals: list[Item] = []
    for n in range(total):
        feed = n % feeds
        published = START + step * n
        guid = f"https://outlet{feed}.example/news/{n}"
        pool = [o for o in originals[-50:] if o.feed != feed]
        if pool and rng.random() < DUP_SHARE:
            src = rng.choice(pool)
            title = f"{src.title.split(' | ')[0]} | Outlet {feed}"
            yield Item(feed, guid, guid, title, model.rewrite(src.body), published, src.guid)
            continue
        names = rng.sample(model.names, 4)
        title = " ".join([names[0], *(model.word() for _ in range(rng.randint(4, 8)))])
        item = Item(
            feed, guid, guid, f"{title} | Outlet {feed}", model.article(names), published, None
        )
        originals.append(item)
        yield item


def _size(service: Service) -> int:
    storage = service.storage
    path = sqlite_path(storage.url)
    if path is not None:
        with storage.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(
            p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
    with storage.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar_one()
        )


def _rows(service: Service) -> dict[str, int]:
    with service.storage.session() as s:
        return {
            "articles": int(s.scalar(select(func.count()).select_from(ArticleRow)) or 0),
            "clusters": int(s.scalar(select(func.count()).select_from(ClusterRow)) or 0),
            "fetch_log": int(s.scalar(select(func.count()).select_from(FetchLogRow)) or 0),
        }


def simulate(
    database_url: str,
    *,
    days: int,
    feeds: int,
    per_day: int,
    polls_per_day: int,
    retention_days: float | None,
) -> dict[str, Any]:
    base = bench_settings(database_url)
    settings = base.model_copy(
        update={
            "pipeline": base.pipeline.model_copy(update={"workers": 1}),
            "retention": base.retention.model_copy(update={"days": retention_days}),
        }
    )
    clock_at = [START]
    service = Service(settings, clock=lambda: clock_at[0])
    service.storage.upgrade()
    sources = [service.add_feed(f"https://outlet{f}.example/feed.xml") for f in range(feeds)]
    by_id = {s.id: s for s in service.storage.feed_sources()}
    shown: list[list[Item]] = [[] for _ in range(feeds)]
    items = _items(feeds, per_day, days)
    pending = next(items, None)
    poll_every = timedelta(days=1) / polls_per_day
    month = timedelta(days=settings.pipeline.known_entries_days)
    samples: list[dict[str, Any]] = []
    prune_s: list[float] = []
    t0 = time.perf_counter()
    for day in range(days):
        for poll in range(polls_per_day):
            now = START + timedelta(days=day) + poll_every * (poll + 1)
            clock_at[0] = now
            while pending is not None and pending.published <= now:
                shown[pending.feed] = [*shown[pending.feed], pending][-FEED_LENGTH:]
                pending = next(items, None)
            ready = []
            for f, info in enumerate(sources):
                source = by_id[info.id]
                result = FetchResult(
                    requested_url=source.url,
                    url=source.url,
                    status=200,
                    content=rss(f, shown[f]),
                    body_hash=None,
                )
                prepared = prepare(
                    source,
                    result,
                    now,
                    settings=settings,
                    boilerplate=service.boilerplate.get(source.id),
                    # As a poll does: entries already stored are not sketched again.
                    known=service.storage.known_entries(source.id, since=now - month),
                    dedup=None,
                )
                ready.append((prepared, now, 0.0))
            service.writer.write_all(ready)
        started = time.perf_counter()
        report = service.prune()  # the daemon's daily run
        prune_s.append(time.perf_counter() - started)
        samples.append(
            {"day": day + 1, "bytes": _size(service), "pruned": report.articles, **_rows(service)}
        )
    elapsed = time.perf_counter() - t0
    service.close()
    return {
        "retention_days": retention_days,
        "seconds": round(elapsed, 1),
        "prune_s_max": round(max(prune_s), 3),
        "days": samples,
        **_summary(samples, retention_days, settings.dedup.story_window_days),
    }


def _summary(
    samples: list[dict[str, Any]], retention_days: float | None, story_window: float
) -> dict[str, Any]:
    """Growth over the second half of the month (past the first retention period)."""
    mid = samples[len(samples) // 2 - 1]
    end = samples[-1]
    steady = None if retention_days is None else int(retention_days + 2 * story_window)
    return {
        "bytes_mid": mid["bytes"],
        "bytes_end": end["bytes"],
        "growth_second_half_pct": round(100.0 * (end["bytes"] - mid["bytes"]) / mid["bytes"], 1),
        "articles_mid": mid["articles"],
        "articles_end": end["articles"],
        "steady_from_day": steady,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.retention", description=__doc__)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--feeds", type=int, default=8)
    p.add_argument("--per-day", type=int, default=12, help="items per feed per day")
    p.add_argument("--polls-per-day", type=int, default=4)
    p.add_argument("--retention-days", type=float, default=5.0)
    p.add_argument("--baseline", action="store_true", help="also run with retention off")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="'none' skips PostgreSQL")
    p.add_argument("--out", type=Path, help="JSON results file")
    args = p.parse_args(argv)
    if args.days < 2:
        p.error("--days must be at least 2")
    kw = {
        "days": args.days,
        "feeds": args.feeds,
        "per_day": args.per_day,
        "polls_per_day": args.polls_per_day,
    }
    modes = [args.retention_days, *([None] if args.baseline else [])]
    results: dict[str, Any] = {"settings": {**kw, "retention_days": args.retention_days}}
    with tempfile.TemporaryDirectory(prefix="nfbench-retention-") as tmp:
        for mode in modes:
            name = "sqlite" if mode is not None else "sqlite_baseline"
            url = sqlite_url(Path(tmp), name)
            results[name] = simulate(url, retention_days=mode, **kw)
    why = "skipped" if args.postgres == "none" else postgres_available(args.postgres)
    if why is None:
        for mode in modes:
            name = "postgresql" if mode is not None else "postgresql_baseline"
            with postgres_schema(args.postgres) as url:
                results[name] = simulate(url, retention_days=mode, **kw)
    else:
        results["postgresql_skipped"] = why
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'run':<20} {'MB mid':>8} {'MB end':>8} {'growth':>8} {'articles mid':>13} "
        f"{'articles end':>13} {'max prune s':>12}"
    ]
    for name, r in results.items():
        if not isinstance(r, dict) or "bytes_mid" not in r:
            continue
        lines.append(
            f"{name:<20} {r['bytes_mid'] / 1e6:>8.2f} {r['bytes_end'] / 1e6:>8.2f} "
            f"{r['growth_second_half_pct']:>7.1f}% {r['articles_mid']:>13} "
            f"{r['articles_end']:>13} {r['prune_s_max']:>12.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
