"""The story index: documents, stories, postings and document frequencies kept
consistent through every change (count, add, merge, evict, rebuild).

Each part lives in its own module; this one only says what changes together:

    columns.DocColumns  per-document bags as columns
    store.StoryStore    per-story vectors and members
    postings.Postings   term → stories;  postings.Vocabulary  term → df
    scoring.Matcher     the decision (reads the parts above, writes nothing)
    rebuild.Rebuild     many documents at once
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

import numpy as np

from newsfold.dedup.stories.columns import DocColumns
from newsfold.dedup.stories.postings import Postings, Vocabulary
from newsfold.dedup.stories.rebuild import Rebuild
from newsfold.dedup.stories.scoring import Matcher, MatchSettings
from newsfold.dedup.stories.store import Story, StoryStore, add_member, vector_sum

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from newsfold.dedup.stories.scoring import StoryMatch


class StoryIndex:
    def __init__(
        self,
        *,
        threshold: float,
        merge_threshold: float,
        window_s: float,
        name_threshold: float = 0.0,
        query_terms: int = 12,
        max_candidates: int = 8,
    ) -> None:
        self.vocab = Vocabulary()
        self.docs = DocColumns()
        self.stories = StoryStore(self.docs)
        self.postings = Postings()
        self.matcher = Matcher(
            MatchSettings(
                threshold=threshold,
                merge_threshold=merge_threshold,
                window_s=window_s,
                name_threshold=name_threshold,
                query_terms=query_terms,
                max_candidates=max_candidates,
            ),
            vocab=self.vocab,
            postings=self.postings,
            stories=self.stories,
            docs=self.docs,
        )
        self._rebuild = Rebuild(self.docs, self.stories, self.postings, self.vocab)

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
        """The story this document belongs to (it must already be ``count``ed)."""
        return self.matcher.match(terms, weights, ts, lang, names, own_feed=own_feed)

    def members(self, story_id: int) -> list[int]:
        """The story's article ids, oldest first."""
        return [a for _, a in self.stories[story_id].members]

    def fits(self, story_id: int, ts: float) -> bool:
        """Whether a document at ``ts`` keeps the story within the window (``Matcher.fits``)."""
        return self.matcher.fits(story_id, ts)

    def count(self, terms: NDArray[np.uint32]) -> None:
        """Count a document about to be placed in the document frequencies."""
        self.vocab.count(terms)

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
        """Attach a document (already counted) to a story, founding it if new."""
        slots = self.vocab.slots(terms)
        self.docs.append_one(article_id, story_id, ts, (terms, weights, names), slots)
        story = self.stories.find(story_id)
        if story is None:
            story = Story(terms.copy(), weights.copy(), names.copy(), ts, lang, slots=slots)
            self.stories[story_id] = story
        else:
            add_member(story, terms, weights, names, slots)
            story.last_ts = max(story.last_ts, ts)
        bisect.insort(story.members, (ts, article_id))
        self.postings.add(terms, story_id)

    def bulk_load(
        self,
        article_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        blobs: list[bytes],
        ts: NDArray[np.float64],
        langs: NDArray[np.integer[Any]],
    ) -> None:
        """``count`` + ``add`` of documents (in time order) given their stored sketches."""
        self._rebuild.load(article_ids, story_ids, blobs, ts, langs)

    def merge(self, survivor: int, absorbed: int) -> None:
        keep, gone = self.stories.take(survivor), self.stories.pop(absorbed)
        keep.terms, keep.weights, keep.names = vector_sum(
            (keep.terms, keep.weights, keep.names), (gone.terms, gone.weights, gone.names)
        )
        keep.slots = self.vocab.slots(keep.terms)
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        keep.members = sorted(keep.members + gone.members)
        for _, article_id in gone.members:
            self.docs.move(article_id, survivor)
        self.postings.move(gone.terms, absorbed, survivor)

    def move(self, article_id: int, story_id: int) -> None:
        """Move a document to another story (founding it if new); frequencies unchanged."""
        old_id = self.docs.story_of(article_id)
        if old_id is None or old_id == story_id:
            return
        old = self.stories.take(old_id)
        doc = self.docs[article_id]
        old.members.remove((doc.ts, article_id))
        self.postings.remove(doc.terms, old_id)
        lang = old.lang
        if old.members:
            old.terms, old.weights, old.names = vector_sum(
                (old.terms, old.weights, old.names), (doc.terms, -doc.weights, -doc.names)
            )
            old.slots = self.vocab.slots(old.terms)
            old.last_ts = old.members[-1][0]
        else:
            del self.stories[old_id]
        slots = doc.slots.astype(np.int64)
        new = self.stories.find(story_id)
        if new is None:
            new = Story(doc.terms, doc.weights, doc.names, doc.ts, lang, slots=slots)
            self.stories[story_id] = new
        else:
            add_member(new, doc.terms, doc.weights, doc.names, slots)
            new.last_ts = max(new.last_ts, doc.ts)
        bisect.insort(new.members, (doc.ts, article_id))
        self.postings.add(doc.terms, story_id)
        self.docs.move(article_id, story_id)

    def evict(self, article_id: int) -> None:
        story_id = self.docs.story_of(article_id)
        if story_id is None:
            return
        # The story first: a one-member story read from the columns reads its member.
        story = self.stories.take(story_id)
        doc = self.docs.pop(article_id)
        assert doc is not None
        self.vocab.count(doc.terms, -1)
        story.members.remove((doc.ts, article_id))
        self.postings.remove(doc.terms, doc.story)
        if not story.members:
            del self.stories[doc.story]
            return
        story.terms, story.weights, story.names = vector_sum(
            (story.terms, story.weights, story.names), (doc.terms, -doc.weights, -doc.names)
        )
        story.slots = self.vocab.slots(story.terms)
        # ``last_ts`` is the newest remaining member's time (members are kept in time order).
        story.last_ts = story.members[-1][0]


__all__ = ["StoryIndex"]
