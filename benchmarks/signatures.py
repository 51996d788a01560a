"""MinHash signature throughput: newsfold's vectorised path vs datasketch's default, same run.

The reference is datasketch's documented usage: one ``MinHash(num_perm=128)``
per document and ``update`` once per word 3-shingle. The fast path must give
the same signatures when datasketch is handed the same shingle hash
(``shingle_hash_bytes``); that is checked here on a sample and reported.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from datasketch import MinHash
from tests.support.reference import shingle_hash_bytes, shingle_strings

from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator, minhash
from newsfold.dedup.shingles import shingle_hashes, words

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from benchmarks.corpus import Corpus

REFERENCE_DOCS = 400  # datasketch's default path is slow: a sample gives its rate


def run(corpus: Corpus) -> dict[str, Any]:
    settings = DedupSettings()
    k, num_perm = settings.shingle_size, settings.num_perm
    now = datetime.now(UTC)
    docs = [
        DedupDoc(i, it.feed, now, it.title, it.body, it.link, str(i), "en")
        for i, it in enumerate(corpus.items)
    ]
    texts = [d.text for d in docs]
    dedup = Deduplicator(settings)

    sample = texts[:REFERENCE_DOCS]
    t0, c0 = time.perf_counter(), time.thread_time()
    for text in sample:
        m = MinHash(num_perm=num_perm)
        for shingle in shingle_strings(words(text), k):
            m.update(shingle)
    ref_rate = len(sample) / (time.perf_counter() - t0)
    ref_cpu_rate = len(sample) / (time.thread_time() - c0)

    t0 = time.perf_counter()
    MinHash.bulk([shingle_strings(words(t), k) for t in sample], num_perm=num_perm)
    bulk_rate = len(sample) / (time.perf_counter() - t0)

    t0, c0 = time.perf_counter(), time.thread_time()
    sets = [shingle_hashes(words(t), k) for t in texts]
    minhash.signatures(sets, num_perm)
    fast_rate = len(texts) / (time.perf_counter() - t0)
    fast_cpu_rate = len(texts) / (time.thread_time() - c0)

    t0 = time.perf_counter()
    dedup.sketch_many(docs)
    sketch_rate = len(docs) / (time.perf_counter() - t0)

    identical = all(
        np.array_equal(
            minhash.signature(shingle_hashes(words(t), k), num_perm),
            _reference(t, k, num_perm),
        )
        for t in texts[:20]
    )
    return {
        "docs": len(texts),
        "datasketch_default_docs_per_s": ref_rate,
        "datasketch_bulk_docs_per_s": bulk_rate,
        "signature_docs_per_s": fast_rate,
        "sketch_docs_per_s": sketch_rate,  # signature + story-terms sketch (what the pipeline runs)
        "ratio_signature": fast_rate / ref_rate,
        # The same ratio in CPU time of this thread: stable on a shared machine.
        "ratio_signature_cpu": fast_cpu_rate / ref_cpu_rate,
        "ratio_sketch": sketch_rate / ref_rate,
        "identical_to_datasketch": identical,
    }


def _reference(text: str, k: int, num_perm: int) -> NDArray[np.uint64]:
    m = MinHash(num_perm=num_perm, hashfunc=shingle_hash_bytes)
    for shingle in set(shingle_strings(words(text), k)):
        m.update(shingle)
    values: NDArray[np.uint64] = m.hashvalues
    return values
