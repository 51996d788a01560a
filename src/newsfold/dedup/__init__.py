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
import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np
from datasketch.lsh import _optimal_param

from newsfold.dedup import minhash, stories
from newsfold.dedup.copies import LEAD_WORDS, CopyIndex, CopyMatch
from newsfold.dedup.shingles import shingle_hashes_of, story_terms, token_hashes, words
from newsfold.dedup.stories import StoryIndex, StoryQuery
from newsfold.types import Join, Placement, Tier

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from numpy.typing import NDArray

    from newsfold.config import DedupSettings

_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class DedupDoc:
    """What dedup needs of a normalised article (``text`` is its comparison text)."""

    article_id: int
    feed_id: int
    published: datetime
    title: str
    text: str
    url: str | None
    content_hash: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Sketch:
    """Computed once per article and stored: enough to re-place it without its text."""

    signature: bytes  # shingle count + num_perm × uint32 MinHash values
    story: bytes  # strongest terms: count + uint32 hashes + uint16 fixed-point weights


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


def _key(kind: bytes, value: str) -> int:
    return int.from_bytes(hashlib.blake2b(kind + value.encode(), digest_size=8).digest(), "little")


def _exact_keys_many(
    docs: Sequence[StoredDoc], cards: NDArray[np.uint32]
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """``Deduplicator._exact_keys`` of every doc end to end, and how many each has."""
    blake = hashlib.blake2b
    cards_list = cards.tolist()
    has_hash = np.asarray(cards_list, np.bool_)
    has_url = np.fromiter((bool(d.url) for d in docs), np.bool_, len(docs))
    hashes = b"".join(
        [
            blake(b"h:" + d.content_hash.encode(), digest_size=8).digest()
            for d, card in zip(docs, cards_list, strict=True)
            if card
        ]
    )
    urls = b"".join([blake(b"u:" + d.url.encode(), digest_size=8).digest() for d in docs if d.url])
    # Each document's keys in ``_exact_keys`` order: its hash key, then its URL key.
    per_doc = has_hash.astype(np.int64) + has_url
    first = np.cumsum(per_doc) - per_doc
    keys = np.empty(int(per_doc.sum()), np.uint64)
    keys[first[has_hash]] = np.frombuffer(hashes, dtype="<u8")
    keys[(first + has_hash)[has_url]] = np.frombuffer(urls, dtype="<u8")
    return keys, per_doc


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

    def __len__(self) -> int:
        return self.copies.live

    # ----------------------------------------------------------------- sketches
    def _tokens(self, doc: DedupDoc) -> list[str]:
        # A title-only entry is compared by its title rather than not at all.
        return words(doc.text) or words(doc.title)

    def _story_blob(self, doc: DedupDoc) -> bytes:
        s = self.settings
        terms, weights, names = story_terms(
            doc.title,
            doc.text,
            title_boost=s.story_title_boost,
            name_boost=s.story_name_boost,
            max_terms=s.story_terms,
        )
        return stories.encode(terms, weights, names)

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
        return [
            Sketch(minhash.encode(sig, len(hashes), lead), self._story_blob(doc))
            for doc, (hashes, lead), sig in zip(docs, pairs, sigs, strict=True)
        ]

    # ------------------------------------------------------------------ placing
    def _lang(self, language: str | None) -> int:
        if not language or not self.settings.same_language_only:
            return 0
        return self._languages.setdefault(language, len(self._languages) + 1)

    @staticmethod
    def _exact_keys(content_hash: str, url: str | None, card: int) -> list[int]:
        # A body with no words hashes like every other empty body: not evidence.
        keys = [_key(b"h:", content_hash)] if card else []
        if url:
            keys.append(_key(b"u:", url))
        return keys

    def place(self, doc: DedupDoc, sketch: Sketch) -> Placement:
        """Decide where ``doc`` belongs and index it (call in time order)."""
        sig, card = minhash.decode(sketch.signature)
        lead = minhash.decode_lead(sketch.signature)
        terms, weights, names = stories.decode(sketch.story)
        ts = doc.published.timestamp()
        lang = self._lang(doc.language)
        keys = self._exact_keys(doc.content_hash, doc.url, card)
        table = self.copies.table
        self.stories.count(terms)
        query = self.stories.query(terms, weights, ts, lang)
        merged: tuple[int, ...] = ()

        slot = self.copies.exact(keys)
        if slot is not None:
            matched = int(table.article[slot])
            copy = Join(int(table.copy[slot]), Tier.EXACT, 1.0, matched)
            story = Join(int(table.story[slot]), Tier.EXACT, 1.0, matched)
        elif (
            near := self._near(sig=sig, card=card, lead=lead, lang=lang, query=query)
        ) is not None:
            copy = Join(int(table.copy[near.slot]), Tier.NEAR, near.similarity, near.article_id)
            story = Join(int(table.story[near.slot]), Tier.NEAR, near.similarity, near.article_id)
        elif (found := self.stories.match(query, names)) is not None:
            copy = Join(doc.article_id, Tier.NEW, 1.0, None)
            survivor = min((found.story_id, *found.merged))
            merged = tuple(sorted(s for s in (found.story_id, *found.merged) if s != survivor))
            story = Join(survivor, Tier.STORY, found.similarity, found.article_id)
        else:
            copy = Join(doc.article_id, Tier.NEW, 1.0, None)
            story = Join(doc.article_id, Tier.NEW, 1.0, None)

        for absorbed in merged:
            self.stories.merge(story.cluster_id, absorbed)
            live = table.story[: table.size]
            live[live == absorbed] = story.cluster_id
        self.copies.add(
            article_id=doc.article_id,
            ts=ts,
            sig=sig,
            card=card,
            lead=lead,
            exact_keys=keys,
            lang=lang,
            copy_id=copy.cluster_id,
            story_id=story.cluster_id,
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

    def _near(
        self,
        *,
        sig: NDArray[np.uint32],
        card: int,
        lead: NDArray[np.uint32],
        lang: int,
        query: StoryQuery,
    ) -> CopyMatch | None:
        found = self.copies.near(sig, card, lang, lead)
        if found is not None:
            return found
        # A summary of a long article is rarely an LSH candidate (its Jaccard
        # is low); articles of the stories it shares names with are, so their
        # recent members are checked for containment.
        members = self.stories.neighbours(query, k=3)
        rows = self.copies.slot_of.get_many(np.array(members, np.int64))
        slots = rows[rows >= 0].tolist()
        return self.copies.verify(sig, card, lang, lead, slots)

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
        table = self.copies.table
        start = table.size
        table.reserve(n)
        end = start + n
        blobs = list(map(attrgetter("signature"), ordered))
        rows = slice(start, end)
        if not minhash.decode_into(
            blobs, table.sig[rows], table.card[rows], table.lead[rows], table.nlead[rows]
        ):
            sigs, counts, leads, nlead = minhash.decode_many(blobs, LEAD_WORDS)
            table.sig[rows] = sigs
            table.card[rows] = counts
            table.lead[rows] = leads
            table.nlead[rows] = nlead
        del blobs
        cards = table.card[rows]
        for name, column in (("article_id", "article"), ("copy_id", "copy"), ("story_id", "story")):
            getattr(table, column)[start:end] = np.fromiter(
                map(attrgetter(name), ordered), np.int64, n
            )
        published = list(map(attrgetter("published"), ordered))
        table.ts[start:end] = np.fromiter(map(datetime.timestamp, published), np.float64, n)
        languages = list(map(attrgetter("language"), ordered))
        # Ids in order of first appearance, as one ``_lang`` call per document assigns them.
        lang_of = {language: self._lang(language) for language in dict.fromkeys(languages)}
        table.lang[start:end] = np.fromiter(map(lang_of.__getitem__, languages), np.int16, n)
        table.alive[start:end] = True
        table.size = end
        self.copies.slot_of.bulk(table.article[start:end], np.arange(start, end, dtype=np.int32))
        keys, per_doc = _exact_keys_many(ordered, cards)
        self.copies.exact_keys.bulk(keys, np.repeat(np.arange(start, end, dtype=np.int32), per_doc))
        self.stories.bulk_add(
            table.article[start:end].tolist(),
            table.story[start:end].tolist(),
            stories.decode_columns(list(map(attrgetter("story"), ordered))),
            table.ts[start:end].tolist(),
            table.lang[start:end].tolist(),
        )
        self.copies.live += n
        self.copies.bulk_index(start)
        return n

    def evict_before(self, cutoff: datetime) -> int:
        """Forget articles published before ``cutoff`` (the pipeline's window edge)."""
        evicted = self.copies.evict_before(cutoff.timestamp())
        for article_id in evicted.tolist():
            self.stories.evict(article_id)
        return len(evicted)

    def remove(self, article_id: int) -> bool:
        """Forget one article (a revised entry is placed again); False if not held.

        Its copy group and story keep their ids (a founder's id stays the
        cluster id); the story loses the article's terms and votes.
        """
        if not self.copies.remove(article_id):
            return False
        self.stories.evict(article_id)
        return True

    def memory_bytes(self) -> int:
        """Bytes held by the copy index arrays (signatures, bands, keys)."""
        return self.copies.nbytes()


def lsh_params(settings: DedupSettings) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's weighted false positive/negative error."""
    return _lsh_params(
        settings.copy_threshold, settings.num_perm, settings.lsh_false_negative_weight
    )


@lru_cache(maxsize=16)
def _lsh_params(threshold: float, num_perm: int, fn: float) -> tuple[int, int]:
    # The optimiser integrates numerically (about 0.1 s): once per setting.
    bands, rows = _optimal_param(threshold, num_perm, 1.0 - fn, fn)
    return int(bands), int(rows)


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
