"""Per-document data of the story index, stored as columns.

One row per document, every document's bag end to end in flat arrays (uint32
terms, uint16 weights, name flags as bits, int32 document-frequency slots):
a few bytes a term, where a bag as objects would cost a hundred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from newsfold.dedup.index import IdMap

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from newsfold.dedup.stories.blob import Bag, Columns

MIN_GARBAGE = 4096  # evicted term positions kept before the columns are compacted


@dataclass(frozen=True, slots=True)
class Doc:
    """One indexed document, read from the columns (a copy: changing it changes nothing)."""

    story: int
    terms: NDArray[np.uint32]
    weights: NDArray[np.int64]
    names: NDArray[np.int64]
    ts: float
    slots: NDArray[np.int32]


class DocColumns:
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

    def __getitem__(self, article_id: int) -> Doc:
        row = self.row_of[article_id]
        lo, hi = self.span(row)
        weights = self.weights[lo:hi].astype(np.int64)
        return Doc(
            int(self.story[row]),
            self.terms[lo:hi].copy(),
            weights,
            np.where(self.names_at(lo, hi), weights, 0),
            float(self.ts[row]),
            self.slots[lo:hi].copy(),
        )

    def story_of(self, article_id: int) -> int | None:
        row = self.row_of.get(article_id)
        return None if row is None else int(self.story[row])

    def move(self, article_id: int, story_id: int) -> None:
        """Record that the document now belongs to ``story_id``."""
        self.story[self.row_of[article_id]] = story_id

    def vector(
        self, article_id: int
    ) -> tuple[NDArray[np.uint32], NDArray[np.uint16], NDArray[np.int32]]:
        """(terms, stored weights, slots) of a document: views, valid until the next write."""
        lo, hi = self.span(self.row_of[article_id])
        return self.terms[lo:hi], self.weights[lo:hi], self.slots[lo:hi]

    def span(self, row: int) -> tuple[int, int]:
        lo = int(self.offset[row])
        return lo, lo + int(self.length[row])

    def reserve(self, rows: int, terms: int) -> None:
        """Room for ``rows`` more documents holding ``terms`` more terms."""
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
        t = len(terms)
        self.reserve(len(article_ids), t)
        u0, u1 = self.used, self.used + t
        self.terms[u0:u1] = terms
        self.weights[u0:u1] = weights
        self.set_names(u0, flags)
        self.slots[u0:u1] = slots
        self.commit(
            np.asarray(article_ids, np.int64),
            story_ids,
            ts,
            np.asarray(counts, np.int64),
            np.cumsum(counts) - counts,
        )

    def free(self) -> tuple[NDArray[np.uint32], NDArray[np.uint16], NDArray[np.int32]]:
        """The term, weight and slot columns past the last used position (views, to be
        filled after ``reserve`` and made part of the columns by ``commit``)."""
        u0 = self.used
        return self.terms[u0:], self.weights[u0:], self.slots[u0:]

    def commit(
        self,
        article_ids: NDArray[np.int64],
        story_ids: Sequence[int] | NDArray[np.int64],
        ts: Sequence[float] | NDArray[np.float64],
        counts: NDArray[np.int64],
        offset: NDArray[np.int64],
    ) -> None:
        """Add rows for documents whose terms were written past the last used
        position (``offset``: each bag's start from there, ``counts``: its length)."""
        n = len(article_ids)
        r0, r1 = self.rows, self.rows + n
        self.story[r0:r1] = story_ids
        self.ts[r0:r1] = ts
        self.length[r0:r1] = counts
        self.offset[r0:r1] = offset
        self.offset[r0:r1] += self.used
        self.rows = r1
        self.used += int(counts.sum())
        self.row_of.bulk(article_ids, np.arange(r0, r1, dtype=np.int32))

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
        self.reserve(1, t)
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

    def pop(self, article_id: int) -> Doc | None:
        row = self.row_of.get(article_id)
        if row is None:
            return None
        doc = self[article_id]
        del self.row_of[article_id]
        self._garbage += len(doc.terms)
        if self._garbage > max(MIN_GARBAGE, self.used // 2):
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


__all__ = ["MIN_GARBAGE", "Doc", "DocColumns"]
