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
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

FIXED = 256  # weights are stored and summed as integers in 1/256 units
_COUNT = struct.Struct("<H")


Bag = tuple["NDArray[np.uint32]", "NDArray[np.int64]", "NDArray[np.int64]"]


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
    bits = np.frombuffer(blob, dtype=np.uint8, count=(n + 7) // 8, offset=start)
    flags = np.unpackbits(bits, count=n, bitorder="little").astype(bool)
    return terms, weights, np.where(flags, weights, 0)


def decode_many(blobs: list[bytes]) -> list[Bag]:
    """``decode`` of many blobs with one parse of their concatenation (the rebuild path)."""
    if not blobs:
        return []
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    sizes = np.fromiter(map(len, blobs), np.int64, len(blobs))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    counts = data[starts].astype(np.int64) | (data[starts + 1].astype(np.int64) << 8)
    base = np.repeat(starts, counts)
    pos = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    n_rep = np.repeat(counts, counts)
    t_at = base + _COUNT.size + 4 * pos
    w_at = base + _COUNT.size + 4 * n_rep + 2 * pos
    f_at = base + _COUNT.size + 6 * n_rep + pos // 8
    terms = (
        data[t_at].astype(np.uint32)
        | (data[t_at + 1].astype(np.uint32) << 8)
        | (data[t_at + 2].astype(np.uint32) << 16)
        | (data[t_at + 3].astype(np.uint32) << 24)
    )
    weights = data[w_at].astype(np.int64) | (data[w_at + 1].astype(np.int64) << 8)
    flags = (data[f_at] >> (pos % 8).astype(np.uint8)) & 1
    names = np.where(flags.astype(bool), weights, 0)
    cuts = np.cumsum(counts)[:-1]
    return list(
        zip(np.split(terms, cuts), np.split(weights, cuts), np.split(names, cuts), strict=True)
    )


@dataclass(slots=True)
class _Story:
    terms: NDArray[np.uint32]
    weights: NDArray[np.int64]
    names: NDArray[np.int64]  # the members' weights of terms they use as names
    last_ts: float
    lang: int
    members: list[tuple[float, int]] = field(default_factory=list)  # (ts, article id), sorted
    slots: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))


@dataclass(slots=True)
class _Doc:
    story: int
    terms: NDArray[np.uint32]
    weights: NDArray[np.int64]
    names: NDArray[np.int64]
    ts: float
    slots: NDArray[np.int64] | None = None  # filled on first use; stable while it is live


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
        max_candidates: int = 32,
    ) -> None:
        self.threshold = threshold
        self.name_threshold = name_threshold
        self.merge_threshold = merge_threshold
        self.window_s = window_s
        self.query_terms = query_terms
        self.max_candidates = max_candidates
        self.df: dict[int, int] = {}
        # Document frequencies mirrored in an array (term → slot) so IDF of a
        # whole story vector is one gather; a slot is reused once its df is 0.
        self._slot: dict[int, int] = {}
        self._dfa: NDArray[np.int64] = np.zeros(1024, dtype=np.int64)
        self._free: list[int] = []
        self.n_docs = 0
        self.stories: dict[int, _Story] = {}
        self.postings: dict[int, dict[int, int]] = {}  # term → story → members with it
        self.docs: dict[int, _Doc] = {}
        # Postings from ``bulk_add``, as sorted arrays, moved into ``postings``
        # one term at a time on first use (a rebuild need not touch every term).
        self._bulk_terms: NDArray[np.uint32] = np.empty(0, np.uint32)
        self._bulk_start: NDArray[np.int64] = np.empty(0, np.int64)
        self._bulk_story: NDArray[np.int64] = np.empty(0, np.int64)
        self._bulk_count: NDArray[np.int64] = np.empty(0, np.int64)
        self._bulk_taken: set[int] = set()

    def _bulk_posting(self, term: int) -> dict[int, int]:
        """Read-only: the posting of ``term`` still held in the bulk arrays, or {}."""
        bt = self._bulk_terms
        if not len(bt) or term in self._bulk_taken:
            return {}
        return self._posting(term)

    def _posting(self, term: int) -> dict[int, int]:
        """The (mutable) posting of ``term``, created if absent."""
        found = self.postings.get(term)
        if found is not None:
            return found
        posting: dict[int, int] = {}
        bt = self._bulk_terms
        if len(bt) and term not in self._bulk_taken:
            k = int(np.searchsorted(bt, term))
            if k < len(bt) and int(bt[k]) == term:
                self._bulk_taken.add(term)
                lo, hi = int(self._bulk_start[k]), int(self._bulk_start[k + 1])
                posting = dict(
                    zip(
                        self._bulk_story[lo:hi].tolist(),
                        self._bulk_count[lo:hi].tolist(),
                        strict=True,
                    )
                )
        self.postings[term] = posting
        return posting

    def _flush_bulk(self) -> None:
        for t in self._bulk_terms.tolist():
            self._posting(t)
        for t in [t for t, p in self.postings.items() if not p]:
            del self.postings[t]
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
        named = names * idf if names is not None else None
        guard = named is not None and self.name_threshold > 0 and bool(named.any())
        ranked = self._voted(terms, vec, ts, lang)
        scored: list[tuple[float, int]] = []
        for story_id in ranked:
            story = self.stories[story_id]
            sim = self._cosine(terms, vec, story.terms, story.weights, story.slots)
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
        for k in top.tolist():
            term = int(terms[k])
            found = self.postings.get(term)
            for story_id in found if found is not None else self._bulk_posting(term):
                votes[story_id] = votes.get(story_id, 0.0) + float(vec[k])
        horizon = ts - self.window_s
        ranked = [
            s
            for s in sorted(votes, key=lambda s: (-votes[s], s))
            if self.stories[s].last_ts >= horizon
            and not (lang and self.stories[s].lang and self.stories[s].lang != lang)
        ]
        return ranked[: self.max_candidates]

    def neighbours(
        self, terms: NDArray[np.uint32], weights: NDArray[np.int64], ts: float, lang: int, k: int
    ) -> list[int]:
        """Recent members of the ``k`` best-voted stories: copy candidates LSH cannot see."""
        if not len(terms):
            return []
        ranked = self._voted(terms, weights * self._idf_slots(self.slots(terms)), ts, lang)
        return [a for s in ranked[:k] for _, a in self.stories[s].members[-32:]]

    def _story_cosine(self, a: int, b: int) -> float:
        sa, sb = self.stories[a], self.stories[b]
        vec = sa.weights * self._idf_slots(sa.slots)
        return self._cosine(sa.terms, vec, sb.terms, sb.weights, sb.slots)

    def _closest_member(
        self, story_id: int, terms: NDArray[np.uint32], vec: NDArray[np.float64]
    ) -> int:
        # The newest members only: bounded cost, and recent coverage is the best evidence.
        members = self.stories[story_id].members[-16:]
        best, best_sim = members[-1][1], -1.0
        for _, article_id in members:
            doc = self.docs[article_id]
            if doc.slots is None:
                doc.slots = self.slots(doc.terms)
            sim = self._cosine(terms, vec, doc.terms, doc.weights, doc.slots)
            if sim > best_sim or (sim == best_sim and article_id < best):
                best, best_sim = article_id, sim
        return best

    # ------------------------------------------------------------------ writes
    def count(self, terms: NDArray[np.uint32], sign: int = 1) -> None:
        """Add (or remove) one document to the document frequencies."""
        self.n_docs += sign
        df, slot, dfa = self.df, self._slot, self._dfa
        for t in terms.tolist():
            n = df.get(t, 0) + sign
            if n:
                df[t] = n
                k = slot.get(t)
                if k is None:
                    k = self._new_slot(t)
                    dfa = self._dfa
                dfa[k] = n
            else:
                del df[t]
                k = slot.pop(t)
                dfa[k] = 0
                self._free.append(k)

    def _new_slot(self, term: int) -> int:
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
        self.docs[article_id] = _Doc(story_id, terms, weights, names, ts)
        story = self.stories.get(story_id)
        if story is None:
            story = _Story(terms.copy(), weights.copy(), names.copy(), ts, lang, slots=slots)
            self.stories[story_id] = story
        else:
            story.terms, story.weights, story.names = _sum(
                (story.terms, story.weights, story.names), (terms, weights, names)
            )
            story.slots = self.slots(story.terms)
            story.last_ts = max(story.last_ts, ts)
        bisect.insort(story.members, (ts, article_id))
        for t in terms.tolist():
            posting = self._posting(t)
            posting[story_id] = posting.get(story_id, 0) + 1

    def bulk_add(
        self,
        article_ids: list[int],
        story_ids: list[int],
        bags: list[Bag],
        ts: list[float],
        langs: list[int],
    ) -> None:
        """``count`` + ``add`` for many documents (in time order), one sum per story."""
        if not article_ids:
            return
        all_terms = np.concatenate([b[0] for b in bags])
        uniq, counts = np.unique(all_terms, return_counts=True)
        self.n_docs += len(article_ids)
        df, slot = self.df, self._slot
        for t, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            n = df.get(t, 0) + c
            df[t] = n
            k = slot.get(t)
            if k is None:
                k = self._new_slot(t)
            self._dfa[k] = n
        self._flush_bulk()
        # One sort over (story, term) keys for every document: per-story sums
        # and member counts without a loop over stories' terms.
        usids, sidx = np.unique(np.asarray(story_ids, np.int64), return_inverse=True)
        lens = np.fromiter((len(b[0]) for b in bags), np.int64, len(bags))
        parts_s = [np.repeat(sidx, lens)]
        parts_t = [all_terms]
        parts_w = [np.concatenate([b[1] for b in bags])]
        parts_n = [np.concatenate([b[2] for b in bags])]
        parts_m = [np.ones(len(all_terms), np.int64)]
        for k, sid in enumerate(usids.tolist()):
            old = self.stories.get(sid)
            if old is not None:
                parts_s.append(np.full(len(old.terms), k, np.int64))
                parts_t.append(old.terms)
                parts_w.append(old.weights)
                parts_n.append(old.names)
                parts_m.append(np.zeros(len(old.terms), np.int64))
        key = (np.concatenate(parts_s).astype(np.uint64) << np.uint64(32)) | np.concatenate(
            parts_t
        ).astype(np.uint64)
        ukey, inverse = np.unique(key, return_inverse=True)
        wsum = np.rint(np.bincount(inverse, weights=np.concatenate(parts_w))).astype(np.int64)
        nsum = np.rint(np.bincount(inverse, weights=np.concatenate(parts_n))).astype(np.int64)
        msum = np.bincount(inverse, weights=np.concatenate(parts_m)).astype(np.int64)
        ust = (ukey >> np.uint64(32)).astype(np.int64)
        utm = (ukey & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        vocab = np.fromiter(self._slot.keys(), np.uint32, len(self._slot))
        vslot = np.fromiter(self._slot.values(), np.int64, len(self._slot))
        vorder = np.argsort(vocab)
        uslots = vslot[vorder][np.searchsorted(vocab[vorder], utm)]
        bounds = np.searchsorted(ust, np.arange(len(usids) + 1))
        members: dict[int, list[tuple[float, int]]] = {}
        first_row: dict[int, int] = {}
        for i, sid in enumerate(story_ids):
            members.setdefault(sid, []).append((ts[i], article_ids[i]))
            first_row.setdefault(sid, i)
            self.docs[article_ids[i]] = _Doc(sid, *bags[i], ts[i])
        for k, sid in enumerate(usids.tolist()):
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            new = members[sid]
            story = self.stories.get(sid)
            if story is None:
                i0 = first_row[sid]
                story = _Story(utm[lo:hi], wsum[lo:hi], nsum[lo:hi], ts[i0], langs[i0])
                self.stories[sid] = story
            else:
                story.terms, story.weights, story.names = utm[lo:hi], wsum[lo:hi], nsum[lo:hi]
            story.slots = uslots[lo:hi]
            story.last_ts = max(story.last_ts, *(m[0] for m in new))
            story.members = sorted(story.members + new)
        live = msum > 0
        pair_terms = [utm[live]]
        pair_story = [usids[ust[live]]]
        pair_count = [msum[live]]
        pt = np.concatenate(pair_terms)
        order = np.argsort(pt, kind="stable")
        pt = pt[order]
        self._bulk_story = np.concatenate(pair_story)[order]
        self._bulk_count = np.concatenate(pair_count)[order]
        self._bulk_terms, first = np.unique(pt, return_index=True)
        self._bulk_start = np.append(first, len(pt)).astype(np.int64)
        # Terms already in ``postings`` (from earlier ``add`` calls) take theirs now.
        for t in self._bulk_terms.tolist() if self.postings else ():
            if t in self.postings:
                k = int(np.searchsorted(self._bulk_terms, t))
                lo, hi = int(self._bulk_start[k]), int(self._bulk_start[k + 1])
                posting = self.postings[t]
                for sid, c in zip(
                    self._bulk_story[lo:hi].tolist(), self._bulk_count[lo:hi].tolist(), strict=True
                ):
                    posting[sid] = posting.get(sid, 0) + c
                self._bulk_taken.add(t)

    def merge(self, survivor: int, absorbed: int) -> None:
        keep, gone = self.stories[survivor], self.stories.pop(absorbed)
        keep.terms, keep.weights, keep.names = _sum(
            (keep.terms, keep.weights, keep.names), (gone.terms, gone.weights, gone.names)
        )
        keep.slots = self.slots(keep.terms)
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        keep.members = sorted(keep.members + gone.members)
        for _, article_id in gone.members:
            self.docs[article_id].story = survivor
        for t in gone.terms.tolist():
            posting = self._posting(t)
            n = posting.pop(absorbed)
            posting[survivor] = posting.get(survivor, 0) + n

    def evict(self, article_id: int) -> None:
        doc = self.docs.pop(article_id, None)
        if doc is None:
            return
        self.count(doc.terms, -1)
        story = self.stories[doc.story]
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


def _common(
    a: NDArray[np.uint32], b: NDArray[np.uint32]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Positions in ``a`` and in ``b`` of their common terms (both sorted, unique)."""
    if not len(b):
        return np.empty(0, np.intp), np.empty(0, np.intp)
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    i = np.flatnonzero(b[at] == a)
    return i, at[i]


def _sum(a: Bag, b: Bag) -> Bag:
    """Sparse sum of two sorted term vectors, dropping terms that reach zero."""
    terms, inverse = np.unique(np.concatenate((a[0], b[0])), return_inverse=True)
    weights = np.bincount(inverse, weights=np.concatenate((a[1], b[1])), minlength=len(terms))
    names = np.bincount(inverse, weights=np.concatenate((a[2], b[2])), minlength=len(terms))
    total = np.rint(weights).astype(np.int64)
    keep = total != 0
    return terms[keep], total[keep], np.rint(names[keep]).astype(np.int64)


__all__ = ["StoryIndex", "StoryMatch", "decode", "encode"]
