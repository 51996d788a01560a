"""Search latency: p50/p99 of ``Storage.search`` over N stored articles, SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.search --articles 100000 [--postgres URL|none]
        [--words 150] [--queries 40] [--out FILE.json]

Not part of ``python -m benchmarks``: it is run on its own. Articles come from the
suite's Zipfian pseudo-word model (``--words`` per article, English as their
language, so PostgreSQL stems them), grouped into stories of 1-5; they are
written with the same index path ingest uses (``search_index.index_rows``), in
chunks, and the time to fill is reported too. Each query kind (a frequent word,
a mid-frequency word, a rare word, a name, a two-word AND, a phrase taken from a
stored text, an OR, an exclusion) runs ``--queries`` times with fresh words, at
both levels (articles, stories), 20 results with snippets: the path the CLI and
the API take.
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

from sqlalchemy import insert

from benchmarks._common import (
    DEFAULT_POSTGRES,
    percentile,
    postgres_available,
    postgres_schema,
    sqlite_url,
)
from benchmarks.corpus import WordModel
from newsfold.storage import Storage
from newsfold.storage.search_index import index_rows
from newsfold.storage.tables import ArticleRow, ClusterRow, FeedRow, MembershipRow

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 5000
KINDS = ("frequent", "mid", "rare", "name", "and", "phrase", "or", "exclude")


def _text(model: WordModel, names: list[str], words: int) -> str:
    out: list[str] = []
    count = 0
    while count < words:
        sentence = model.sentence(names)
        out.append(sentence)
        count += len(sentence.split())
    return " ".join(out)


def fill(storage: Storage, n: int, words: int, seed: int = 7) -> float:
    """Store ``n`` articles in stories of 1-5 with their index rows; returns seconds."""
    rng = random.Random(seed)
    model = WordModel(rng)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    with storage.session(write=True) as s:
        s.execute(
            insert(FeedRow),
            [
                {
                    "id": 1,
                    "url": "http://bench.example/feed",
                    "title": "bench",
                    "tags": "",
                    "full_text": False,
                    "origin": "cli",
                    "created_at": now,
                    "next_fetch_at": now,
                    "interval_s": 900,
                    "error_count": 0,
                    "redirect_seen": 0,
                }
            ],
        )
    story = 0
    left = 0
    sizes: dict[int, int] = {}
    for start in range(1, n + 1, CHUNK):
        articles: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        index: list[tuple[int, str, str, str, str | None]] = []
        for aid in range(start, min(n, start + CHUNK - 1) + 1):
            if left == 0:
                story, left = aid, rng.randint(1, 5)
                names = rng.sample(model.names, 3)
            left -= 1
            sizes[story] = sizes.get(story, 0) + 1
            title = " ".join(model.word() for _ in range(rng.randint(5, 10))).capitalize()
            body = _text(model, names, words)
            articles.append(
                {
                    "id": aid,
                    "feed_id": 1,
                    "entry_key": f"e{aid}",
                    "url": f"http://bench.example/{aid}",
                    "title": title,
                    "summary": "",
                    "text": body,
                    "language": "en",
                    "published": now + timedelta(minutes=aid),
                    "stream_at": now + timedelta(minutes=aid),
                    "date_source": "feed",
                    "fetched_at": now + timedelta(minutes=aid),
                    "content_hash": f"{aid:064x}",
                    "revision": 1,
                    "signature": b"",
                    "story_sketch": b"",
                }
            )
            members.append(
                {
                    "article_id": aid,
                    "level": "stories",
                    "cluster_id": story,
                    "tier": "new" if aid == story else "story",
                    "similarity": 1.0,
                    "matched_article_id": None,
                    "joined_at": now,
                }
            )
            index.append((aid, title, "", body, "en"))
        with storage.session(write=True) as s:
            conn = s.connection()
            conn.execute(insert(ArticleRow.__table__), articles)  # type: ignore[arg-type]
            conn.execute(insert(MembershipRow.__table__), members)  # type: ignore[arg-type]
            index_rows(conn, index)
    clusters = [
        {
            "level": "stories",
            "id": cid,
            "parent_id": None,
            "title": f"story {cid}",
            "size": size,
            "first_seen": now + timedelta(minutes=cid),
            "last_seen": now + timedelta(minutes=cid + size - 1),
            "merged_into": None,
        }
        for cid, size in sizes.items()
    ]
    with storage.session(write=True) as s:
        for k in range(0, len(clusters), CHUNK):
            s.connection().execute(insert(ClusterRow.__table__), clusters[k : k + CHUNK])  # type: ignore[arg-type]
    return time.perf_counter() - t0


def queries(kind: str, model: WordModel, rng: random.Random, sample: Callable[[], str]) -> str:
    vocab = model.vocab

    def band(lo: int, hi: int) -> str:
        return vocab[rng.randrange(lo, hi)]

    match kind:
        case "frequent":
            return band(5, 50)
        case "mid":
            return band(500, 3000)
        case "rare":
            return band(15000, 30000)
        case "name":
            return rng.choice(model.names)
        case "and":
            return f"{band(50, 500)} {band(500, 3000)}"
        case "phrase":
            words = sample().split()
            k = rng.randrange(0, max(1, len(words) - 3))
            return '"' + " ".join(w.strip(".") for w in words[k : k + 3]) + '"'
        case "or":
            return f"{band(500, 3000)} OR {band(500, 3000)}"
        case _:
            return f"{band(500, 3000)} -{band(5, 50)}"


def measure(storage: Storage, n: int, per_kind: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    model = WordModel(random.Random(7))  # the vocabulary the articles were written in

    def sample() -> str:
        return storage.get_article(rng.randint(1, n)).text

    out: dict[str, Any] = {}
    for level in ("articles", "stories"):
        all_ms: list[float] = []
        for kind in KINDS:
            times: list[float] = []
            for _ in range(per_kind):
                q = queries(kind, model, rng, sample)
                t0 = time.perf_counter()
                storage.search(q, stories=level == "stories", limit=20)
                times.append((time.perf_counter() - t0) * 1000)
            all_ms += times
            out[f"{level}.{kind}"] = {
                "p50_ms": round(percentile(times, 50), 2),
                "p99_ms": round(percentile(times, 99), 2),
            }
        out[level] = {
            "p50_ms": round(percentile(all_ms, 50), 2),
            "p99_ms": round(percentile(all_ms, 99), 2),
            "queries": len(all_ms),
        }
    return out


def run_one(url: str, n: int, words: int, per_kind: int) -> dict[str, Any]:
    storage = Storage(url)
    try:
        storage.upgrade()
        fill_s = fill(storage, n, words)
        result = measure(storage, n, per_kind)
        return {"articles": n, "fill_s": round(fill_s, 1)} | result
    finally:
        storage.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__)
    p.add_argument("--articles", type=int, default=100_000)
    p.add_argument("--words", type=int, default=150, help="words per article body")
    p.add_argument("--queries", type=int, default=40, help="runs of each query kind and level")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="'none' skips PostgreSQL")
    p.add_argument("--only", choices=("sqlite", "postgresql"))
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    results: dict[str, Any] = {}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = sqlite_url(Path(tmp), "search")
            results["sqlite"] = run_one(url, args.articles, args.words, args.queries)
            results["sqlite"]["db_mb"] = round(Path(url[10:]).stat().st_size / 2**20, 1)
        print(json.dumps({"sqlite": results["sqlite"]}, indent=1), flush=True)
    if args.only != "sqlite" and args.postgres != "none":
        why = postgres_available(args.postgres)
        if why:
            print(f"PostgreSQL skipped: {why}", file=sys.stderr)
        else:
            with postgres_schema(args.postgres) as url:
                results["postgresql"] = run_one(url, args.articles, args.words, args.queries)
            print(json.dumps({"postgresql": results["postgresql"]}, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
