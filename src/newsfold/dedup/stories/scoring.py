"""Which story a document joins: the story tier's algorithm.

A document's bag becomes a TF-IDF vector with the document frequencies of
the window (``Vocabulary.idf``). Candidates are the open stories sharing the
document's most distinctive terms (``candidates``); the document joins the
one whose vector is the most similar by cosine, if it clears the threshold
and shares enough of the document's names (``names_shared``). Another
candidate that clears the merge threshold, with the best one and with the
document, is a story the document bridges: the two merge.

Everything here reads the index and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from newsfold.dedup.stories.columns import DocColumns
    from newsfold.dedup.stories.postings import Postings, Vocabulary
    from newsfold.dedup.stories.store import Story, StoryStore

# A vector to compare against: sorted terms, integer weights, their vocabulary slots.
Vector = tuple["NDArray[np.uint32]", "NDArray[Any]", "NDArray[Any]"]


@dataclass(frozen=True, slots=True)
class StoryMatch:
    story_id: int
    similarity: float
    article_id: int  # the member closest to the new document: the evidence
    merged: tuple[int, ...]  # other stories the document bridges


@dataclass(frozen=True, slots=True)
class MatchSettings:
    threshold: float  # least cosine to join a story
    merge_threshold: float  # least cosine, both ways, to bridge two stories
    window_s: float  # the longest a story may span, its members' story times first to last
    name_threshold: float = 0.0  # least share of the document's names the story must hold
    query_terms: int = 12  # the document's most distinctive terms that find candidates
    max_candidates: int = 8  # the true story is among the best voted; each costs a cosine


class Matcher:
    """Scores a document against the stories of one index."""

    __slots__ = ("docs", "postings", "settings", "stories", "vocab")

    def __init__(
        self,
        settings: MatchSettings,
        *,
        vocab: Vocabulary,
        postings: Postings,
        stories: StoryStore,
        docs: DocColumns,
    ) -> None:
        self.settings = settings
        self.vocab, self.postings, self.stories, self.docs = vocab, postings, stories, docs

    def match(
        self,
        terms: NDArray[np.uint32],
        weights: NDArray[np.int64],
        ts: float,
        lang: int,
        names: NDArray[np.int64] | None = None,
        *,
        own_feed: Callable[[int], float] | None = None,
    ) -> StoryMatch | None:
        """The story this document belongs to (it must already be counted in the vocabulary).

        ``own_feed(story_id)`` is the least similarity a story takes for holding only the
        document's feed's reports (0 when it holds others'): see ``Deduplicator``.
        """
        if not len(terms):
            return None
        s = self.settings
        idf = self.vocab.idf(self.vocab.slots(terms))
        vec = weights * idf
        ranked = self.candidates(terms, vec, ts, lang)
        if not ranked:
            return None
        named = names * idf if names is not None else None
        guard = named is not None and s.name_threshold > 0 and bool(named.any())
        cands = [self.stories[c] for c in ranked]
        sims = self.cosines(terms, vec, [(c.terms, c.weights, c.slots) for c in cands]).tolist()
        scored: list[tuple[float, int]] = []
        for story_id, story, sim in zip(ranked, cands, sims, strict=True):
            if sim < s.threshold:
                continue
            if own_feed is not None and sim < own_feed(story_id):
                continue
            if (
                guard
                and named is not None
                and story.names.any()
                and names_shared(terms, named, story) < s.name_threshold
            ):
                continue
            scored.append((sim, story_id))
        if not scored:
            return None
        scored.sort(key=lambda p: (-p[0], p[1]))
        sim, best = scored[0]
        # A bridge merges stories only while the whole stays within the window too.
        first, last, _ = self.stories.meta(best)
        first, last = min(first, ts), max(last, ts)
        merged: list[int] = []
        for other_sim, other in scored[1:]:
            if other_sim < s.merge_threshold:
                continue
            o_first, o_last, _ = self.stories.meta(other)
            if max(last, o_last) - min(first, o_first) > s.window_s:
                continue
            if self.story_cosine(best, other) >= s.merge_threshold:
                merged.append(other)
                first, last = min(first, o_first), max(last, o_last)
        closest = self.closest_member(best, terms, vec)
        return StoryMatch(best, sim, closest, tuple(merged))

    def fits(self, story_id: int, ts: float) -> bool:
        """Whether a document at ``ts`` keeps the story within the window.

        The story's span with the document, max(last, t) - min(first, t), must
        not exceed ``window_s``: a story cannot grow by chaining, and a late
        report still joins the story of its day.
        """
        first_ts, last_ts, _ = self.stories.meta(story_id)
        return max(last_ts, ts) - min(first_ts, ts) <= self.settings.window_s

    def candidates(
        self, terms: NDArray[np.uint32], vec: NDArray[np.float64], ts: float, lang: int
    ) -> list[int]:
        """Open stories sharing the document's most distinctive terms, best voted first."""
        s = self.settings
        top = np.argsort(-vec, kind="stable")[: s.query_terms]
        votes: dict[int, float] = {}
        get, stories_of = votes.get, self.postings.stories
        for term, weight in zip(terms[top].tolist(), vec[top].tolist(), strict=True):
            for story_id in stories_of(term):
                votes[story_id] = get(story_id, 0.0) + weight
        meta, window = self.stories.meta, s.window_s
        ranked = []
        for story_id in sorted(votes, key=lambda c: (-votes[c], c)):
            first_ts, last_ts, story_lang = meta(story_id)
            # Only a story the document keeps within the window: max(last, t) - min(first, t).
            if max(last_ts, ts) - min(first_ts, ts) <= window and not (
                lang and story_lang and story_lang != lang
            ):
                ranked.append(story_id)
                if len(ranked) >= s.max_candidates:
                    break
        return ranked

    def cosine(self, terms: NDArray[np.uint32], vec: NDArray[np.float64], other: Vector) -> float:
        """TF-IDF cosine of the vector ``vec`` (over ``terms``) and ``other``."""
        o_terms, o_weights, o_slots = other
        i, j = _common(terms, o_terms)
        if not len(i):
            return 0.0
        o_vec = o_weights * self.vocab.idf(o_slots)
        norm = float(np.sqrt(o_vec @ o_vec) * np.sqrt(vec @ vec))
        return float(vec[i] @ o_vec[j]) / norm if norm else 0.0

    def cosines(
        self, terms: NDArray[np.uint32], vec: NDArray[np.float64], others: list[Vector]
    ) -> NDArray[np.float64]:
        """``cosine`` against many vectors in one pass."""
        lens = np.fromiter((len(o[0]) for o in others), np.int64, len(others))
        if not len(terms) or not lens.sum():
            return np.zeros(len(others))
        which = np.repeat(np.arange(len(others)), lens)
        o_terms = np.concatenate([o[0] for o in others])
        other = np.concatenate([o[1] for o in others]) * self.vocab.idf(
            np.concatenate([o[2] for o in others])
        )
        at = np.minimum(np.searchsorted(terms, o_terms), len(terms) - 1)
        mine = np.where(terms[at] == o_terms, vec[at], 0.0)
        dots = np.bincount(which, weights=mine * other, minlength=len(others))
        norms = np.sqrt(np.bincount(which, weights=other * other, minlength=len(others)))
        norms *= float(np.sqrt(vec @ vec))
        return np.divide(dots, norms, out=np.zeros(len(others)), where=norms > 0)

    def story_cosine(self, a: int, b: int) -> float:
        sa, sb = self.stories[a], self.stories[b]
        vec = sa.weights * self.vocab.idf(sa.slots)
        return self.cosine(sa.terms, vec, (sb.terms, sb.weights, sb.slots))

    def closest_member(
        self, story_id: int, terms: NDArray[np.uint32], vec: NDArray[np.float64]
    ) -> int:
        # The newest members only: bounded cost, and recent coverage is the best evidence.
        members = [a for _, a in self.stories[story_id].members[-16:]]
        if len(members) == 1:
            return members[0]
        sims = self.cosines(terms, vec, [self.docs.vector(a) for a in members])
        # Highest similarity; the smallest id among equals.
        return min(zip(sims.tolist(), members, strict=True), key=lambda p: (-p[0], p[1]))[1]


def names_shared(terms: NDArray[np.uint32], names: NDArray[np.float64], story: Story) -> float:
    """Share of the document's IDF-weighted names that the story also names.

    Two events of one kind (two rehab stays, two heavyweight fights) share
    their vocabulary but not their specifics: the other people, places,
    venues and years. Names survive paraphrase, so a report of the same
    event shares them with its story even when its wording does not.
    """
    i, j = _common(terms, story.terms)
    total = float(names.sum())
    return float(names[i][story.names[j] > 0].sum()) / total if total else 1.0


def _common(
    a: NDArray[np.uint32], b: NDArray[np.uint32]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Positions in ``a`` and in ``b`` of their common terms (both sorted, unique)."""
    if not len(b):
        return np.empty(0, np.intp), np.empty(0, np.intp)
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    i = np.flatnonzero(b[at] == a)
    return i, at[i]


__all__ = ["MatchSettings", "Matcher", "StoryMatch", "Vector", "names_shared"]
