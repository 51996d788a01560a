"""Per-stage cost per item, each stage timed alone over the whole corpus.

The stages are run in pipeline order on the corpus served over HTTP, each
one fed the previous stage's output, so every number is the real cost of that
stage on this corpus (no stage sees cached work of another).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from benchmarks._common import bench_settings
from newsfold.config import load_settings
from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.normalise import BoilerplateModel, normalise_entry
from newsfold.parse import parse_feed
from newsfold.pipeline.prepare import dedup_doc
from newsfold.pipeline.service import Service
from newsfold.types import Article, FeedSource, ParsedFeed

if TYPE_CHECKING:
    from benchmarks.corpus import Corpus

_SETTINGS = load_settings(None, read_file=False)


def _doc(article_id: int, a: Article) -> DedupDoc:
    # The pipeline's own mapping (stream clock included), with default settings.
    return dedup_doc(article_id, a, _SETTINGS)


def run(corpus: Corpus, base: str, database_url: str) -> dict[str, Any]:
    # Alone (``--only stages``) the language model would otherwise load inside "normalise".
    from benchmarks.e2e import warm_up

    warm_up()
    settings = bench_settings(database_url)
    service = Service(settings, rng=random.Random(1))
    service.storage.upgrade()
    seconds: dict[str, float] = {}
    now = datetime.now(UTC)

    t0 = time.perf_counter()
    bodies: list[tuple[FeedSource, bytes]] = []
    with httpx.Client() as client:
        for f in range(corpus.feeds):
            info = service.add_feed(f"{base}/feed{f}.xml")
            bodies.append((FeedSource(id=info.id, url=info.url), client.get(info.url).content))
    seconds["fetch"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    parsed: list[tuple[FeedSource, ParsedFeed]] = [
        (src, parse_feed(body, url=src.url)) for src, body in bodies
    ]
    seconds["parse"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    articles: list[list[Article]] = []
    for src, feed in parsed:
        model = BoilerplateModel()
        articles.append(
            [
                normalise_entry(
                    e, src, fetched_at=now, settings=settings.normalise, boilerplate=model
                )
                for e in feed.entries
            ]
        )
    seconds["normalise"] = time.perf_counter() - t0

    dedup = Deduplicator(settings.dedup)
    t0 = time.perf_counter()
    sketches = [dedup.sketch_many([_doc(0, a) for a in batch]) for batch in articles]
    seconds["minhash"] = time.perf_counter() - t0

    # DB write and placement interleave in the pipeline (ids come from the insert);
    # they are timed apart inside the same transactions.
    seconds["lsh"] = seconds["db_write"] = 0.0
    items = 0
    for (src, _), batch, sks in zip(parsed, articles, sketches, strict=True):
        t0 = time.perf_counter()
        with service.storage.batch() as b:
            ids = b.insert_articles(src.id, batch, sks, [_doc(0, a).published for a in batch])
            t1 = time.perf_counter()
            placements = [
                dedup.place(_doc(aid, article), sketch)
                for aid, article, sketch in zip(ids, batch, sks, strict=True)
            ]
            seconds["lsh"] += time.perf_counter() - t1
            # Written as the writer writes them: one batch per feed.
            b.record_placements(list(zip(placements, batch, strict=True)), now=now)
            items += len(ids)
        seconds["db_write"] += time.perf_counter() - t0
    seconds["db_write"] -= seconds["lsh"]
    service.close()
    return {
        "items": items,
        "ms_per_item": {k: 1000 * v / max(items, 1) for k, v in seconds.items()},
        "total_ms_per_item": 1000 * sum(seconds.values()) / max(items, 1),
    }
