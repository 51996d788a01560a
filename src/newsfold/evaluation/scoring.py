"""Clustering quality on labelled data, through the same incremental path as ingest.

Owns the metrics (adjusted Rand index, pairwise and B-cubed precision/recall/F1)
and ``evaluate()``, which replays a labelled JSONL file through
``Deduplicator.place`` in time order. The datasets themselves (reading, writing,
``syndicate()``) are in ``datasets.py``. Knows nothing of feeds or storage.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from newsfold.dedup import DedupDoc, Deduplicator, Sketch, lsh_params
from newsfold.dedup.order import placement_order
from newsfold.evaluation.datasets import (
    TRANSFORMS,
    DatasetError,
    Record,
    distinct,
    plain_text,
    read_dataset,
    syndicate,
    write_dataset,
)
from newsfold.normalise.language import article_language
from newsfold.normalise.template import FeedTemplate

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

    from newsfold.config import DedupSettings
    from newsfold.types import Placement


@dataclass(frozen=True, slots=True)
class Scores:
    """Agreement between a predicted and a gold clustering of the same items."""

    ari: float
    pair_precision: float
    pair_recall: float
    pair_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    n_docs: int
    n_clusters: int  # predicted
    n_gold_clusters: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> Scores:
    """Compare two labelings of the same items (position ``i`` is one item).

    Pairwise scores count item pairs put together; a clustering with no
    predicted (or gold) pairs has precision (recall) 1.0 by convention, since
    it made no wrong merge (missed no merge).
    """
    if len(gold) != len(pred):
        raise ValueError("gold and pred must label the same items")
    n = len(gold)
    both = Counter(zip(gold, pred, strict=True))
    gold_sizes = Counter(gold)
    pred_sizes = Counter(pred)
    same_both = sum(_pairs(c) for c in both.values())
    same_gold = sum(_pairs(c) for c in gold_sizes.values())
    same_pred = sum(_pairs(c) for c in pred_sizes.values())
    precision = same_both / same_pred if same_pred else 1.0
    recall = same_both / same_gold if same_gold else 1.0

    # Hubert & Arabie's adjusted Rand index from the contingency table.
    total = _pairs(n)
    expected = same_gold * same_pred / total if total else 0.0
    maximum = (same_gold + same_pred) / 2
    ari = 1.0 if maximum == expected else (same_both - expected) / (maximum - expected)

    # B-cubed (Bagga & Baldwin 1998): per item, the share of its predicted
    # cluster that shares its gold label, and vice versa, averaged over items.
    b_precision = sum(c * c / pred_sizes[p] for (_, p), c in both.items()) / n if n else 1.0
    b_recall = sum(c * c / gold_sizes[g] for (g, _), c in both.items()) / n if n else 1.0
    return Scores(
        ari=ari,
        pair_precision=precision,
        pair_recall=recall,
        pair_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        n_docs=n,
        n_clusters=len(pred_sizes),
        n_gold_clusters=len(gold_sizes),
    )


def group(labels: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    out: dict[Hashable, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        out[label].append(i)
    return out


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def to_docs(records: Sequence[Record]) -> tuple[list[DedupDoc], str]:
    """DedupDocs in the order ingest would place them, and which clock ordered them.

    With a date on every record, the clock is publication time (each record's
    story time, as ingest gives a credible date) and the documents are put in
    ``placement_order``, the order ingest places a poll's new articles in.
    Otherwise (ECB+ dates only some documents) the file order is the arrival
    order and each document arrives one second after the previous, all in one
    window.

    Each ``source`` is one feed, as if each were subscribed and fetched once:
    its template is learned from all its records, then left out of each
    (``FeedTemplate``), and its own items meet the same-feed rule. Records
    without a source belong to no feed.
    """
    dated = all(r.published is not None for r in records)
    feeds: dict[str, int] = {}
    texts = [plain_text(r.text) for r in records]
    templates: dict[int, FeedTemplate] = {}
    for r, text in zip(records, texts, strict=True):
        if r.source:
            feed = feeds.setdefault(r.source, len(feeds) + 1)
            templates.setdefault(feed, FeedTemplate()).observe(text)
    docs = []
    for n, (r, text) in enumerate(zip(records, texts, strict=True)):
        feed = feeds.get(r.source or "", 0)
        title = plain_text(r.title)
        # Ingest identifies the language before the feed's template is left out (the
        # template is in the feed's language too, and it lengthens a short item's sample).
        lang = r.language or article_language(title, text)
        if feed:
            text = templates[feed].strip(text)  # noqa: PLW2901 - the text compared
        when = r.published if dated and r.published else _EPOCH + timedelta(seconds=n)
        digest = hashlib.sha256(" ".join((text or r.title).split()).encode()).hexdigest()
        docs.append(
            DedupDoc(
                article_id=n + 1,
                feed_id=feed,
                published=when,
                title=title,
                text=text,
                url=r.url,
                content_hash=digest,
                language=lang,
            )
        )
    return [docs[i] for i in placement_order(docs)], "published" if dated else "arrival"


@dataclass(frozen=True, slots=True)
class EvalResult:
    scores: Scores
    level: str
    docs_per_s: float
    clock: str
    placements: tuple[Placement, ...]  # the one pass, before consolidation
    workers: int = 0  # processes sketching beside the one placing
    stories: Mapping[int, int] = field(default_factory=dict)  # article → story, consolidated

    def to_json(self) -> dict[str, float | int | str]:
        s = self.scores
        return {
            "ari": s.ari,
            "pair_precision": s.pair_precision,
            "pair_recall": s.pair_recall,
            "pair_f1": s.pair_f1,
            "bcubed_precision": s.bcubed_precision,
            "bcubed_recall": s.bcubed_recall,
            "bcubed_f1": s.bcubed_f1,
            "n_docs": s.n_docs,
            "n_clusters": s.n_clusters,
            "n_gold_clusters": s.n_gold_clusters,
            "docs_per_s": self.docs_per_s,
            "level": self.level,
            "clock": self.clock,
            "workers": self.workers,
        }


_CHUNK = 32  # documents per sketching task


def replay(
    docs: Sequence[DedupDoc],
    settings: DedupSettings,
    *,
    workers: int = 0,
    on_placed: Callable[[int], None] | None = None,
    dedup: Deduplicator | None = None,
) -> list[Placement]:
    """The ingest path: sketch, then place one by one in time order.

    As in ingest, sketching (pure, per document) can run in ``workers`` other
    processes while this one places: the placements are the same either way.
    ``on_placed`` is told how many documents are placed after each chunk.
    The placements are one pass; ``consolidated`` gives the stories ingest stores.
    """
    dedup = Deduplicator(settings) if dedup is None else dedup
    placements: list[Placement] = []
    for chunk, sketches in _sketched(docs, settings, dedup, workers):
        placements.extend(dedup.place(d, s) for d, s in zip(chunk, sketches, strict=True))
        if on_placed is not None:
            on_placed(len(placements))
    return placements


def consolidated(dedup: Deduplicator, placements: Sequence[Placement]) -> dict[int, int]:
    """Each placed article's story once the batch is consolidated, as ingest stores it.

    A labelled set is one batch: its stories are the partition of the whole
    set (``Deduplicator.consolidate``), whatever order it was placed in.
    """
    alias: dict[int, int] = {}
    used: set[int] = set()
    for p in placements:
        used.add(p.story.cluster_id)
        for old in p.merged_stories:
            alias[old] = p.story.cluster_id
            used.add(old)
    dedup.consolidate([p.article_id for p in placements], lambda a: a not in used)

    def resolve(story_id: int) -> int:
        while story_id in alias:
            story_id = alias[story_id]
        return story_id

    out = {}
    for p in placements:
        now = dedup.stories.docs.story_of(p.article_id)
        out[p.article_id] = resolve(p.story.cluster_id) if now is None else now
    return out


def _sketched(
    docs: Sequence[DedupDoc], settings: DedupSettings, dedup: Deduplicator, workers: int
) -> Iterator[tuple[Sequence[DedupDoc], list[Sketch]]]:
    """Each chunk of ``docs`` with its sketches, in order."""
    chunks = [docs[i : i + _CHUNK] for i in range(0, len(docs), _CHUNK)]
    # Forking is quick (the children inherit the loaded modules and the word
    # caches) but safe only from a single-threaded process: otherwise, sketch here.
    if workers < 1 or len(chunks) < 2 or threading.active_count() > 1 or os.name != "posix":
        for chunk in chunks:
            yield chunk, dedup.sketch_many(chunk)
        return
    global _forked  # noqa: PLW0603 - what the forked workers read, instead of pickled documents
    _forked = (chunks, dedup)
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {i: pool.submit(_sketch_chunk, i) for i in range(1, len(chunks))}
            clock = time.perf_counter()
            done = {0: dedup.sketch_many(chunks[0])}  # placing starts without waiting
            sketch_s = time.perf_counter() - clock  # one chunk, sketched here
            placing_s = 0.0  # the caller's time placing chunks so far
            tail = len(chunks) - 1
            for i, chunk in enumerate(chunks):
                # While the workers, with the chunks they have yet to finish, would
                # end after this process has placed all the rest, sketch here from
                # the end of the queue instead of waiting.
                place_s = placing_s / i if i else sketch_s
                while i not in done and tail > i and not futures[i].done():
                    # Workers take chunks in order, so about none after i is finished yet.
                    behind = tail - i + 1
                    if behind * sketch_s / workers <= (len(chunks) - i) * place_s + sketch_s:
                        break
                    if futures[tail].cancel():
                        done[tail] = dedup.sketch_many(chunks[tail])
                    tail -= 1
                sketches = done.pop(i) if i in done else futures[i].result()
                clock = time.perf_counter()
                yield chunk, sketches
                placing_s += time.perf_counter() - clock
    finally:
        _forked = None


# The chunks and a sketcher, set before the workers fork: they inherit both.
_forked: tuple[list[Sequence[DedupDoc]], Deduplicator] | None = None


def _sketch_chunk(i: int) -> list[Sketch]:
    assert _forked is not None, "not a forked worker"
    chunks, dedup = _forked
    return dedup.sketch_many(chunks[i])


def evaluate(
    records: Sequence[Record],
    settings: DedupSettings,
    level: str = "stories",
    *,
    workers: int = 0,
    on_placed: Callable[[int], None] | None = None,
) -> EvalResult:
    if level not in ("copies", "stories"):
        raise ValueError(f"level must be copies or stories, not {level!r}")
    docs, clock = to_docs(records)
    lsh_params(settings)  # start-up work a running service has done long before (cached)
    started = time.perf_counter()
    dedup = Deduplicator(settings)
    placements = replay(docs, settings, workers=workers, on_placed=on_placed, dedup=dedup)
    stories = consolidated(dedup, placements)
    elapsed = time.perf_counter() - started
    pred_by_article = {
        p.article_id: p.copy.cluster_id if level == "copies" else stories[p.article_id]
        for p in placements
    }
    gold = [r.cluster for r in records]
    pred = [pred_by_article[i + 1] for i in range(len(records))]
    rate = len(docs) / elapsed if elapsed > 0 else float("inf")
    return EvalResult(score(gold, pred), level, rate, clock, tuple(placements), workers, stories)


__all__ = [
    "TRANSFORMS",
    "DatasetError",
    "EvalResult",
    "Record",
    "Scores",
    "consolidated",
    "distinct",
    "evaluate",
    "group",
    "read_dataset",
    "replay",
    "score",
    "syndicate",
    "to_docs",
    "write_dataset",
]
