"""Tier 2: reports of the same event from different outlets, joined into stories.

Each document carries a sketch of its strongest content terms (hashed, with
title and name boosts) that needs no corpus statistics, so it is computed
once and stored. Corpus statistics are applied at comparison time: document
frequencies over the documents in the window (so a rebuild from stored
sketches recomputes them exactly) turn the bags into TF-IDF vectors. A story
is the sum of its members' bags (integer fixed point, so the sum does not
depend on the order of additions); a document joins the story whose
TF-IDF cosine is highest, if it clears the threshold. Candidates come from
an inverted index over the document's most distinctive terms.

Storage is columnar where it is bulky: every document's bag lives in flat
arrays (uint32 terms, uint16 weights, name flags, int32 df slots) indexed by
row; a rebuild keeps its stories as rows too (a one-member story has no
vector of its own: it reads its member's), and its postings as sorted
arrays that ``add`` extends through a small overlay instead of unpacking.
Only stories and postings that later placements change become objects.
"""

from __future__ import annotations

import bisect
import struct
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from newsfold.dedup.index import IdMap, stable_argsort

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from numpy.typing import NDArray

FIXED = 256  # weights are stored and summed as integers in 1/256 units
_COUNT = struct.Struct("<H")
_MIN_GARBAGE = 4096  # evicted term positions kept before the document columns are compacted
_CHUNK = 1 << 20  # entries per block where a rebuild would otherwise index with a huge temporary
_DECODE_BYTES = 1 << 22  # stored bytes parsed per block by a rebuild: the block stays in cache


Bag = tuple["NDArray[np.uint32]", "NDArray[np.int64]", "NDArray[np.int64]"]
# Many bags end to end: terms, weights, name weights, and each bag's length.
FlatBags = tuple[
    "NDArray[np.uint32]", "NDArray[np.int64]", "NDArray[np.int64]", "NDArray[np.int64]"
]
# The same as stored: terms, uint16 weights, name flags, and each bag's length.
Columns = tuple[
    "NDArray[np.uint32]", "NDArray[np.uint16]", "NDArray[np.bool_]", "NDArray[np.int64]"
]


def encode(
    terms: NDArray[np.uint32], weights: NDArray[np.float32], names: NDArray[np.bool_]
) -> bytes:
    """count, uint32 term hashes, uint16 fixed-point weights, then a name bit per term."""
    fixed = np.clip(np.rint(weights * FIXED), 1, 0xFFFF).astype("<u2")
    flags = np.packbits(names.astype(np.bool_), bitorder="little")
    return (
        _COUNT.pack(len(terms)) + terms.astype("<u4").tobytes() + fixed.tobytes() + flags.tobytes()
    )


def decode(blob: bytes) -> Bag:
    """(terms, weights, name weights): the weights of the terms flagged as names, else 0."""
    (n,) = _COUNT.unpack_from(blob)
    terms = np.frombuffer(blob, dtype="<u4", count=n, offset=_COUNT.size).astype(np.uint32)
    fixed = np.frombuffer(blob, dtype="<u2", count=n, offset=_COUNT.size + 4 * n)
    weights = fixed.astype(np.int64)
    start = _COUNT.size + 6 * n
    if len(blob) < start + (n + 7) // 8:  # a first-version blob: no name flags
        return terms, weights, np.zeros(n, np.int64)
    bits = np.frombuffer(blob, dtype=np.uint8, count=(n + 7) // 8, offset=start)
    flags = np.unpackbits(bits, count=n, bitorder="little").astype(bool)
    return terms, weights, np.where(flags, weights, 0)


def decode_many(blobs: list[bytes]) -> FlatBags:
    """``decode`` of many blobs at once."""
    terms, fixed, flags, counts = decode_columns(blobs)
    weights = fixed.astype(np.int64)
    return terms, weights, np.where(flags, weights, 0), counts


def decode_columns(blobs: list[bytes]) -> Columns:
    """``decode_many`` in the stored widths (the rebuild path: a quarter of the bytes)."""
    if not blobs:
        none = np.empty(0, np.int64)
        return np.empty(0, np.uint32), np.empty(0, np.uint16), np.empty(0, np.bool_), none
    fast = _decode_by_length(blobs)
    if fast is not None:
        return fast
    counts_list = [_COUNT.unpack_from(b)[0] for b in blobs]
    # First-version blobs have no name flags: read them as "no names".
    blobs = [
        b if len(b) > _COUNT.size + 6 * c else b + bytes((c + 7) // 8)
        for b, c in zip(blobs, counts_list, strict=True)
    ]
    counts = np.array(counts_list, np.int64)
    spans = [(2, 2 + 4 * c, 2 + 6 * c) for c in counts_list]
    terms = np.frombuffer(
        b"".join([b[lo:mid] for b, (lo, mid, _) in zip(blobs, spans, strict=True)]), "<u4"
    ).astype(np.uint32)
    weights = np.frombuffer(
        b"".join([b[mid:hi] for b, (_, mid, hi) in zip(blobs, spans, strict=True)]), "<u2"
    ).astype(np.uint16)
    flag_bytes = np.frombuffer(
        b"".join([b[hi:] for b, (_, _, hi) in zip(blobs, spans, strict=True)]), np.uint8
    )
    bits = np.unpackbits(flag_bytes, bitorder="little").astype(bool)
    nbytes = (counts + 7) // 8
    first_bit = np.repeat(8 * (np.cumsum(nbytes) - nbytes), counts)
    pos = np.arange(len(terms)) - np.repeat(np.cumsum(counts) - counts, counts)
    return terms, weights, bits[first_bit + pos], counts


def _decode_by_length(blobs: list[bytes]) -> Columns | None:
    """``decode_many`` parsing blobs of one length together as the rows of a
    byte matrix; None if any blob is of the first version (no name flags)."""
    n = len(blobs)
    lengths = np.fromiter(map(len, blobs), np.int64, n)
    counts = np.empty(n, np.int64)
    parts = []
    for size in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == size)
        raw = np.frombuffer(b"".join([blobs[i] for i in rows.tolist()]), np.uint8)
        raw = raw.reshape(len(rows), size)
        count = raw[:, 0].astype(np.int64) | (raw[:, 1].astype(np.int64) << 8)
        c = int(count[0])
        if size != _COUNT.size + 6 * c + (c + 7) // 8 or (count != c).any():
            return None
        counts[rows] = c
        parts.append((rows, c, raw))
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    terms = np.empty(total, np.uint32)
    weights = np.empty(total, np.uint16)
    flags = np.empty(total, np.bool_)
    for rows, c, raw in parts:
        if not c:
            continue
        at = (starts[rows][:, None] + np.arange(c)).ravel()
        lo, mid, hi = _COUNT.size, _COUNT.size + 4 * c, _COUNT.size + 6 * c
        terms[at] = np.ascontiguousarray(raw[:, lo:mid]).view("<u4").ravel()
        weights[at] = np.ascontiguousarray(raw[:, mid:hi]).view("<u2").ravel()
        bits = np.unpackbits(raw[:, hi:], axis=1, count=c, bitorder="little")
        flags[at] = bits.view(np.bool_).ravel()
    return terms, weights, flags, counts


def _counts_of(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each blob's term count as its length implies in the current layout
    (2 + 6c + ⌈c/8⌉ bytes), -1 where none does. The header still decides."""
    body = lengths - _COUNT.size
    c = body * 8 // 49  # 6c + ⌈c/8⌉ is ⌈49c/8⌉
    return np.where((body >= 0) & (6 * c + (c + 7) // 8 == body), c, -1)


def _decode_solo(
    blobs: list[bytes],
    counts: NDArray[np.int64],
    docs: _Docs,
    offset: NDArray[np.int64],
    keys: NDArray[np.uint64],
    *,
    story_of: NDArray[np.int64] | None,
) -> bool:
    """Decode current-layout blobs into the term columns of ``docs`` past its
    last used position (each bag's offset from there into ``offset``) and give
    ``keys`` each term's ``term << 32 | story``, where a document's story is
    ``story_of[document]`` (None: the document).

    Bags of one size are parsed together as the rows of a byte matrix, a block
    at a time, and stored contiguously: no temporary the size of the whole,
    and no scattered writes. False if a blob is not of the current layout
    (its header disagrees with its length) or a bag is not sorted and unique.
    """
    u0 = docs.used
    terms, weights = docs.terms[u0:], docs.weights[u0:]
    order = np.argsort(counts, kind="stable")
    sizes = counts[order]
    edges = np.flatnonzero(sizes[1:] != sizes[:-1]) + 1
    at = 0
    for group in np.split(order, edges):
        c = int(counts[group[0]])
        size = _COUNT.size + 6 * c + (c + 7) // 8
        lo, mid, hi = _COUNT.size, _COUNT.size + 4 * c, _COUNT.size + 6 * c
        step = max(1, _DECODE_BYTES // size)
        for b in range(0, len(group), step):
            rows = group[b : b + step]
            r, end = len(rows), at + len(rows) * c
            offset[rows] = at + c * np.arange(r)
            raw = np.frombuffer(b"".join([blobs[i] for i in rows.tolist()]), np.uint8)
            raw = raw.reshape(r, size)
            if ((raw[:, 0] | (raw[:, 1].astype(np.uint16) << 8)) != c).any():
                return False
            if not c:
                continue
            bag = np.ascontiguousarray(raw[:, lo:mid]).view("<u4")
            if c > 1 and not (bag[:, 1:] > bag[:, :-1]).all():
                return False
            terms[at:end] = bag.ravel()
            weights[at:end] = np.ascontiguousarray(raw[:, mid:hi]).view("<u2").ravel()
            bits_ = np.unpackbits(raw[:, hi:], axis=1, count=c, bitorder="little")
            docs.set_names(u0 + at, bits_.view(np.bool_).ravel())
            key = bag.astype(np.uint64)
            key <<= np.uint64(32)
            story = rows if story_of is None else story_of[rows]
            np.bitwise_or(key, story.astype(np.uint64)[:, None], out=keys[at:end].reshape(r, c))
            at = end
    return True


def _ranks_into(
    vocab: NDArray[np.uint32], terms: NDArray[np.uint32], out: NDArray[np.int32]
) -> None:
    """``out[i]``: the position of ``terms[i]`` in ``vocab`` (sorted, holding every term).

    A binary search per term would cost more than the rest of a rebuild, and
    scattering ranks from a sort is as slow: two direct tables, on a term's
    high and on its low bits, map a bucket holding a single vocabulary term
    to its position and so answer almost every term with one look-up each,
    written in order; a search answers the rest.
    """
    width = min(24, max(16, len(vocab).bit_length() + 4))  # buckets ≥ 16 × terms, up to 2²⁴
    shift, mask = np.uint32(32 - width), np.uint32((1 << width) - 1)
    tables = []
    for bucket in ((vocab >> shift).astype(np.intp), (vocab & mask).astype(np.intp)):
        table = np.full(1 << width, -1, np.int32)
        alone = np.bincount(bucket, minlength=1 << width)[bucket] == 1
        table[bucket[alone]] = np.flatnonzero(alone)
        tables.append(table)
    high, low = tables
    for lo in range(0, len(terms), _CHUNK):
        t = terms[lo : lo + _CHUNK]
        rank = high[t >> shift]
        miss = np.flatnonzero((rank < 0) | (vocab[rank] != t))
        if len(miss):
            tm = t[miss]
            found = low[tm & mask]
            bad = np.flatnonzero((found < 0) | (vocab[found] != tm))
            found[bad] = np.searchsorted(vocab, tm[bad])
            rank[miss] = found
        out[lo : lo + len(t)] = rank


@dataclass(slots=True)
class _Story:
    terms: NDArray[np.uint32]
    weights: NDArray[Any]  # integers: int64, or int32 in the rebuild's columns
    names: NDArray[Any]  # the members' weights of terms they use as names
    last_ts: float
    lang: int
    members: list[tuple[float, int]] = field(default_factory=list)  # (ts, article id), sorted
    slots: NDArray[Any] = field(default_factory=lambda: np.empty(0, np.int64))


@dataclass(frozen=True, slots=True)
class _Doc:
    """One indexed document, read from the columns (a copy: changing it changes nothing)."""

    story: int
    terms: NDArray[np.uint32]
    weights: NDArray[np.int64]
    names: NDArray[np.int64]
    ts: float
    slots: NDArray[np.int32]


class _Docs:
    """Per-document data in columns, one row per document, terms end to end.

    Rows are never moved while live; an evicted row's terms become garbage,
    compacted away once they outweigh the live ones. Weights are the
    sketch's uint16 fixed-point values, names one flag per term (a bit each:
    see ``names_at``), slots the terms' document-frequency slots (stable
    while the document is live).
    """

    __slots__ = (
        "_garbage",
        "flags",
        "length",
        "offset",
        "row_of",
        "rows",
        "slots",
        "story",
        "terms",
        "ts",
        "used",
        "weights",
    )

    def __init__(self) -> None:
        self.row_of = IdMap()  # article id → row
        self.rows = 0
        self.used = 0  # term positions used, live or garbage
        self._garbage = 0
        self.story: NDArray[np.int64] = np.zeros(64, np.int64)
        self.ts: NDArray[np.float64] = np.zeros(64, np.float64)
        self.offset: NDArray[np.int64] = np.zeros(64, np.int64)
        self.length: NDArray[np.int32] = np.zeros(64, np.int32)
        self.terms: NDArray[np.uint32] = np.zeros(1024, np.uint32)
        self.weights: NDArray[np.uint16] = np.zeros(1024, np.uint16)
        self.flags: NDArray[np.uint8] = np.zeros(1024 // 8, np.uint8)  # bit p: position p
        self.slots: NDArray[np.int32] = np.zeros(1024, np.int32)

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self.row_of

    def __getitem__(self, article_id: int) -> _Doc:
        row = self.row_of[article_id]
        lo, hi = self.span(row)
        weights = self.weights[lo:hi].astype(np.int64)
        return _Doc(
            int(self.story[row]),
            self.terms[lo:hi].copy(),
            weights,
            np.where(self.names_at(lo, hi), weights, 0),
            float(self.ts[row]),
            self.slots[lo:hi].copy(),
        )

    def span(self, row: int) -> tuple[int, int]:
        lo = int(self.offset[row])
        return lo, lo + int(self.length[row])

    def _reserve(self, rows: int, terms: int) -> None:
        self._grow(("story", "ts", "offset", "length"), self.rows, self.rows + rows)
        self._grow(("terms", "weights", "flags", "slots"), self.used, self.used + terms)

    def _grow(self, names: tuple[str, ...], used: int, needed: int) -> None:
        """Give the named columns room for ``needed`` entries (doubling), keeping ``used``."""
        if needed <= len(getattr(self, names[0])):
            return
        cap = max(2 * len(getattr(self, names[0])), needed)
        for name in names:
            old = getattr(self, name)
            bits = name == "flags"
            new = np.zeros((cap + 7) // 8 if bits else cap, old.dtype)
            kept = (used + 7) // 8 if bits else used
            new[:kept] = old[:kept]
            setattr(self, name, new)

    def names_at(self, lo: int, hi: int) -> NDArray[np.bool_]:
        """The name flags of term positions ``lo:hi``."""
        bits = np.unpackbits(self.flags[lo >> 3 : (hi + 7) >> 3], bitorder="little")
        return bits[lo & 7 : (lo & 7) + hi - lo].view(np.bool_)

    def set_names(self, at: int, flags: NDArray[np.bool_]) -> None:
        """Store the name flags of positions from ``at`` on (``at`` ≥ every flag kept:
        the bits past the last one in its byte are cleared)."""
        head = at & 7
        if head:
            kept = np.unpackbits(self.flags[at >> 3 : (at >> 3) + 1], bitorder="little")
            flags = np.concatenate((kept[:head].view(np.bool_), flags))
        packed = np.packbits(flags, bitorder="little")
        self.flags[at >> 3 : (at >> 3) + len(packed)] = packed

    def append(
        self,
        article_ids: list[int],
        story_ids: list[int],
        ts: list[float],
        flat: Columns,
        slots: NDArray[np.int32],
    ) -> None:
        """Add documents whose bags are ``flat`` (see ``decode_columns``), with their slots."""
        terms, weights, flags, counts = flat
        n, t = len(article_ids), len(terms)
        self._reserve(n, t)
        r0, r1, u0, u1 = self.rows, self.rows + n, self.used, self.used + t
        self.story[r0:r1] = story_ids
        self.ts[r0:r1] = ts
        self.length[r0:r1] = counts
        self.offset[r0:r1] = u0 + np.cumsum(counts) - counts
        self.terms[u0:u1] = terms
        self.weights[u0:u1] = weights
        self.set_names(u0, flags)
        self.slots[u0:u1] = slots
        self.rows, self.used = r1, u1
        self.row_of.bulk(np.asarray(article_ids, np.int64), np.arange(r0, r1, dtype=np.int32))

    def append_one(
        self,
        article_id: int,
        story_id: int,
        ts: float,
        bag: Bag,
        slots: NDArray[np.int64],
    ) -> None:
        """``append`` of one document (the placement path: no array arithmetic)."""
        terms, weights, names = bag
        t = len(terms)
        self._reserve(1, t)
        r, u0, u1 = self.rows, self.used, self.used + t
        self.story[r] = story_id
        self.ts[r] = ts
        self.length[r] = t
        self.offset[r] = u0
        self.terms[u0:u1] = terms
        self.weights[u0:u1] = weights
        self.set_names(u0, names != 0)
        self.slots[u0:u1] = slots
        self.rows, self.used = r + 1, u1
        self.row_of[article_id] = r

    def pop(self, article_id: int) -> _Doc | None:
        row = self.row_of.get(article_id)
        if row is None:
            return None
        doc = self[article_id]
        del self.row_of[article_id]
        self._garbage += len(doc.terms)
        if self._garbage > max(_MIN_GARBAGE, self.used // 2):
            self._compact()
        return doc

    def _compact(self) -> None:
        """Drop evicted rows and their terms (live rows keep their order)."""
        ids, rows32 = self.row_of.arrays()
        order = np.argsort(rows32, kind="stable")
        rows = rows32[order].astype(np.int64)
        ids = ids[order]
        lengths = self.length[rows].astype(np.int64)
        starts = self.offset[rows]
        pos = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            int(lengths.sum())
        )
        n, t = len(rows), len(pos)
        for name in ("story", "ts", "length"):
            col = getattr(self, name)
            col[:n] = col[rows]
        self.offset[:n] = np.cumsum(lengths) - lengths
        flags = np.unpackbits(self.flags[: (self.used + 7) // 8], bitorder="little")[pos]
        for name in ("terms", "weights", "slots"):
            col = getattr(self, name)
            col[:t] = col[pos]
        self.set_names(0, flags.view(np.bool_))
        self.rows, self.used, self._garbage = n, t, 0
        self.row_of = IdMap.of(ids, np.arange(n, dtype=np.int32))


class _Stories:
    """Story id → ``_Story``: stories from the last ``bulk_add`` in columns, others as objects.

    A rebuild stores its stories column-wise (one row each, vectors end to end,
    members as sorted (ts, article) runs); reads of such a story see a view
    of its row, and the first write (``take``) turns it into an object.
    """

    __slots__ = (
        "_docs",
        "_gone",
        "_ids",
        "_lang",
        "_last_ts",
        "_live",
        "_m_aid",
        "_m_start",
        "_m_ts",
        "_n_bulk",
        "_names",
        "_slots",
        "_solo",
        "_start",
        "_terms",
        "_weights",
    )

    def __init__(self, docs: _Docs) -> None:
        self._docs = docs
        self._live: dict[int, _Story] = {}
        none = np.empty(0, np.int64)
        self._set_bulk(
            ids=none,
            last_ts=np.empty(0, np.float64),
            lang=np.empty(0, np.int32),
            start=np.zeros(1, np.int64),
            vectors=(np.empty(0, np.uint32), none, none),
            slots=np.empty(0, np.int32),
            m_start=np.zeros(1, np.int64),
            m_ts=np.empty(0, np.float64),
            m_aid=none,
            gone=np.empty(0, np.bool_),
            solo=np.empty(0, np.bool_),
        )

    def _set_bulk(
        self,
        *,
        ids: NDArray[np.int64],
        last_ts: NDArray[np.float64],
        lang: NDArray[np.integer[Any]],
        start: NDArray[np.int64],
        vectors: tuple[NDArray[np.uint32], NDArray[Any], NDArray[Any]],
        slots: NDArray[np.int32],
        m_start: NDArray[np.integer[Any]],
        m_ts: NDArray[np.float64],
        m_aid: NDArray[np.int64],
        gone: NDArray[np.bool_],
        solo: NDArray[np.bool_],
    ) -> None:
        """Rows of stories; ``start`` bounds each row's vector, except that a
        story of one member (``solo``) has none: its vector is its member's."""
        self._ids, self._last_ts, self._lang, self._start = ids, last_ts, lang, start
        self._terms, self._weights, self._names = vectors
        self._slots = slots
        self._m_start, self._m_ts, self._m_aid = m_start, m_ts, m_aid
        self._gone, self._solo = gone, solo
        self._n_bulk = int(len(gone) - gone.sum())

    def _row(self, story_id: int) -> int:
        """The live bulk row of ``story_id``, or -1."""
        if not self._n_bulk:
            return -1
        ids = self._ids
        k = int(ids.searchsorted(np.int64(story_id)))
        if k < len(ids) and int(ids[k]) == story_id and not self._gone[k]:
            return k
        return -1

    def _view(self, k: int) -> _Story:
        m0, m1 = int(self._m_start[k]), int(self._m_start[k + 1])
        members = list(zip(self._m_ts[m0:m1].tolist(), self._m_aid[m0:m1].tolist(), strict=True))
        if self._solo[k]:
            docs = self._docs
            lo, hi = docs.span(docs.row_of[members[0][1]])
            weights = docs.weights[lo:hi].astype(np.int64)
            # Copies: compaction rewrites the document columns in place.
            return _Story(
                docs.terms[lo:hi].copy(),
                weights,
                np.where(docs.names_at(lo, hi), weights, 0),
                float(self._last_ts[k]),
                int(self._lang[k]),
                members,
                docs.slots[lo:hi].copy(),
            )
        lo, hi = int(self._start[k]), int(self._start[k + 1])
        return _Story(
            self._terms[lo:hi],
            self._weights[lo:hi],
            self._names[lo:hi],
            float(self._last_ts[k]),
            int(self._lang[k]),
            members,
            self._slots[lo:hi],
        )

    def __len__(self) -> int:
        return len(self._live) + self._n_bulk

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._live or (isinstance(story_id, int) and self._row(story_id) >= 0)

    def __iter__(self) -> Iterator[int]:
        yield from self._live
        yield from self._ids[~self._gone].tolist()

    def items(self) -> Iterator[tuple[int, _Story]]:
        for s in self:
            yield s, self[s]

    def get(self, story_id: int) -> _Story | None:
        """The story (read only: a bulk story's view is rebuilt on every call)."""
        found = self._live.get(story_id)
        if found is not None:
            return found
        k = self._row(story_id)
        return self._view(k) if k >= 0 else None

    def __getitem__(self, story_id: int) -> _Story:
        found = self.get(story_id)
        if found is None:
            raise KeyError(story_id)
        return found

    def meta(self, story_id: int) -> tuple[float, int]:
        """(last_ts, lang) without building the story."""
        found = self._live.get(story_id)
        if found is not None:
            return found.last_ts, found.lang
        k = self._row(story_id)
        if k < 0:
            raise KeyError(story_id)
        return float(self._last_ts[k]), int(self._lang[k])

    def take(self, story_id: int) -> _Story:
        """The story as a mutable object (moved out of the columns if it is there)."""
        found = self.find(story_id)
        if found is None:
            raise KeyError(story_id)
        return found

    def find(self, story_id: int) -> _Story | None:
        """``take``, or None if there is no such story."""
        found = self._live.get(story_id)
        if found is not None:
            return found
        k = self._row(story_id)
        if k < 0:
            return None
        story = self._live[story_id] = self._view(k)
        self._gone[k] = True
        self._n_bulk -= 1
        return story

    def __setitem__(self, story_id: int, story: _Story) -> None:
        if self._row(story_id) >= 0:
            self.take(story_id)
        self._live[story_id] = story

    def pop(self, story_id: int) -> _Story:
        story = self.take(story_id)
        del self._live[story_id]
        return story

    def __delitem__(self, story_id: int) -> None:
        self.pop(story_id)

    def take_all(self) -> None:
        """Move every bulk story out of the columns (before the next ``bulk_add``)."""
        for s in self._ids[~self._gone].tolist():
            self.take(s)


@dataclass(frozen=True, slots=True)
class StoryMatch:
    story_id: int
    similarity: float
    article_id: int  # the member closest to the new document: the evidence
    merged: tuple[int, ...]  # other stories the document bridges


class StoryIndex:
    def __init__(
        self,
        *,
        threshold: float,
        merge_threshold: float,
        window_s: float,
        name_threshold: float = 0.0,
        query_terms: int = 12,
        max_candidates: int = 8,  # the true story is among the best voted; each costs a cosine
    ) -> None:
        self.threshold = threshold
        self.name_threshold = name_threshold
        self.merge_threshold = merge_threshold
        self.window_s = window_s
        self.query_terms = query_terms
        self.max_candidates = max_candidates
        # Document frequencies in an array (term → slot) so IDF of a whole
        # story vector is one gather; a slot is reused once its df is 0.
        self._slot: dict[int, int] = {}
        self._dfa: NDArray[np.int64] = np.zeros(1024, dtype=np.int64)
        self._free: list[int] = []
        self.n_docs = 0
        self.docs = _Docs()
        self.stories = _Stories(self.docs)
        self.postings: dict[int, dict[int, int]] = {}  # term → story → members with it
        # Postings from ``bulk_add``, as sorted arrays, moved into ``postings``
        # one term at a time on first use (a rebuild need not touch every term).
        self._bulk_terms: NDArray[np.uint32] = np.empty(0, np.uint32)
        self._bulk_start: NDArray[np.int64] = np.empty(0, np.int64)
        # Stories of the bulk postings as positions in ``_bulk_ids`` (the rebuild's story ids).
        self._bulk_story: NDArray[np.int32] = np.empty(0, np.int32)
        self._bulk_ids: NDArray[np.int64] = np.empty(0, np.int64)
        self._bulk_count: NDArray[np.int32] | None = None  # None: every count is 1
        self._bulk_taken: set[int] = set()
        # Additions (by ``add``) to postings still in the bulk arrays: reading
        # or growing a long posting need not turn it into a dict.
        self._delta: dict[int, dict[int, int]] = {}
        # Sorted vocabulary → slot, valid until the next ``count`` changes ``_slot``.
        self._vocab: tuple[NDArray[np.uint32], NDArray[np.int64]] | None = None

    def _bulk_stories(self, term: int) -> Iterable[int]:
        """Read-only: the stories of ``term``'s posting still in the bulk arrays, if any."""
        bt = self._bulk_terms
        if not len(bt) or term in self._bulk_taken:
            return ()
        k = int(bt.searchsorted(np.uint32(term)))
        if k == len(bt) or int(bt[k]) != term:
            return ()
        lo, hi = int(self._bulk_start[k]), int(self._bulk_start[k + 1])
        found: list[int] = self._bulk_ids[self._bulk_story[lo:hi]].tolist()
        extra = self._delta.get(term)
        if extra:
            return {**dict.fromkeys(found), **extra}
        return found

    def _posting(self, term: int) -> dict[int, int]:
        """The (mutable) posting of ``term``, created if absent."""
        found = self.postings.get(term)
        if found is not None:
            return found
        posting: dict[int, int] = {}
        bt = self._bulk_terms
        if len(bt) and term not in self._bulk_taken:
            k = int(bt.searchsorted(np.uint32(term)))
            if k < len(bt) and int(bt[k]) == term:
                self._bulk_taken.add(term)
                lo, hi = int(self._bulk_start[k]), int(self._bulk_start[k + 1])
                ids = self._bulk_ids[self._bulk_story[lo:hi]].tolist()
                bulk_count = self._bulk_count
                posting = (
                    dict.fromkeys(ids, 1)
                    if bulk_count is None
                    else dict(zip(ids, bulk_count[lo:hi].tolist(), strict=True))
                )
                for story_id, n in self._delta.pop(term, {}).items():
                    posting[story_id] = posting.get(story_id, 0) + n
        self.postings[term] = posting
        return posting

    def _flush_bulk(self) -> None:
        for t in self._bulk_terms.tolist():
            self._posting(t)
        for t in [t for t, p in self.postings.items() if not p]:
            del self.postings[t]
        assert not self._delta
        self._bulk_terms = np.empty(0, np.uint32)
        self._bulk_taken.clear()

    # ----------------------------------------------------------------- scoring
    def slots(self, terms: NDArray[np.uint32]) -> NDArray[np.int64]:
        """Array slots of counted terms (every term of a live document or story)."""
        get = self._slot.__getitem__
        return np.fromiter(map(get, terms.tolist()), np.int64, len(terms))

    def _idf_slots(self, slots: NDArray[np.int64]) -> NDArray[np.float64]:
        # Smoothed IDF; the document being placed counts itself (df ≥ 1).
        return np.log((self.n_docs + 2) / (self._dfa[slots] + 1.0)) + 1.0

    def _cosine(
        self,
        terms: NDArray[np.uint32],
        vec: NDArray[np.float64],
        other_terms: NDArray[np.uint32],
        other_weights: NDArray[np.int64],
        other_slots: NDArray[np.int64],
    ) -> float:
        i, j = _common(terms, other_terms)
        if not len(i):
            return 0.0
        other = other_weights * self._idf_slots(other_slots)
        norm = float(np.sqrt(other @ other) * np.sqrt(vec @ vec))
        return float(vec[i] @ other[j]) / norm if norm else 0.0

    def _names_shared(
        self,
        terms: NDArray[np.uint32],
        names: NDArray[np.float64],
        story: _Story,
    ) -> float:
        """Share of the document's IDF-weighted names that the story also names.

        Two events of one kind (two rehab stays, two heavyweight fights) share
        their vocabulary but not their specifics: the other people, places,
        venues and years. Names survive paraphrase, so a report of the same
        event shares them with its story even when its wording does not.
        """
        i, j = _common(terms, story.terms)
        total = float(names.sum())
        return float(names[i][story.names[j] > 0].sum()) / total if total else 1.0

    def _cosines(
        self,
        terms: NDArray[np.uint32],
        vec: NDArray[np.float64],
        others: list[tuple[NDArray[np.uint32], NDArray[Any], NDArray[Any]]],
    ) -> NDArray[np.float64]:
        """``_cosine`` against many (terms, weights, slots) vectors in one pass."""
        lens = np.fromiter((len(o[0]) for o in others), np.int64, len(others))
        if not len(terms) or not lens.sum():
            return np.zeros(len(others))
        which = np.repeat(np.arange(len(others)), lens)
        o_terms = np.concatenate([o[0] for o in others])
        other = np.concatenate([o[1] for o in others]) * self._idf_slots(
            np.concatenate([o[2] for o in others])
        )
        at = np.minimum(np.searchsorted(terms, o_terms), len(terms) - 1)
        mine = np.where(terms[at] == o_terms, vec[at], 0.0)
        dots = np.bincount(which, weights=mine * other, minlength=len(others))
        norms = np.sqrt(np.bincount(which, weights=other * other, minlength=len(others)))
        norms *= float(np.sqrt(vec @ vec))
        return np.divide(dots, norms, out=np.zeros(len(others)), where=norms > 0)

    def match(
        self,
        terms: NDArray[np.uint32],
        weights: NDArray[np.int64],
        ts: float,
        lang: int,
        names: NDArray[np.int64] | None = None,
    ) -> StoryMatch | None:
        """The story this document belongs to (it must already be counted in ``df``)."""
        if not len(terms):
            return None
        idf = self._idf_slots(self.slots(terms))
        vec = weights * idf
        ranked = self._voted(terms, vec, ts, lang)
        if not ranked:
            return None
        named = names * idf if names is not None else None
        guard = named is not None and self.name_threshold > 0 and bool(named.any())
        cands = [self.stories[s] for s in ranked]
        sims = self._cosines(terms, vec, [(c.terms, c.weights, c.slots) for c in cands]).tolist()
        scored: list[tuple[float, int]] = []
        for story_id, story, sim in zip(ranked, cands, sims, strict=True):
            if sim < self.threshold:
                continue
            if (
                guard
                and named is not None
                and story.names.any()
                and self._names_shared(terms, named, story) < self.name_threshold
            ):
                continue
            scored.append((sim, story_id))
        if not scored:
            return None
        scored.sort(key=lambda p: (-p[0], p[1]))
        sim, best = scored[0]
        merged = tuple(
            s
            for other_sim, s in scored[1:]
            if other_sim >= self.merge_threshold
            and self._story_cosine(best, s) >= self.merge_threshold
        )
        return StoryMatch(best, sim, self._closest_member(best, terms, vec), merged)

    def _voted(
        self, terms: NDArray[np.uint32], vec: NDArray[np.float64], ts: float, lang: int
    ) -> list[int]:
        """Open stories sharing the document's most distinctive terms, best first."""
        top = np.argsort(-vec, kind="stable")[: self.query_terms]
        votes: dict[int, float] = {}
        get, postings = votes.get, self.postings
        for term, weight in zip(terms[top].tolist(), vec[top].tolist(), strict=True):
            found = postings.get(term)
            for story_id in found if found is not None else self._bulk_stories(term):
                votes[story_id] = get(story_id, 0.0) + weight
        horizon = ts - self.window_s
        meta = self.stories.meta
        ranked = []
        for s in sorted(votes, key=lambda s: (-votes[s], s)):
            last_ts, story_lang = meta(s)
            if last_ts >= horizon and not (lang and story_lang and story_lang != lang):
                ranked.append(s)
                if len(ranked) >= self.max_candidates:
                    break
        return ranked

    def _story_cosine(self, a: int, b: int) -> float:
        sa, sb = self.stories[a], self.stories[b]
        vec = sa.weights * self._idf_slots(sa.slots)
        return self._cosine(sa.terms, vec, sb.terms, sb.weights, sb.slots)

    def _closest_member(
        self, story_id: int, terms: NDArray[np.uint32], vec: NDArray[np.float64]
    ) -> int:
        # The newest members only: bounded cost, and recent coverage is the best evidence.
        members = [a for _, a in self.stories[story_id].members[-16:]]
        if len(members) == 1:
            return members[0]
        docs = self.docs
        row_of, span = docs.row_of, docs.span
        vectors = []
        for a in members:
            lo, hi = span(row_of[a])
            vectors.append((docs.terms[lo:hi], docs.weights[lo:hi], docs.slots[lo:hi]))
        sims = self._cosines(terms, vec, vectors)
        # Highest similarity; the smallest id among equals.
        return min(zip(sims.tolist(), members, strict=True), key=lambda p: (-p[0], p[1]))[1]

    # ------------------------------------------------------------------ writes
    def count(self, terms: NDArray[np.uint32], sign: int = 1) -> None:
        """Add (or remove) one document to the document frequencies."""
        self.n_docs += sign
        self._vocab = None
        listed = terms.tolist()
        found = list(map(self._slot.get, listed))
        if sign > 0 and None in found:
            found = [
                self._new_slot(t) if k is None else k for t, k in zip(listed, found, strict=True)
            ]
        # A document's terms are distinct: one fancy-indexed update counts them all.
        at = np.array(found, dtype=np.int64)
        dfa = self._dfa
        dfa[at] += sign
        if sign < 0 and (emptied := at[dfa[at] == 0].tolist()):
            gone = set(emptied)
            for t, k in zip(listed, found, strict=True):
                if k in gone:
                    del self._slot[t]
            self._free.extend(emptied)

    def _new_slot(self, term: int) -> int:
        self._vocab = None
        if self._free:
            k = self._free.pop()
        else:
            k = len(self._slot)
            if k >= len(self._dfa):
                self._dfa = np.concatenate((self._dfa, np.zeros_like(self._dfa)))
        self._slot[term] = k
        return k

    def add(
        self,
        article_id: int,
        *,
        story_id: int,
        terms: NDArray[np.uint32],
        weights: NDArray[np.int64],
        names: NDArray[np.int64],
        ts: float,
        lang: int,
    ) -> None:
        """Attach a document (already counted in ``df``) to a story, founding it if new."""
        slots = self.slots(terms)
        self.docs.append_one(article_id, story_id, ts, (terms, weights, names), slots)
        story = self.stories.find(story_id)
        if story is None:
            story = _Story(terms.copy(), weights.copy(), names.copy(), ts, lang, slots=slots)
            self.stories[story_id] = story
        else:
            _add_into(story, terms, weights, names, slots)
            story.last_ts = max(story.last_ts, ts)
        bisect.insort(story.members, (ts, article_id))
        postings, delta, taken = self.postings, self._delta, self._bulk_taken
        bt = self._bulk_terms
        if len(bt) and len(terms):
            in_bulk = (bt[np.minimum(bt.searchsorted(terms), len(bt) - 1)] == terms).tolist()
        else:
            in_bulk = [False] * len(terms)
        for t, bulk in zip(terms.tolist(), in_bulk, strict=True):
            posting = postings.get(t)
            if posting is None:
                if bulk and t not in taken:
                    posting = delta.get(t)
                    if posting is None:
                        posting = delta[t] = {}
                else:
                    posting = postings[t] = {}
            posting[story_id] = posting.get(story_id, 0) + 1

    def bulk_load(
        self,
        article_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        blobs: list[bytes],
        ts: NDArray[np.float64],
        langs: NDArray[np.integer[Any]],
    ) -> None:
        """``bulk_add`` of documents (in time order) given their stored sketches.

        A rebuild into an empty index where every story has one member (the
        common case) decodes the sketches straight into the document columns;
        anything else is decoded with ``decode_columns`` and goes through
        ``bulk_add``.
        """
        if not self._bulk_solo(article_ids, story_ids, blobs, ts, langs):
            self.bulk_add(
                article_ids.tolist(),
                story_ids.tolist(),
                decode_columns(blobs),
                ts.tolist(),
                langs.tolist(),
            )

    def _bulk_solo(
        self,
        article_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        blobs: list[bytes],
        ts: NDArray[np.float64],
        langs: NDArray[np.integer[Any]],
    ) -> bool:
        """``bulk_load`` of one-member stories into an empty index; False (nothing
        changed) if that is not the case.

        The same state as ``bulk_add``'s, from one sort of (term, story) keys:
        its runs give the vocabulary, the document frequencies and the
        postings (stories in order). A term's slot is its rank in the
        vocabulary (see ``_ranks_into``).
        """
        n = len(blobs)
        if not n or len(self.stories) or self._slot or self._free:
            return False
        # Stories are kept in id order; documents usually come in it already.
        order: NDArray[np.intp] | None = None
        story_of: NDArray[np.int64] | None = None
        if n > 1 and not (story_ids[1:] > story_ids[:-1]).all():
            order = np.argsort(story_ids, kind="stable")
            if (story_ids[order[1:]] == story_ids[order[:-1]]).any():
                return False  # a story of several members
            story_of = np.empty(n, np.int64)
            story_of[order] = np.arange(n)
        counts = _counts_of(np.fromiter(map(len, blobs), np.int64, n))
        if (counts < 0).any():
            return False
        total = int(counts.sum())
        if n >= 1 << 31:
            return False
        docs = self.docs
        docs._reserve(n, total)
        r0, r1, u0, u1 = docs.rows, docs.rows + n, docs.used, docs.used + total
        offset = docs.offset[r0:r1]
        keys = np.empty(total, np.uint64)
        if not _decode_solo(blobs, counts, docs, offset, keys, story_of=story_of):
            return False
        keys.sort()
        # The postings (each term's stories, in order) overwrite the keys
        # already read: the first half of their bytes, kept once the rest is freed.
        story = keys.view(np.int32)[:total]
        firsts, uniqs, last = [], [], -1
        for lo in range(0, total, _CHUNK):
            part = keys[lo : lo + _CHUNK]
            term = (part >> np.uint64(32)).astype(np.uint32)
            story[lo : lo + len(term)] = part  # the low half: the story
            is_first = np.empty(len(term), np.bool_)
            is_first[0] = int(term[0]) != last
            np.not_equal(term[1:], term[:-1], out=is_first[1:])
            first = np.flatnonzero(is_first)
            firsts.append(first + lo)
            uniqs.append(term[first])
            last = int(term[-1])
            del part
        del story
        try:
            keys.resize((total + 1) // 2)
        except ValueError:  # referenced elsewhere (a debugger): keep a copy instead
            keys = keys[: (total + 1) // 2].copy()
        story = keys.view(np.int32)[:total]
        del keys
        uniq = np.concatenate(uniqs) if uniqs else np.empty(0, np.uint32)
        bounds = np.append(np.concatenate(firsts) if firsts else [], total).astype(np.int64)
        _ranks_into(uniq, docs.terms[u0:u1], docs.slots[u0:u1])
        self._count_bulk(uniq, np.diff(bounds))
        self.n_docs += n
        offset += u0
        docs.story[r0:r1] = story_ids
        docs.ts[r0:r1] = ts
        docs.length[r0:r1] = counts
        docs.rows, docs.used = r1, u1
        docs.row_of.bulk(article_ids, np.arange(r0, r1, dtype=np.int32))
        # Copies (the arguments may be views of columns that later change in
        # place), in story order.
        if order is not None:
            article_ids, story_ids = article_ids[order], story_ids[order]
            ts, langs = ts[order], langs[order]
        ids = np.array(story_ids, np.int64)
        times = np.array(ts, np.float64)
        self.stories._set_bulk(
            ids=ids,
            last_ts=times,  # a story's last member is its only one
            lang=np.array(langs, np.int16),
            start=np.zeros(n + 1, np.int64),  # no vectors of their own (see ``solo``)
            vectors=(np.empty(0, np.uint32), np.empty(0, np.int32), np.empty(0, np.int32)),
            slots=np.empty(0, np.int32),
            m_start=np.arange(n + 1, dtype=np.int32 if n < 2**31 else np.int64),
            m_ts=times,
            m_aid=ids if np.array_equal(ids, article_ids) else np.array(article_ids, np.int64),
            gone=np.zeros(n, np.bool_),
            solo=np.ones(n, np.bool_),
        )
        self._flush_bulk()
        self._bulk_ids = ids
        self._bulk_story = story
        self._bulk_count = None
        self._bulk_terms = uniq
        self._bulk_start = bounds
        self._adopt_postings()
        return True

    def bulk_add(
        self,
        article_ids: list[int],
        story_ids: list[int],
        flat: Columns,
        ts: list[float],
        langs: list[int],
    ) -> None:
        """``count`` + ``add`` for many documents (in time order), one sum per story.

        ``flat`` holds every document's bag end to end (see ``decode_columns``).
        Two sorts do the work: one over (story, term) keys gives every
        story's vector and member counts; one over the distinct pairs, by
        term, gives document frequencies and the postings.
        """
        if not article_ids:
            return
        terms, fixed, flags, counts = flat
        self.stories.take_all()
        self.n_docs += len(article_ids)
        usids, sidx = np.unique(np.asarray(story_ids, np.int64), return_inverse=True)
        in_order = bool((np.diff(sidx) > 0).all()) and not len(self.stories)
        wsum: NDArray[Any]
        nsum: NDArray[Any]
        if in_order and _sorted_runs(terms, counts):
            # A rebuild of one-member stories, in story order (the common
            # case: a story's id is its founder's): the documents' bags are
            # already the stories' sorted (story, term) pairs, one per term.
            # Each pair has one member; the stories keep no vectors (see ``solo``).
            doc_order = np.arange(len(article_ids))
            ust = np.repeat(np.arange(len(usids), dtype=np.int32), counts)
            utm, wsum, nsum = terms, fixed, np.empty(0, np.int64)
            msum = None
            doc_pair = None  # each document term is its own pair
        else:
            weights = fixed.astype(np.int64)
            names = np.where(flags, weights, 0)
            parts_s, parts_t = [np.repeat(sidx, counts)], [terms]
            parts_w, parts_n = [weights], [names]
            parts_m = [np.ones(len(terms), np.int64)]
            for k, sid in enumerate(usids.tolist()):
                old = self.stories.get(sid)
                if old is not None:
                    parts_s.append(np.full(len(old.terms), k, np.int64))
                    parts_t.append(old.terms)
                    parts_w.append(old.weights)
                    parts_n.append(old.names)
                    parts_m.append(np.zeros(len(old.terms), np.int64))
            # Documents grouped by story (stably) make the keys runs of sorted
            # terms, mostly ascending already: a stable sort (timsort) is then
            # nearly linear. Sums are of integers, so the order of equal keys is moot.
            doc_order = np.argsort(sidx, kind="stable")
            sizes = counts[doc_order]
            shift = (np.cumsum(counts) - counts)[doc_order] - (np.cumsum(sizes) - sizes)
            term_order = np.repeat(shift, sizes) + np.arange(len(terms))
            parts_s[0] = parts_s[0][term_order]
            parts_t[0], parts_w[0], parts_n[0] = (
                terms[term_order],
                weights[term_order],
                names[term_order],
            )
            key = (np.concatenate(parts_s).astype(np.uint64) << np.uint64(32)) | np.concatenate(
                parts_t
            ).astype(np.uint64)
            order = stable_argsort(key)
            key = key[order]
            is_start = np.concatenate(([True], key[1:] != key[:-1]))
            starts = np.flatnonzero(is_start)
            # Each document term's (story, term) pair, for the documents' slots.
            pair_of = np.empty(len(key), np.int64)
            pair_of[order] = np.cumsum(is_start) - 1
            del is_start
            ukey = key[starts]
            wsum = np.add.reduceat(np.concatenate(parts_w)[order], starts)
            nsum = np.add.reduceat(np.concatenate(parts_n)[order], starts)
            msum = np.add.reduceat(np.concatenate(parts_m)[order], starts)
            ust = (ukey >> np.uint64(32)).astype(np.int64)
            utm = (ukey & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            doc_pair = np.empty(len(terms), np.int64)
            doc_pair[term_order] = pair_of[: len(terms)]
            del pair_of
        # Term-major order of the pairs with members in this batch: df and postings.
        # (term, pair position) keys are distinct and carry the position:
        # sorting them (faster than an argsort) gives the stable by-term order.
        if msum is None:  # every pair has one member
            live = None
            tkey = utm.astype(np.uint64)
            tkey <<= np.uint64(32)
            for lo in range(0, len(tkey), _CHUNK):
                part = tkey[lo : lo + _CHUNK]
                part |= np.arange(lo, lo + len(part), dtype=np.uint64)
        else:
            live = np.flatnonzero(msum > 0)
            tkey = (utm[live].astype(np.uint64) << np.uint64(32)) | live.astype(np.uint64)
        tkey.sort()
        # The two halves of the sorted keys (views): the pairs in term order, and the terms.
        halves = tkey.view(np.uint32).reshape(-1, 2)
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        by_term, pt = halves[:, low], halves[:, high]
        fresh = not self._slot and not self._free and (live is None or len(live) == len(utm))
        is_first = np.empty(len(pt), np.bool_)
        is_first[:1] = True
        np.not_equal(pt[1:], pt[:-1], out=is_first[1:])
        first = np.flatnonzero(is_first)
        uniq = pt[first]
        if not len(first):
            df_new = first
        elif msum is None:
            df_new = np.diff(np.append(first, len(by_term)))
        else:
            df_new = np.add.reduceat(_gather(msum, by_term), first)
        self._count_bulk(uniq, df_new)
        uslots = np.empty(len(utm), np.int32)
        if fresh:
            # Slots are positions in the sorted vocabulary: each pair's is its term's rank.
            rank = np.cumsum(is_first, dtype=np.int32)
            rank -= 1
            for lo in range(0, len(rank), _CHUNK):
                uslots[by_term[lo : lo + _CHUNK]] = rank[lo : lo + _CHUNK]
            del rank
        else:
            uslots[:] = self.slots_sorted(utm)
        del is_first
        self.docs.append(
            article_ids, story_ids, ts, flat, uslots if doc_pair is None else uslots[doc_pair]
        )
        del doc_pair
        bounds = np.searchsorted(ust, np.arange(len(usids) + 1, dtype=ust.dtype))
        # Members of each story in (ts, article) order: one sort by (story, ts, article).
        ts_a = np.asarray(ts, np.float64)
        aid_a = np.asarray(article_ids, np.int64)
        by_member = np.lexsort((aid_a, ts_a, sidx))
        m_ts, m_aid = ts_a[by_member], aid_a[by_member]
        m_start = np.searchsorted(sidx[by_member], np.arange(len(usids) + 1))
        first_doc = doc_order[np.searchsorted(sidx[doc_order], np.arange(len(usids)))]
        last_ts = np.maximum(ts_a[first_doc], m_ts[m_start[1:] - 1])
        had = (
            np.fromiter(map(self.stories.__contains__, usids.tolist()), np.bool_, len(usids))
            if len(self.stories)
            else np.zeros(len(usids), np.bool_)
        )
        for k in np.flatnonzero(had).tolist():
            story = self.stories.take(int(usids[k]))
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            m0, m1 = int(m_start[k]), int(m_start[k + 1])
            new = list(zip(m_ts[m0:m1].tolist(), m_aid[m0:m1].tolist(), strict=True))
            story.terms, story.weights, story.names = utm[lo:hi], wsum[lo:hi], nsum[lo:hi]
            story.members = sorted(story.members + new)
            story.slots = uslots[lo:hi]
            story.last_ts = max(story.last_ts, new[-1][0])
        # A story of one new member keeps no vector of its own: it is the member's.
        solo = (np.diff(m_start) == 1) & ~had
        keep = np.repeat(~solo, np.diff(bounds))
        utm, wsum, uslots = utm[keep], wsum[keep], uslots[keep]
        if msum is None:  # the pairs are the documents' own terms
            wsum = wsum.astype(np.int64)
            nsum = np.where(flags[keep], wsum, 0)
        else:
            nsum = nsum[keep]
        small = not len(wsum) or max(int(wsum.max()), int(nsum.max())) < 2**31
        kept = np.diff(bounds)
        kept[solo] = 0
        self.stories._set_bulk(
            ids=usids,
            last_ts=last_ts,
            lang=np.asarray(langs, np.int32)[first_doc],
            start=np.concatenate(([0], np.cumsum(kept))).astype(np.int64),
            vectors=(
                utm,
                wsum.astype(np.int32) if small else wsum,
                nsum.astype(np.int32) if small else nsum,
            ),
            slots=uslots,
            m_start=m_start.astype(np.int64),
            m_ts=m_ts,
            m_aid=m_aid,
            gone=had,
            solo=solo,
        )
        self._flush_bulk()
        self._bulk_ids = usids
        self._bulk_story = _gather(ust, by_term).astype(np.int32, copy=False)
        self._bulk_count = None if msum is None else _gather(msum, by_term).astype(np.int32)
        self._bulk_terms = uniq
        self._bulk_start = np.append(first, len(by_term)).astype(np.int64)
        del tkey, halves, by_term, pt
        self._adopt_postings()

    def _adopt_postings(self) -> None:
        """Terms already in ``postings`` (from earlier ``add`` calls) take the bulk entries now."""
        for t in self._bulk_terms.tolist() if self.postings else ():
            if t in self.postings:
                k = int(self._bulk_terms.searchsorted(np.uint32(t)))
                lo, hi = int(self._bulk_start[k]), int(self._bulk_start[k + 1])
                posting = self.postings[t]
                bulk_count = self._bulk_count
                for sid, c in zip(
                    self._bulk_ids[self._bulk_story[lo:hi]].tolist(),
                    [1] * (hi - lo) if bulk_count is None else bulk_count[lo:hi].tolist(),
                    strict=True,
                ):
                    posting[sid] = posting.get(sid, 0) + c
                self._bulk_taken.add(t)

    def _count_bulk(self, uniq: NDArray[np.uint32], counts: NDArray[np.int64]) -> None:
        """``count`` for many documents: ``counts[i]`` more documents hold ``uniq[i]``."""
        slot = self._slot
        if not slot and not self._free:
            # A rebuild into an empty index: term ids are positions in the sorted vocabulary.
            self._slot = dict(zip(uniq.tolist(), range(len(uniq)), strict=True))
            self._dfa = np.zeros(max(1024, 2 * len(uniq)), np.int64)
            self._dfa[: len(uniq)] = counts
            self._vocab = (uniq, np.arange(len(uniq), dtype=np.int64))
            return
        for t, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            k = slot.get(t)
            if k is None:
                k = self._new_slot(t)
            self._dfa[k] += c
        self._vocab = None

    def slots_sorted(self, terms: NDArray[np.uint32]) -> NDArray[np.int64]:
        """``slots`` for many terms at once (vectorised when the vocabulary is fresh)."""
        if self._vocab is not None:
            vocab, vslot = self._vocab
            return vslot[np.searchsorted(vocab, terms)]
        vocab = np.fromiter(self._slot.keys(), np.uint32, len(self._slot))
        vslot = np.fromiter(self._slot.values(), np.int64, len(self._slot))
        vorder = np.argsort(vocab)
        return vslot[vorder][np.searchsorted(vocab[vorder], terms)]

    def merge(self, survivor: int, absorbed: int) -> None:
        keep, gone = self.stories.take(survivor), self.stories.pop(absorbed)
        keep.terms, keep.weights, keep.names = _sum(
            (keep.terms, keep.weights, keep.names), (gone.terms, gone.weights, gone.names)
        )
        keep.slots = self.slots(keep.terms)
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        keep.members = sorted(keep.members + gone.members)
        docs = self.docs
        for _, article_id in gone.members:
            docs.story[docs.row_of[article_id]] = survivor
        for t in gone.terms.tolist():
            posting = self._posting(t)
            n = posting.pop(absorbed)
            posting[survivor] = posting.get(survivor, 0) + n

    def evict(self, article_id: int) -> None:
        row = self.docs.row_of.get(article_id)
        if row is None:
            return
        # The story first: a one-member story read from the columns reads its member.
        story = self.stories.take(int(self.docs.story[row]))
        doc = self.docs.pop(article_id)
        assert doc is not None
        self.count(doc.terms, -1)
        story.members.remove((doc.ts, article_id))
        for t in doc.terms.tolist():
            posting = self._posting(t)
            n = posting[doc.story] - 1
            if n:
                posting[doc.story] = n
            else:
                del posting[doc.story]
                if not posting:
                    del self.postings[t]
        if not story.members:
            del self.stories[doc.story]
            return
        story.terms, story.weights, story.names = _sum(
            (story.terms, story.weights, story.names), (doc.terms, -doc.weights, -doc.names)
        )
        story.slots = self.slots(story.terms)
        # ``last_ts`` keeps the newest member's time: evictions remove the oldest.
        story.last_ts = story.members[-1][0]


def _gather(values: NDArray[Any], at: NDArray[np.uint32]) -> NDArray[Any]:
    """``values[at]`` a block at a time: a whole index in ``intp`` would double the bytes."""
    out = np.empty(len(at), values.dtype)
    for lo in range(0, len(at), _CHUNK):
        out[lo : lo + _CHUNK] = values[at[lo : lo + _CHUNK]]
    return out


def _sorted_runs(terms: NDArray[np.uint32], counts: NDArray[np.int64]) -> bool:
    """Whether each of the bags end to end (``counts[i]`` terms each) is sorted and unique."""
    if len(terms) < 2:
        return True
    up = terms[1:] > terms[:-1]
    starts = (np.cumsum(counts) - counts)[counts > 0]
    up[starts[1:] - 1] = True  # a bag's first term need not exceed the last one's
    return bool(up.all())


def _common(
    a: NDArray[np.uint32], b: NDArray[np.uint32]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Positions in ``a`` and in ``b`` of their common terms (both sorted, unique)."""
    if not len(b):
        return np.empty(0, np.intp), np.empty(0, np.intp)
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    i = np.flatnonzero(b[at] == a)
    return i, at[i]


def _add_into(
    story: _Story,
    terms: NDArray[np.uint32],
    weights: NDArray[np.int64],
    names: NDArray[np.int64],
    slots: NDArray[np.int64],
) -> None:
    """``_sum`` of a story and one new member, carrying the members' term slots along.

    Weights are positive, so no term drops out: terms the story has are added
    in place, the others inserted at their sorted positions (no re-sort and no
    slot lookup for the story's existing terms).
    """
    st = story.terms
    at = np.searchsorted(st, terms)
    present = st[np.minimum(at, len(st) - 1)] == terms if len(st) else np.zeros(len(terms), bool)
    w = story.weights.astype(np.int64)  # a copy: story arrays may be views of shared columns
    n = story.names.astype(np.int64)
    w[at[present]] += weights[present]
    n[at[present]] += names[present]
    missing = np.flatnonzero(~present)
    if len(missing):
        # Final positions of the new terms; the old ones fill the rest in order.
        new = at[missing] + np.arange(len(missing))
        old = np.ones(len(st) + len(missing), bool)
        old[new] = False

        def merged(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
            out = np.empty(len(old), a.dtype)
            out[old] = a
            out[new] = b[missing]
            return out

        story.terms = merged(st, terms)
        story.slots = merged(story.slots, slots)
        w, n = merged(w, weights), merged(n, names)
    story.weights, story.names = w, n


def _sum(a: Bag, b: Bag) -> Bag:
    """Sparse sum of two sorted term vectors, dropping terms that reach zero."""
    terms, inverse = np.unique(np.concatenate((a[0], b[0])), return_inverse=True)
    weights = np.bincount(inverse, weights=np.concatenate((a[1], b[1])), minlength=len(terms))
    names = np.bincount(inverse, weights=np.concatenate((a[2], b[2])), minlength=len(terms))
    total = np.rint(weights).astype(np.int64)
    keep = total != 0
    return terms[keep], total[keep], np.rint(names[keep]).astype(np.int64)


__all__ = ["StoryIndex", "StoryMatch", "decode", "encode"]
