"""The story index's inverted index and document frequencies.

``Postings`` maps a term to the stories holding it, each with how many of
its members do. ``Vocabulary`` counts the documents holding each term and
gives every counted term a slot in a flat array, so the IDF of a whole
vector is one gather.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import NDArray


class Postings:
    """Term → story → members of the story with the term.

    A rebuild hands its postings over as sorted arrays (``load``); they stay
    arrays until a term is changed, when that term's posting becomes a dict
    (a rebuild need not touch every term) that answers for it from then on,
    even empty. Additions to a long posting still in the arrays collect
    beside it, so placing a document does not unpack it.
    """

    __slots__ = ("_count", "_delta", "_dicts", "_ids", "_start", "_story", "_terms")

    def __init__(self) -> None:
        self._dicts: dict[int, dict[int, int]] = {}
        # The rebuild's postings: term k's entries are ``_start[k]:_start[k + 1]``,
        # stories as positions in ``_ids``, member counts in ``_count`` (None: all 1).
        self._terms: NDArray[np.uint32] = np.empty(0, np.uint32)
        self._start: NDArray[np.int64] = np.empty(0, np.int64)
        self._story: NDArray[np.int32] = np.empty(0, np.int32)
        self._ids: NDArray[np.int64] = np.empty(0, np.int64)
        self._count: NDArray[np.int32] | None = None
        self._delta: dict[int, dict[int, int]] = {}  # additions to terms still in the arrays

    def _in_arrays(self, term: int) -> int:
        """The position of ``term``'s posting in the arrays, or -1."""
        bt = self._terms
        if not len(bt):
            return -1
        k = int(bt.searchsorted(np.uint32(term)))
        return k if k < len(bt) and int(bt[k]) == term else -1

    def stories(self, term: int) -> Iterable[int]:
        """The stories holding ``term`` (read only)."""
        found = self._dicts.get(term)
        if found is not None:
            return found
        k = self._in_arrays(term)
        if k < 0:
            return ()
        lo, hi = int(self._start[k]), int(self._start[k + 1])
        held: list[int] = self._ids[self._story[lo:hi]].tolist()
        extra = self._delta.get(term)
        return {**dict.fromkeys(held), **extra} if extra else held

    def _posting(self, term: int) -> dict[int, int]:
        """The (mutable) posting of ``term``, created if absent."""
        found = self._dicts.get(term)
        if found is not None:
            return found
        posting: dict[int, int] = {}
        k = self._in_arrays(term)
        if k >= 0:
            lo, hi = int(self._start[k]), int(self._start[k + 1])
            ids = self._ids[self._story[lo:hi]].tolist()
            count = self._count
            posting = (
                dict.fromkeys(ids, 1)
                if count is None
                else dict(zip(ids, count[lo:hi].tolist(), strict=True))
            )
            for story_id, n in self._delta.pop(term, {}).items():
                posting[story_id] = posting.get(story_id, 0) + n
        self._dicts[term] = posting
        return posting

    def add(self, terms: NDArray[np.uint32], story_id: int) -> None:
        """One more member of ``story_id`` holds each of ``terms``."""
        dicts, delta, bt = self._dicts, self._delta, self._terms
        if len(bt) and len(terms):
            in_arrays = (bt[np.minimum(bt.searchsorted(terms), len(bt) - 1)] == terms).tolist()
        else:
            in_arrays = [False] * len(terms)
        for t, arrays in zip(terms.tolist(), in_arrays, strict=True):
            posting = dicts.get(t)
            if posting is None:
                if arrays:  # not yet a dict: the addition waits beside the arrays
                    posting = delta.get(t)
                    if posting is None:
                        posting = delta[t] = {}
                else:
                    posting = dicts[t] = {}
            posting[story_id] = posting.get(story_id, 0) + 1

    def remove(self, terms: NDArray[np.uint32], story_id: int) -> None:
        """One member of ``story_id`` fewer holds each of ``terms``."""
        for t in terms.tolist():
            posting = self._posting(t)
            n = posting[story_id] - 1
            if n:
                posting[story_id] = n
            else:
                del posting[story_id]
                if not posting and self._in_arrays(t) < 0:
                    del self._dicts[t]

    def move(self, terms: NDArray[np.uint32], absorbed: int, survivor: int) -> None:
        """The members of ``absorbed`` (holding ``terms``) join ``survivor``."""
        for t in terms.tolist():
            posting = self._posting(t)
            n = posting.pop(absorbed)
            posting[survivor] = posting.get(survivor, 0) + n

    def load(
        self,
        terms: NDArray[np.uint32],
        start: NDArray[np.int64],
        story: NDArray[np.int32],
        ids: NDArray[np.int64],
        count: NDArray[np.int32] | None,
    ) -> None:
        """Add a rebuild's postings: ``terms`` sorted, term k's stories
        ``ids[story[start[k]:start[k + 1]]]``, their member counts alike (None: 1)."""
        for t in self._terms.tolist():  # the previous arrays become dicts
            self._posting(t)
        for t in [t for t, p in self._dicts.items() if not p]:
            del self._dicts[t]
        assert not self._delta
        self._terms, self._start, self._story, self._ids, self._count = (
            terms,
            start,
            story,
            ids,
            count,
        )
        # Terms already held as dicts take their new entries now.
        for t in terms.tolist() if self._dicts else ():
            posting = self._dicts.get(t)
            if posting is None:
                continue
            k = int(terms.searchsorted(np.uint32(t)))
            lo, hi = int(start[k]), int(start[k + 1])
            for sid, c in zip(
                ids[story[lo:hi]].tolist(),
                [1] * (hi - lo) if count is None else count[lo:hi].tolist(),
                strict=True,
            ):
                posting[sid] = posting.get(sid, 0) + c


class Vocabulary:
    """Document frequencies over the indexed documents, by slot.

    A counted term has a slot (``slots``) in an array of frequencies; a slot
    is reused once its frequency is 0. ``n_docs`` is the number of documents.
    ``moved`` holds each term counted since it was last emptied, with its
    frequency before (what consolidation must look at again); a rebuild
    from nothing records none.
    """

    __slots__ = ("_dfa", "_free", "_slot", "_sorted", "moved", "n_docs")

    def __init__(self) -> None:
        self._slot: dict[int, int] = {}
        self._dfa: NDArray[np.int64] = np.zeros(1024, dtype=np.int64)
        self._free: list[int] = []
        self.n_docs = 0
        self.moved: dict[int, int] = {}
        # Sorted vocabulary → slot, valid until the next change of ``_slot``.
        self._sorted: tuple[NDArray[np.uint32], NDArray[np.int64]] | None = None

    def fresh(self) -> bool:
        """Whether no term has a slot (then ``count_many`` numbers them in sorted order)."""
        if not self.n_docs and self._free:  # every count is back to 0: the slots restart
            self._free.clear()
            self._dfa[:] = 0
        return not self._slot and not self._free

    def slots(self, terms: NDArray[np.uint32]) -> NDArray[np.int64]:
        """Array slots of counted terms (every term of a live document or story)."""
        get = self._slot.__getitem__
        return np.fromiter(map(get, terms.tolist()), np.int64, len(terms))

    def slots_sorted(self, terms: NDArray[np.uint32]) -> NDArray[np.int64]:
        """``slots`` for many terms at once (vectorised when the vocabulary is fresh)."""
        if self._sorted is not None:
            vocab, vslot = self._sorted
            return vslot[np.searchsorted(vocab, terms)]
        vocab = np.fromiter(self._slot.keys(), np.uint32, len(self._slot))
        vslot = np.fromiter(self._slot.values(), np.int64, len(self._slot))
        vorder = np.argsort(vocab)
        return vslot[vorder][np.searchsorted(vocab[vorder], terms)]

    def df_of(self, term: int) -> int:
        """Documents holding ``term`` (0: none)."""
        k = self._slot.get(term)
        return 0 if k is None else int(self._dfa[k])

    def df(self, slots: NDArray[np.int64]) -> NDArray[np.int64]:
        """Documents holding the terms in ``slots``."""
        return self._dfa[slots]

    def idf(self, slots: NDArray[np.int64]) -> NDArray[np.float64]:
        # Smoothed IDF; the document being placed counts itself (df ≥ 1).
        return np.log((self.n_docs + 2) / (self._dfa[slots] + 1.0)) + 1.0

    def count(self, terms: NDArray[np.uint32], sign: int = 1) -> None:
        """Add (or remove) one document holding ``terms`` (distinct)."""
        self.n_docs += sign
        self._sorted = None
        listed = terms.tolist()
        found = list(map(self._slot.get, listed))
        if sign > 0 and None in found:
            found = [
                self._new_slot(t) if k is None else k for t, k in zip(listed, found, strict=True)
            ]
        # A document's terms are distinct: one fancy-indexed update counts them all.
        at = np.array(found, dtype=np.int64)
        dfa = self._dfa
        moved = self.moved
        for t, before in zip(listed, dfa[at].tolist(), strict=True):
            moved.setdefault(t, before)
        dfa[at] += sign
        if sign < 0 and (emptied := at[dfa[at] == 0].tolist()):
            gone = set(emptied)
            for t, k in zip(listed, found, strict=True):
                if k in gone:
                    del self._slot[t]
            self._free.extend(emptied)

    def count_many(self, uniq: NDArray[np.uint32], df: NDArray[np.int64], n_docs: int) -> None:
        """``count`` of ``n_docs`` documents: ``df[i]`` of them hold ``uniq[i]`` (sorted)."""
        self.n_docs += n_docs
        if not self._slot and not self._free:
            # Slots are positions in the sorted vocabulary.
            self._slot = dict(zip(uniq.tolist(), range(len(uniq)), strict=True))
            self._dfa = np.zeros(max(1024, 2 * len(uniq)), np.int64)
            self._dfa[: len(uniq)] = df
            self._sorted = (uniq, np.arange(len(uniq), dtype=np.int64))
            return
        slot, moved = self._slot, self.moved
        for t, c in zip(uniq.tolist(), df.tolist(), strict=True):
            k = slot.get(t)
            if k is None:
                k = self._new_slot(t)
            moved.setdefault(t, int(self._dfa[k]))
            self._dfa[k] += c
        self._sorted = None

    def _new_slot(self, term: int) -> int:
        self._sorted = None
        if self._free:
            k = self._free.pop()
        else:
            k = len(self._slot)
            if k >= len(self._dfa):
                self._dfa = np.concatenate((self._dfa, np.zeros_like(self._dfa)))
        self._slot[term] = k
        return k


__all__ = ["Postings", "Vocabulary"]
