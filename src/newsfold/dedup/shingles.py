"""Text → hashed features: word shingles for copies (story terms: ``terms``).

Everything here is deterministic across processes and machines (no salted
``hash()``), because signatures are stored and compared after restarts.
Word hashes are cached: news vocabulary is Zipfian, so a bounded cache
absorbs almost every lookup and the per-token cost is one dict hit.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from newsfold.words import word_runs

if TYPE_CHECKING:
    from numpy.typing import NDArray

U64 = np.uint64
# Odd per-position multipliers: the shingle (w0, w1, w2) hashes to
# fmix64(Σ wj·Cj) >> 32, so order matters and the combination is one
# vectorised multiply-add per position.
POSITION_MULTIPLIERS = (
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53,
    0x27D4EB2F165667C5,
    0x94D049BB133111EB,
)
MAX_SHINGLE = len(POSITION_MULTIPLIERS)

_CACHE_LIMIT = 1 << 18
_word_cache: dict[str, int] = {}


def words(text: str) -> list[str]:
    """Lower-cased word tokens: punctuation, case and spacing edits do not break shingles."""
    return word_runs(text.lower())


def word_hash(word: str) -> int:
    cached = _word_cache.get(word)
    if cached is not None:
        return cached
    value = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    if len(_word_cache) >= _CACHE_LIMIT:
        _word_cache.clear()  # bounded memory; a refill costs a few ms
    _word_cache[word] = value
    return value


def _fmix64(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    h = h ^ (h >> U64(33))
    h = h * U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> U64(33))
    h = h * U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> U64(33))


def shingle_hashes(tokens: list[str], size: int) -> NDArray[np.uint32]:
    """Distinct 32-bit hashes of the word ``size``-grams of ``tokens``.

    A text shorter than ``size`` words is one shingle of all its words, so a
    two-word text still has a signature; an empty text has none.
    """
    return shingle_hashes_of(token_hashes(tokens), size)


def token_hashes(tokens: list[str]) -> NDArray[np.uint64]:
    """``word_hash`` of each token (one dict hit per token once the cache is warm)."""
    cache = _word_cache
    try:
        return np.fromiter(map(cache.__getitem__, tokens), np.uint64, len(tokens))
    except KeyError:
        return np.array([cache[t] if t in cache else word_hash(t) for t in tokens], np.uint64)


def shingle_hashes_of(w: NDArray[np.uint64], size: int) -> NDArray[np.uint32]:
    """``shingle_hashes`` given the tokens' ``token_hashes``."""
    if not len(w):
        return np.empty(0, dtype=np.uint32)
    span = min(size, len(w))
    n = len(w) - span + 1
    with np.errstate(over="ignore"):
        acc = w[0:n] * U64(POSITION_MULTIPLIERS[0])
        for j in range(1, span):
            acc = acc + w[j : j + n] * U64(POSITION_MULTIPLIERS[j])
        mixed = _fmix64(acc)
    return np.unique((mixed >> U64(32)).astype(np.uint32))
