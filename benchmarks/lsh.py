"""LSH query latency, RAM per indexed document and index rebuild speed at scale.

Indexes ``n`` synthetic ``StoredDoc``s (``Deduplicator.load``) and then
places fresh documents (``Deduplicator.place``), half of them near-copies of
indexed ones so the LSH buckets hold real candidates. Signatures are random
with a share of near-copies (values replaced at random, like edited text);
story sketches draw terms from a Zipfian term pool, as text does. datasketch's
``MinHashLSH`` with the same bands/rows is measured on the same signatures.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from datasketch import MinHashLSH
from tests.support.reference import to_lean

from benchmarks._common import percentile, settled_rss
from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator, Sketch, StoredDoc, minhash, stories

if TYPE_CHECKING:
    from numpy.typing import NDArray

COPY_SHARE = 0.1
EDIT_SHARE = 0.2  # signature values replaced in a near-copy (Jaccard ≈ 0.67)
TERM_POOL = 200_000
STORY_TERMS = 64
_NO_LEAD: NDArray[np.uint32] = np.empty(0, np.uint32)
NAME_SHARE = 0.15  # terms flagged as names (capitalised mid-sentence)


def _signatures(rng: np.random.Generator, n: int, num_perm: int) -> NDArray[np.uint32]:
    sigs = rng.integers(0, 2**32, size=(n, num_perm), dtype=np.uint32)
    copies = np.flatnonzero(rng.random(n) < COPY_SHARE)
    copies = copies[copies > 0]
    sources = (rng.random(len(copies)) * copies).astype(np.int64)  # an earlier row
    edited = rng.random((len(copies), num_perm)) < EDIT_SHARE
    sigs[copies] = np.where(edited, sigs[copies], sigs[sources])
    return sigs


def _story_blobs(rng: np.random.Generator, n: int) -> list[bytes]:
    ranks = np.arange(1, TERM_POOL + 1, dtype=np.float64)
    p = 1.0 / ranks
    p /= p.sum()
    pool = rng.integers(0, 2**32, size=TERM_POOL, dtype=np.uint32)
    drawn = rng.choice(TERM_POOL, size=(n, STORY_TERMS), p=p)
    weights = (1.0 + rng.random((n, STORY_TERMS)) * 3).astype(np.float32)
    names = rng.random((n, STORY_TERMS)) < NAME_SHARE
    out = []
    for i in range(n):
        terms = np.unique(pool[drawn[i]])
        out.append(stories.encode(terms, weights[i, : len(terms)], names[i, : len(terms)]))
    return out


def synthetic_docs(n: int, settings: DedupSettings, *, seed: int = 8) -> list[StoredDoc]:
    rng = np.random.default_rng(seed)
    sigs = _signatures(rng, n, settings.num_perm)
    cards = rng.integers(300, 800, size=n)
    blobs = _story_blobs(rng, n)
    start = datetime.now(UTC) - timedelta(days=settings.window_days)
    step = settings.window_days * 86400 / max(n, 1)
    return [
        StoredDoc(
            article_id=i + 1,
            feed_id=i % 1000 + 1,
            published=start + timedelta(seconds=i * step),
            url=f"https://outlet{i % 1000}.example/{i}",
            content_hash=f"{i:064x}",
            language="en",
            signature=minhash.encode(sigs[i], int(cards[i])),
            story=blobs[i],
            copy_id=i + 1,
            story_id=i + 1,
        )
        for i in range(n)
    ]


def _queries(
    docs: list[StoredDoc], count: int, settings: DedupSettings, seed: int
) -> list[tuple[DedupDoc, Sketch]]:
    rng = np.random.default_rng(seed + 1)
    fresh = _signatures(rng, count, settings.num_perm)
    blobs = _story_blobs(rng, count)
    last = docs[-1].published if docs else datetime.now(UTC)
    out = []
    for q in range(count):
        sig = fresh[q]
        if q % 2 == 0 and docs:  # a near-copy of an indexed document
            src, _ = minhash.decode(docs[int(rng.integers(len(docs)))].signature)
            keep = rng.random(settings.num_perm) >= EDIT_SHARE
            sig = np.where(keep, src, sig).astype(np.uint32)
        aid = 10_000_000_000 + q
        doc = DedupDoc(aid, 1, last + timedelta(seconds=q + 1), "", "", None, f"q{q}", "en")
        out.append((doc, Sketch(minhash.encode(sig, 500), blobs[q])))
    return out


def run(n: int, *, queries: int = 2000, datasketch_max: int = 100_000) -> dict[str, Any]:
    settings = DedupSettings()
    docs = synthetic_docs(n, settings)
    dedup = Deduplicator(settings)
    rss0 = settled_rss()
    t0 = time.perf_counter()
    loaded = dedup.load(docs)
    load_s = time.perf_counter() - t0
    rss1 = settled_rss()
    qs = _queries(docs, queries, settings, seed=n)
    # Wall and CPU time per call: on a shared machine a wall-clock p99 mostly
    # measures other processes' time slices; the thread's CPU time does not.
    place_ms, near_ms, place_cpu, near_cpu = [], [], [], []
    for doc, sketch in qs:
        sig, card = minhash.decode(sketch.signature)
        t1, c1 = time.perf_counter(), time.thread_time()
        dedup.copies.near(sig, card, 1, _NO_LEAD)  # LSH candidates + verification only
        near_ms.append(1000 * (time.perf_counter() - t1))
        near_cpu.append(1000 * (time.thread_time() - c1))
        t1, c1 = time.perf_counter(), time.thread_time()
        dedup.place(doc, sketch)
        place_ms.append(1000 * (time.perf_counter() - t1))
        place_cpu.append(1000 * (time.thread_time() - c1))
    result: dict[str, Any] = {
        "docs": loaded,
        "rebuild_s": load_s,
        "rebuild_docs_per_s": loaded / load_s if load_s else 0.0,
        "place_p50_ms": percentile(place_ms, 50),
        "place_p99_ms": percentile(place_ms, 99),
        "lsh_query_p50_ms": percentile(near_ms, 50),
        "lsh_query_p99_ms": percentile(near_ms, 99),
        "place_cpu_p50_ms": percentile(place_cpu, 50),
        "place_cpu_p99_ms": percentile(place_cpu, 99),
        "lsh_query_cpu_p50_ms": percentile(near_cpu, 50),
        "lsh_query_cpu_p99_ms": percentile(near_cpu, 99),
        "rss_bytes_per_doc": (rss1 - rss0) / max(loaded, 1),
        "copy_index_bytes_per_doc": dedup.copies.nbytes() / max(loaded, 1),
    }
    del dedup
    gc.collect()
    if n <= datasketch_max:
        result["datasketch"] = _datasketch(docs, qs, settings)
    return result


def _datasketch(
    docs: list[StoredDoc], qs: list[tuple[DedupDoc, Sketch]], settings: DedupSettings
) -> dict[str, Any]:
    """datasketch's MinHashLSH over the same signatures (same bands × rows)."""
    from newsfold.dedup import lsh_params

    leans = [to_lean(minhash.decode(d.signature)[0]) for d in docs]
    rss0 = settled_rss()
    lsh = MinHashLSH(num_perm=settings.num_perm, params=lsh_params(settings))
    t0 = time.perf_counter()
    with lsh.insertion_session() as session:
        for d, lean in zip(docs, leans, strict=True):
            session.insert(d.article_id, lean, check_duplication=False)
    insert_s = time.perf_counter() - t0
    rss1 = settled_rss()
    ms, cpu = [], []
    for _, sketch in qs:
        lean = to_lean(minhash.decode(sketch.signature)[0])
        t1, c1 = time.perf_counter(), time.thread_time()
        lsh.query(lean)
        ms.append(1000 * (time.perf_counter() - t1))
        cpu.append(1000 * (time.thread_time() - c1))
    return {
        "insert_docs_per_s": len(docs) / insert_s if insert_s else 0.0,
        "query_p50_ms": percentile(ms, 50),
        "query_p99_ms": percentile(ms, 99),
        "query_cpu_p99_ms": percentile(cpu, 99),
        "rss_bytes_per_doc": (rss1 - rss0) / max(len(docs), 1),
    }
