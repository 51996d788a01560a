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
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import compress
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np
from datasketch.lsh import _optimal_param

from newsfold.dedup import minhash, stories
from newsfold.dedup.copies import LEAD_WORDS, CopyIndex
from newsfold.dedup.shingles import shingle_hashes_of, story_terms, token_hashes, words
from newsfold.dedup.stories import StoryIndex
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
    # The LSH band keys, then the lead keys (uint64), computed for a whole batch
    # where the sketching runs (a worker process) so placing need not. Never
    # stored: a sketch without them (b"") has its keys computed when placed.
    keys: bytes = field(default=b"", compare=False)


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


# Content hashes are digests of the text, which nobody can choose, so their
# exact key is a fast fold that a rebuild computes for all of them at once
# (8 bytes a step, murmur3's 64-bit finaliser between steps). URLs are chosen
# by whoever publishes them and keep a cryptographic hash (``_key``).
_HASH_SEED = 0x9E3779B97F4A7C15
_MASK64 = 0xFFFFFFFFFFFFFFFF
_FMIX = (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53)


def _hash_key(content_hash: str) -> int:
    data = content_hash.encode()
    h = _HASH_SEED ^ len(data)
    for at in range(0, len(data), 8):
        h ^= int.from_bytes(data[at : at + 8], "little")
        for m in _FMIX:
            h ^= h >> 33
            h = h * m & _MASK64
        h ^= h >> 33
    return h


def _hash_keys(values: list[str]) -> NDArray[np.uint64]:
    """``_hash_key`` of each value; values of one length fold together, as a matrix."""
    n = len(values)
    lengths = np.fromiter(map(len, values), np.int64, n)
    data = "".join(values).encode()
    if len(data) != int(lengths.sum()):  # not ASCII: one by one
        return np.fromiter(map(_hash_key, values), np.uint64, n)
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


def _exact_keys_many(
    docs: Sequence[StoredDoc], cards: NDArray[np.uint32]
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """``Deduplicator._exact_keys`` of every doc end to end, and how many each has."""
    has_hash = cards > 0
    hashes = list(map(attrgetter("content_hash"), docs))
    if not has_hash.all():
        hashes = list(compress(hashes, has_hash.tolist()))
    urls = list(map(attrgetter("url"), docs))
    has_url = np.fromiter(map(bool, urls), np.bool_, len(urls))
    blake = hashlib.blake2b
    url_keys = np.fromiter(
        (blake(b"u:" + u.encode(), digest_size=8).digest() for u in urls if u),
        "S8",
        int(has_url.sum()),
    ).view("<u8")
    # Each document's keys in ``_exact_keys`` order: its hash key, then its URL key.
    per_doc = has_hash.astype(np.int64) + has_url
    first = np.cumsum(per_doc) - per_doc
    keys = np.empty(int(per_doc.sum()), np.uint64)
    keys[first[has_hash]] = _hash_keys(hashes)
    keys[(first + has_hash)[has_url]] = url_keys
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
        keys = self.copies.keys_many(sigs, [len(h) for h, _ in pairs], [ld for _, ld in pairs])
        return [
            Sketch(minhash.encode(sig, len(hashes), lead), self._story_blob(doc), k)
            for doc, (hashes, lead), sig, k in zip(docs, pairs, sigs, keys, strict=True)
        ]

    # ------------------------------------------------------------------ placing
    def _lang(self, language: str | None) -> int:
        if not language or not self.settings.same_language_only:
            return 0
        return self._languages.setdefault(language, len(self._languages) + 1)

    @staticmethod
    def _exact_keys(content_hash: str, url: str | None, card: int) -> list[int]:
        # A body with no words hashes like every other empty body: not evidence.
        keys = [_hash_key(content_hash)] if card else []
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
        if sketch.keys:
            self.copies.prime_keys(sig, card, sketch.keys)
        table = self.copies.table
        self.stories.count(terms)
        merged: tuple[int, ...] = ()

        slot = self.copies.exact(keys)
        if slot is not None:
            matched = int(table.article[slot])
            copy = Join(int(table.copy[slot]), Tier.EXACT, 1.0, matched)
            story = Join(int(table.story[slot]), Tier.EXACT, 1.0, matched)
        elif (near := self.copies.near(sig, card, lang, lead)) is not None:
            copy = Join(int(table.copy[near.slot]), Tier.NEAR, near.similarity, near.article_id)
            story = Join(int(table.story[near.slot]), Tier.NEAR, near.similarity, near.article_id)
        elif (found := self.stories.match(terms, weights, ts, lang, names)) is not None:
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
        # Rows past the table's size are zero (see ``DocTable``).
        if not minhash.decode_into(
            blobs,
            table.sig[rows],
            table.card[rows],
            table.lead[rows],
            table.nlead[rows],
            zeroed=True,
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
        self.stories.bulk_load(
            table.article[rows],
            table.story[rows],
            list(map(attrgetter("story"), ordered)),
            table.ts[rows],
            table.lang[rows],
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
