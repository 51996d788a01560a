"""Exact keys: a document's content hash and URL as 64-bit keys (tier 0).

Two documents sharing either are the same article, whatever their text.
"""

from __future__ import annotations

import hashlib
import re
from itertools import compress
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _url_key(kind: bytes, value: str) -> int:
    return int.from_bytes(hashlib.blake2b(kind + value.encode(), digest_size=8).digest(), "little")


# Content hashes are digests of the text, which nobody can choose, so their
# exact key is a fast fold that a rebuild computes for all of them at once
# (8 bytes a step, murmur3's 64-bit finaliser between steps). URLs are chosen
# by whoever publishes them and keep a cryptographic hash (``_url_key``).
_HASH_SEED = 0x9E3779B97F4A7C15
_MASK64 = 0xFFFFFFFFFFFFFFFF
_FMIX = (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53)


def hash_key(content_hash: str) -> int:
    data = content_hash.encode()
    h = _HASH_SEED ^ len(data)
    for at in range(0, len(data), 8):
        h ^= int.from_bytes(data[at : at + 8], "little")
        for m in _FMIX:
            h ^= h >> 33
            h = h * m & _MASK64
        h ^= h >> 33
    return h


def hash_keys(values: list[str]) -> NDArray[np.uint64]:
    """``hash_key`` of each value; values of one length fold together, as a matrix."""
    n = len(values)
    lengths = np.fromiter(map(len, values), np.int64, n)
    data = "".join(values).encode()
    if len(data) != int(lengths.sum()):  # not ASCII: one by one
        return np.fromiter(map(hash_key, values), np.uint64, n)
    out = np.empty(n, np.uint64)
    sizes = np.unique(lengths).tolist()
    for size in sizes:
        rows: slice | NDArray[np.intp] = slice(None)
        count = n
        if len(sizes) > 1:
            rows = np.flatnonzero(lengths == size)
            count = len(rows)
            data = "".join([values[i] for i in rows.tolist()]).encode()
        raw = np.frombuffer(data, np.uint8).reshape(count, size)
        width = -(-size // 8)
        if size % 8:
            raw = np.concatenate((raw, np.zeros((len(raw), 8 * width - size), np.uint8)), axis=1)
        words = raw.view("<u8")
        h = np.full(len(words), _HASH_SEED ^ size, np.uint64)
        for j in range(width):
            h ^= words[:, j]
            for m in _FMIX:
                h ^= h >> np.uint64(33)
                h *= np.uint64(m)
            h ^= h >> np.uint64(33)
        out[rows] = h
    return out


def exact_keys(content_hash: str, url: str | None, card: int) -> list[int]:
    """A document's exact keys: its content hash's (if it has words), then its URL's."""
    # A body with no words hashes like every other empty body: not evidence.
    keys = [hash_key(content_hash)] if card else []
    if url:
        keys.append(_url_key(b"u:", url))
    return keys


_TITLE_WORD = re.compile(r"\w+")


def _title_words(title: str) -> str:
    return " ".join(_TITLE_WORD.findall(title.casefold()))


def title_key(title: str) -> int:
    """A title's key: its words, case-folded (0 for a title with no words)."""
    words = _title_words(title)
    return hash_key(words) if words else 0


HEADLINE_WORDS = 5  # a title this long is specific enough to name one report


def headline_key(title: str) -> int:
    """``title_key`` of a title of at least ``HEADLINE_WORDS`` words, else 0."""
    return title_keys(title)[1]


def title_keys(title: str) -> tuple[int, int]:
    """``title_key`` and ``headline_key`` of one title, its words hashed once."""
    words = _title_words(title)
    if not words:
        return 0, 0
    key = hash_key(words)
    return key, key if words.count(" ") + 1 >= HEADLINE_WORDS else 0


def title_keys_many(titles: list[str]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """``title_key`` and ``headline_key`` of many titles, hashed together."""
    words = [_title_words(t) for t in titles]
    keys = hash_keys(words)
    keys[np.fromiter(map(bool, words), np.bool_, len(words)) == 0] = 0
    long = np.fromiter((w.count(" ") + 1 >= HEADLINE_WORDS for w in words), np.bool_, len(words))
    return keys, np.where(long, keys, np.uint64(0))


def content_key(content_hash: str, card: int, title: int, min_shingles: int) -> str:
    """What the exact tier hashes: the content hash, and for a text too short to be
    evidence on its own (fewer than ``min_shingles`` shingles: a feed's one-line
    template, a user name) the title's key with it."""
    return content_hash if card >= min_shingles else f"{content_hash}:{title:x}"


def exact_keys_many(
    content_hashes: list[str], urls: list[str | None], cards: NDArray[np.uint32]
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """``exact_keys`` of many documents end to end, and how many each has."""
    has_hash = cards > 0
    hashes = content_hashes
    if not has_hash.all():
        hashes = list(compress(hashes, has_hash.tolist()))
    has_url = np.fromiter(map(bool, urls), np.bool_, len(urls))
    blake = hashlib.blake2b
    url_keys = np.fromiter(
        (blake(b"u:" + u.encode(), digest_size=8).digest() for u in urls if u),
        "S8",
        int(has_url.sum()),
    ).view("<u8")
    # Each document's keys in ``exact_keys`` order: its hash key, then its URL key.
    per_doc = has_hash.astype(np.int64) + has_url
    first = np.cumsum(per_doc) - per_doc
    keys = np.empty(int(per_doc.sum()), np.uint64)
    keys[first[has_hash]] = hash_keys(hashes)
    keys[(first + has_hash)[has_url]] = url_keys
    return keys, per_doc


__all__ = [
    "content_key",
    "exact_keys",
    "exact_keys_many",
    "hash_key",
    "hash_keys",
    "headline_key",
    "title_key",
    "title_keys",
    "title_keys_many",
]
