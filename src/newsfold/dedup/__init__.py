"""Deduplication: exact repeats, near-duplicate copies and stories, incrementally.

Pure and in memory: the pipeline hands each new article to ``place`` in time
order (inside its transaction), stores the ``Sketch`` blobs and the returned
``Placement``, and at start-up rebuilds the index with ``load`` from what it
stored. Nothing here reads text twice, touches the database or the clock.

    DedupDoc ──sketch──▶ Sketch ──place──▶ Placement (copy Join, story Join, merges)
    StoredDoc… ──load──▶ the same state as an uninterrupted run

Cluster ids are the article id of the founding article, at both levels; a
story merge keeps the smaller id (see ``Placement.merged_stories``).
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from newsfold.dedup import copies, minhash, stories
from newsfold.dedup.copies import LEAD_WORDS, CopyIndex
from newsfold.dedup.feed_titles import FeedTitles, pair_agrees, title_terms
from newsfold.dedup.identifiers import identifier_keys
from newsfold.dedup.keys import content_key, exact_keys, title_keys, title_keys_many
from newsfold.dedup.shingles import shingle_hashes_of, token_hashes, words
from newsfold.dedup.stories import StoryIndex, partition
from newsfold.dedup.terms import story_terms
from newsfold.types import Join, Placement, Tier

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from numpy.typing import NDArray

    from newsfold.config import DedupSettings

_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class DedupDoc:
    """What dedup needs of a normalised article (``text`` is its comparison text)."""

    article_id: int
    feed_id: int
    published: datetime  # story time: the clock stories are joined by
    title: str
    text: str
    url: str | None
    content_hash: str
    language: str | None
    seen: datetime | None = None  # first seen (None: at ``published``); the index keeps it


@dataclass(frozen=True, slots=True)
class Sketch:
    """Computed once per article and stored: enough to re-place it without its text."""

    signature: bytes  # shingle count + num_perm × uint32 MinHash values
    story: bytes  # strongest terms: count + uint32 hashes + uint16 fixed-point weights
    # The LSH band keys, then the lead keys (uint64), computed for a whole batch
    # where the sketching runs (a worker process) so placing need not. Never
    # stored: a sketch without them (b"") has its keys computed when placed.
    keys: bytes = field(default=b"", compare=False)
    # The title's terms (``feed_titles.title_terms``), read with the story terms; also never
    # stored (None: computed when placed).
    title_terms: frozenset[str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StoredDoc:
    """An article inside the window, as the pipeline stored it."""

    article_id: int
    feed_id: int
    published: datetime
    url: str | None
    content_hash: str
    language: str | None
    signature: bytes
    story: bytes
    copy_id: int
    story_id: int  # the current (post-merge) story id
    seen: datetime | None = None  # first seen (None: at ``published``)
    title: str = ""


class Deduplicator:
    """Places articles into copy groups and stories, one at a time, in time order."""

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        bands, rows = lsh_params(settings)
        self.bands, self.rows = bands, rows
        self.copies = CopyIndex(
            settings.num_perm,
            bands,
            rows,
            copy_threshold=settings.copy_threshold,
            containment_threshold=settings.containment_threshold,
            min_shingles=settings.min_shingles,
        )
        self.stories = StoryIndex(
            threshold=settings.story_threshold,
            merge_threshold=settings.story_merge_threshold,
            name_threshold=settings.story_name_threshold,
            window_s=settings.story_window_days * _DAY_S,
        )
        self._languages: dict[str, int] = {}
        self._feed_of: dict[int, int] = {}  # article id → feed id (0: no feed), in the window
        # Stories that lost documents since the last consolidation: what is left of
        # them is clustered again (a component without a document may fall apart).
        self._shrunk: set[int] = set()
        self.partition = partition.PartitionSettings(
            threshold=settings.story_link_threshold,
            window_s=settings.story_window_days * _DAY_S,
            linkage=settings.story_linkage,
            name_threshold=settings.story_link_name_threshold,
            same_feed_threshold=settings.story_same_feed_threshold,
            # An edge is a pair one-pass placing would join; complete link may then
            # keep a cluster together down to ``story_link_threshold``.
            edge_threshold=settings.story_threshold,
            length_exponent=settings.story_length_exponent,
            length_cap=settings.story_length_cap,
            short_terms=settings.story_short_terms,
        )
        self._titles = FeedTitles()
        self.scorer = partition.DocScorer(
            self.stories,
            self.partition,
            self._feed_of,
            lambda a, b: pair_agrees(self._titles.of(a), self._titles.of(b)),
        )

    def __len__(self) -> int:
        return self.copies.live

    # ----------------------------------------------------------------- sketches
    def _tokens(self, doc: DedupDoc) -> list[str]:
        # A title-only entry is compared by its title rather than not at all.
        return words(doc.text) or words(doc.title)

    def _story_blob(self, doc: DedupDoc) -> tuple[bytes, frozenset[str]]:
        """The story sketch, and the title's terms (read on the way)."""
        s = self.settings
        in_title: set[str] = set()
        terms, weights, names = story_terms(
            doc.title,
            doc.text,
            title_boost=s.story_title_boost,
            name_boost=s.story_name_boost,
            max_terms=s.story_terms,
            language_code=doc.language,
            title_terms=in_title,
        )
        return stories.encode(terms, weights, names), title_terms(doc.title, doc.language, in_title)

    def _shingles(self, doc: DedupDoc) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """All shingle hashes, and those of the lead (the first ``LEAD_WORDS`` words)."""
        w = token_hashes(self._tokens(doc))  # each token hashed once for both
        size = self.settings.shingle_size
        hashes = shingle_hashes_of(w, size)
        lead = hashes if len(w) <= LEAD_WORDS else shingle_hashes_of(w[:LEAD_WORDS], size)
        return hashes, lead

    def sketch(self, doc: DedupDoc) -> Sketch:
        return self.sketch_many([doc])[0]

    def sketch_many(self, docs: Sequence[DedupDoc]) -> list[Sketch]:
        pairs = [self._shingles(d) for d in docs]
        sigs = minhash.signatures([h for h, _ in pairs], self.settings.num_perm)
        keys = self.copies.keys_many(sigs, [len(h) for h, _ in pairs], [ld for _, ld in pairs])
        blobs = [self._story_blob(doc) for doc in docs]
        return [
            Sketch(
                minhash.encode(sig, len(hashes), lead, identifier_keys(doc.text)),
                story,
                k,
                in_title,
            )
            for doc, (hashes, lead), sig, k, (story, in_title) in zip(
                docs, pairs, sigs, keys, blobs, strict=True
            )
        ]

    # ------------------------------------------------------------------ placing
    def _lang(self, language: str | None) -> int:
        if not language or not self.settings.same_language_only:
            return 0
        return self._languages.setdefault(language, len(self._languages) + 1)

    def place(self, doc: DedupDoc, sketch: Sketch) -> Placement:
        """Decide where ``doc`` belongs and index it (call in time order)."""
        sig, card = minhash.decode(sketch.signature)
        lead = minhash.decode_lead(sketch.signature)
        terms, weights, names = stories.decode(sketch.story)
        ts = doc.published.timestamp()
        held = max(ts, doc.seen.timestamp()) if doc.seen is not None else ts
        lang = self._lang(doc.language)
        ids = minhash.decode_ids(sketch.signature)
        title, headline = title_keys(doc.title)
        keys = exact_keys(
            content_key(doc.content_hash, card, title, self.settings.min_shingles), doc.url, card
        )
        # The copy table keeps the low 32 bits of the title and URL keys (the URL's is last).
        origin = (doc.feed_id, title & 0xFFFFFFFF, keys[-1] & 0xFFFFFFFF if doc.url else 0)
        if sketch.keys:
            self.copies.prime_keys(sig, card, sketch.keys)
        self.stories.count(terms)
        merged: tuple[int, ...] = ()

        def in_title() -> frozenset[str]:
            if sketch.title_terms is not None:
                return sketch.title_terms
            return title_terms(doc.title, doc.language)

        # A copy joins its original's story too, so only while that story stays within
        # the window (see ``StoryIndex.fits``): a text republished a year later is news again.
        def fits(story_id: int) -> bool:
            return self.stories.fits(story_id, ts)

        if (same := self.copies.exact(keys, fits, origin)) is not None:
            copy = Join(same.copy_id, Tier.EXACT, 1.0, same.article_id)
            story = Join(same.story_id, Tier.EXACT, 1.0, same.article_id)
        elif (near := self.copies.headline(headline, doc.feed_id, card, fits)) is not None or (
            near := self.copies.near(sig, card, lang, lead, fits, ids=ids, origin=origin)
        ) is not None:
            copy = Join(near.copy_id, Tier.NEAR, near.similarity, near.article_id)
            story = Join(near.story_id, Tier.NEAR, near.similarity, near.article_id)
        elif (
            found := self.stories.match(
                terms, weights, ts, lang, names, own_feed=self._own_feed(doc, in_title)
            )
        ) is not None:
            copy = Join(doc.article_id, Tier.NEW, 1.0, None)
            survivor = min((found.story_id, *found.merged))
            merged = tuple(sorted(s for s in (found.story_id, *found.merged) if s != survivor))
            story = Join(survivor, Tier.STORY, found.similarity, found.article_id)
        else:
            copy = Join(doc.article_id, Tier.NEW, 1.0, None)
            story = Join(doc.article_id, Tier.NEW, 1.0, None)

        for absorbed in merged:
            self.stories.merge(story.cluster_id, absorbed)
            self.copies.rename_story(absorbed, story.cluster_id)
        self._feed_of[doc.article_id] = doc.feed_id
        if doc.feed_id:
            self._titles.add(doc.article_id, doc.feed_id, in_title())
        self.copies.add(
            article_id=doc.article_id,
            ts=ts,
            held=held,
            sig=sig,
            card=card,
            lead=lead,
            exact_keys=keys,
            lang=lang,
            copy_id=copy.cluster_id,
            story_id=story.cluster_id,
            ids=ids,
            origin=origin,
            headline=headline,
        )
        self.stories.add(
            doc.article_id,
            story_id=story.cluster_id,
            terms=terms,
            weights=weights,
            names=names,
            ts=ts,
            lang=lang,
        )
        return Placement(doc.article_id, copy, story, merged)

    def _own_feed(
        self, doc: DedupDoc, in_title: Callable[[], frozenset[str]]
    ) -> Callable[[int], float] | None:
        """The least similarity a story takes from ``doc`` for being of ``doc``'s feed alone
        (0: a story with other feeds' reports; None: no feed known).

        A story of the document's own feed alone takes ``story_same_feed_threshold``, and
        then only when a title in it shares a subject term with ``doc``'s (``FeedTitles``):
        an outlet's series, templates and running topics make its items alike.
        """
        if not doc.feed_id:
            return None
        feed_of, feed = self._feed_of.get, doc.feed_id
        strict = self.settings.story_same_feed_threshold
        terms: frozenset[str] | None = None

        def floor(story_id: int) -> float:
            nonlocal terms
            members = self.stories.members(story_id)
            if any(feed_of(a) != feed for a in members):
                return 0.0
            if terms is None:
                terms = in_title()
            return strict if self._titles.agree(feed, terms, members) else math.inf

        return floor

    # ------------------------------------------------------------ consolidation
    def consolidate(
        self, seeds: Iterable[int], is_free: Callable[[int], bool]
    ) -> partition.Inherited:
        """Cluster again the stories a batch's documents (``seeds``) touch, and apply it.

        The one-pass placements become the partition of the set (see
        ``stories.partition``); ``is_free`` says whether an article id may
        become a new story's id (it never was one).
        """
        shrunk, self._shrunk = self._shrunk, set()
        if self.partition.linkage == "off":
            self.stories.vocab.moved.clear()
            return partition.Inherited({}, [], [])
        held = (self.stories.stories.get(s) for s in sorted(shrunk))
        left = [a for story in held if story is not None for _, a in story.members]
        changes = partition.consolidate(
            self.stories, self.scorer, self.partition, [*seeds, *left], is_free
        )
        for article_id, story_id in sorted(changes.moves.items()):
            self.stories.move(article_id, story_id)
            self.copies.set_story(article_id, story_id)
        by_story: dict[int, list[int]] = {}
        for article_id, story_id in changes.moves.items():
            by_story.setdefault(story_id, []).append(article_id)
        evidence: dict[int, tuple[int, float]] = {}
        for story_id, moved in by_story.items():
            # Each moved article's closest among the story's newest members and the others
            # moved in (as one-pass placing reads a story: bounded work).
            members = self.stories.members(story_id)
            newest = list(dict.fromkeys([*members[-16:], *moved]))
            evidence.update(self.scorer.closest(moved, newest))
        return replace(changes, evidence=evidence)

    # --------------------------------------------------------- rebuild, window
    def load(self, docs: Iterable[StoredDoc]) -> int:
        """Rebuild from stored articles; cluster ids are restored as stored."""
        # A rebuild allocates a few objects per article and frees none: the
        # cyclic collector would rescan them all, again and again, for nothing.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._load(docs)
        finally:
            if enabled:
                gc.enable()

    def _load(self, docs: Iterable[StoredDoc]) -> int:
        ordered = sorted(docs, key=attrgetter("published", "article_id"))
        n = len(ordered)
        if not n:
            return 0
        ids = {
            name: np.fromiter(map(attrgetter(name), ordered), np.int64, n)
            for name in ("article_id", "copy_id", "story_id")
        }
        article, story = ids["article_id"], ids["story_id"]
        published = list(map(attrgetter("published"), ordered))
        ts = np.fromiter(map(datetime.timestamp, published), np.float64, n)
        seen = np.fromiter(
            (d.seen.timestamp() if d.seen is not None else np.nan for d in ordered), np.float64, n
        )
        languages = list(map(attrgetter("language"), ordered))
        # Ids in order of first appearance, as one ``_lang`` call per document assigns them.
        lang_of = {language: self._lang(language) for language in dict.fromkeys(languages)}
        lang = np.fromiter(map(lang_of.__getitem__, languages), np.int16, n)
        titles, headlines = title_keys_many(list(map(attrgetter("title"), ordered)))
        self.copies.load(
            article_ids=article,
            copy_ids=ids["copy_id"],
            story_ids=story,
            ts=ts,
            held=np.fmax(ts, seen),
            langs=lang,
            signatures=list(map(attrgetter("signature"), ordered)),
            content_hashes=list(map(attrgetter("content_hash"), ordered)),
            urls=list(map(attrgetter("url"), ordered)),
            feeds=np.fromiter(map(attrgetter("feed_id"), ordered), np.int64, n),
            titles=titles,
            headlines=headlines,
        )
        self.stories.bulk_load(article, story, list(map(attrgetter("story"), ordered)), ts, lang)
        self._feed_of.update(
            zip(article.tolist(), map(attrgetter("feed_id"), ordered), strict=True)
        )
        for d in ordered:
            if d.feed_id:
                self._titles.add(d.article_id, d.feed_id, title_terms(d.title, d.language))
        return n

    def evict_before(self, cutoff: datetime) -> int:
        """Forget articles both published and first seen before ``cutoff`` (the window edge).

        A back catalogue subscribed today is old by its dates but stays the
        window's length after it was seen: its late reports, and the other
        feeds of its period subscribed in the next days, still meet it.
        """
        evicted = self.copies.evict_before(cutoff.timestamp())
        for article_id in evicted.tolist():
            self._shrink(article_id)
            self.stories.evict(article_id)
            self._feed_of.pop(article_id, None)
            self._titles.remove(article_id)
        return len(evicted)

    def _shrink(self, article_id: int) -> None:
        story_id = self.stories.docs.story_of(article_id)
        if story_id is not None:
            self._shrunk.add(story_id)

    def remove(self, article_id: int) -> bool:
        """Forget one article (a revised entry is placed again); False if not held.

        Its copy group and story keep their ids (a founder's id stays the
        cluster id); the story loses the article's terms and votes.
        """
        if not self.copies.remove(article_id):
            return False
        self._shrink(article_id)
        self.stories.evict(article_id)
        self._feed_of.pop(article_id, None)
        self._titles.remove(article_id)
        return True


def lsh_params(settings: DedupSettings) -> tuple[int, int]:
    """(bands, rows) of the copy index's LSH for these settings (see ``copies.lsh_params``)."""
    return copies.lsh_params(
        settings.copy_threshold, settings.num_perm, settings.lsh_false_negative_weight
    )


def signature_array(sketch: Sketch) -> NDArray[np.uint32]:
    return minhash.decode(sketch.signature)[0]


__all__ = [
    "DedupDoc",
    "Deduplicator",
    "Sketch",
    "StoredDoc",
    "lsh_params",
    "signature_array",
]
