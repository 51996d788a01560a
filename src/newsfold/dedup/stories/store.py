"""The stories of the story index: each one's summed vector, members and metadata.

A story's vector is the sum of its members' bags (integers, so the sum does
not depend on the order of additions). A rebuild stores its stories as rows
of flat arrays, and a story of one member has no vector of its own: it reads
its member's from the document columns. A story that later placements
change becomes an object (``Story``) on its first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from newsfold.dedup.stories.blob import Bag
    from newsfold.dedup.stories.columns import DocColumns


@dataclass(slots=True)
class Story:
    """One story's summed vector (sorted terms and their slots), members and metadata."""

    terms: NDArray[np.uint32]
    weights: NDArray[Any]  # integers: int64, or int32 in the rebuild's columns
    names: NDArray[Any]  # the members' weights of terms they use as names
    last_ts: float
    lang: int
    members: list[tuple[float, int]] = field(default_factory=list)  # (ts, article id), sorted
    slots: NDArray[Any] = field(default_factory=lambda: np.empty(0, np.int64))


class StoryStore:
    """Story id → ``Story``: stories from the last rebuild in columns, others as objects.

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

    def __init__(self, docs: DocColumns) -> None:
        self._docs = docs
        self._live: dict[int, Story] = {}
        none = np.empty(0, np.int64)
        self.set_rows(
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

    def set_rows(
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

    def _view(self, k: int) -> Story:
        m0, m1 = int(self._m_start[k]), int(self._m_start[k + 1])
        members = list(zip(self._m_ts[m0:m1].tolist(), self._m_aid[m0:m1].tolist(), strict=True))
        if self._solo[k]:
            # A copy: compaction rewrites the document columns in place.
            doc = self._docs[members[0][1]]
            return Story(
                doc.terms,
                doc.weights,
                doc.names,
                float(self._last_ts[k]),
                int(self._lang[k]),
                members,
                doc.slots,
            )
        lo, hi = int(self._start[k]), int(self._start[k + 1])
        return Story(
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

    def get(self, story_id: int) -> Story | None:
        """The story (read only: a bulk story's view is rebuilt on every call)."""
        found = self._live.get(story_id)
        if found is not None:
            return found
        k = self._row(story_id)
        return self._view(k) if k >= 0 else None

    def __getitem__(self, story_id: int) -> Story:
        found = self.get(story_id)
        if found is None:
            raise KeyError(story_id)
        return found

    def meta(self, story_id: int) -> tuple[float, float, int]:
        """(first_ts, last_ts, lang) without building the story."""
        found = self._live.get(story_id)
        if found is not None:
            return found.members[0][0], found.last_ts, found.lang
        k = self._row(story_id)
        if k < 0:
            raise KeyError(story_id)
        first = float(self._m_ts[self._m_start[k]])
        return first, float(self._last_ts[k]), int(self._lang[k])

    def take(self, story_id: int) -> Story:
        """The story as a mutable object (moved out of the columns if it is there)."""
        found = self.find(story_id)
        if found is None:
            raise KeyError(story_id)
        return found

    def find(self, story_id: int) -> Story | None:
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

    def __setitem__(self, story_id: int, story: Story) -> None:
        if self._row(story_id) >= 0:
            self.take(story_id)
        self._live[story_id] = story

    def pop(self, story_id: int) -> Story:
        story = self.take(story_id)
        del self._live[story_id]
        return story

    def __delitem__(self, story_id: int) -> None:
        self.pop(story_id)

    def take_all(self) -> None:
        """Move every bulk story out of the columns (before a rebuild adds to them)."""
        for s in self._ids[~self._gone].tolist():
            self.take(s)


def add_member(
    story: Story,
    terms: NDArray[np.uint32],
    weights: NDArray[np.int64],
    names: NDArray[np.int64],
    slots: NDArray[np.int64],
) -> None:
    """``vector_sum`` of a story and one new member, carrying the members' term slots along.

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


def vector_sum(a: Bag, b: Bag) -> Bag:
    """Sparse sum of two sorted term vectors, dropping terms that reach zero."""
    terms, inverse = np.unique(np.concatenate((a[0], b[0])), return_inverse=True)
    weights = np.bincount(inverse, weights=np.concatenate((a[1], b[1])), minlength=len(terms))
    names = np.bincount(inverse, weights=np.concatenate((a[2], b[2])), minlength=len(terms))
    total = np.rint(weights).astype(np.int64)
    keep = total != 0
    return terms[keep], total[keep], np.rint(names[keep]).astype(np.int64)


__all__ = ["Story", "StoryStore", "add_member", "vector_sum"]
