"""Tier 0 (exact) and tier 1 (near-duplicate copies) over a compact document table.

A document is a row in parallel numpy arrays (signature, shingle count,
time, ids); ``KeyIndex`` maps LSH band keys, content hashes and URLs to rows.
Every LSH candidate is verified on the signatures: estimated Jaccard for
whole copies, estimated containment for a short copy (a summary, a trimmed
version) of a longer text. Precision first: a candidate must clear a
threshold on both the signature and the shingle-count evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from newsfold.dedup import minhash
from newsfold.dedup.identifiers import IDS, conflicts
from newsfold.dedup.index import BandIndex, IdMap, KeyIndex
from newsfold.dedup.keys import content_key, exact_keys_many

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from numpy.typing import NDArray

    # Whether a copy of a document in this story may be joined (the story's id).
    Accept = Callable[[int], bool]
    # Where a document comes from: its feed id (0: unknown), title key, URL key (0: none).
    Origin = tuple[int, int, int]

_U64 = np.uint64
_KEY_BLOCK = 8192  # signatures per block when computing band keys
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_FNV = _U64(0x100000001B3)


@dataclass(frozen=True, slots=True)
class CopyMatch:
    slot: int
    article_id: int
    similarity: float  # estimated Jaccard, or containment when that decided
    exact: bool
    copy_id: int  # the matched document's copy group and (current) story
    story_id: int


@lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int, fn_weight: float) -> tuple[int, int]:
    """(bands, rows), rows × bands ≤ ``num_perm``, minimising the weighted error of
    banded LSH at the Jaccard ``threshold``: ``fn_weight`` × the false negative
    area plus (1 - ``fn_weight``) × the false positive area (as datasketch's
    ``MinHashLSH`` chooses them).

    Two documents of similarity s share a band with probability
    P(s) = 1 - (1 - s^r)^b. The false positive area is ∫₀ᵗ P and the false
    negative area ∫ₜ¹ (1 - P). P is a polynomial of degree r·b ≤ ``num_perm``,
    so Gauss-Legendre quadrature with ⌈(num_perm + 1) / 2⌉ nodes integrates it
    exactly; the first (b, r) in (b, r) order wins ties.
    """
    b, r = np.array(
        [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], np.float64
    ).T
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def area(lo: float, hi: float, *, miss: bool) -> NDArray[np.float64]:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2  # the nodes moved from [-1, 1] to [lo, hi]
        missed = (1.0 - s[None, :] ** r[:, None]) ** b[:, None]  # no band shared
        return ((missed if miss else 1.0 - missed) @ weights) * (hi - lo) / 2  # type: ignore[no-any-return]

    error = (1.0 - fn_weight) * area(0.0, threshold, miss=False) + fn_weight * area(
        threshold, 1.0, miss=True
    )
    best = int(np.argmin(error))
    return int(b[best]), int(r[best])


# A text with fewer shingles than this is a blurb: its headline says more than its words.
BLURB_SHINGLES = 80
LEAD_WORDS = 60  # a summary or a trimmed copy keeps the opening words
_LEAD_BANDS = 8  # one-value MinHash bands over the lead: candidates for a short copy
_MIN_LEAD = 20  # lead shingles needed before a copied lead is evidence on its own


def lead_keys_many(
    leads: NDArray[np.uint32], sizes: NDArray[np.integer[Any]]
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Lead keys of padded lead rows, and the row each key belongs to.

    A bottom-k sketch: the ``_LEAD_BANDS`` smallest mixed hashes of each lead.
    A summary holding half its original's lead shares one of them with
    probability 1 - 2⁻⁸, and costs one sort per row, not a hash per band.
    """
    rows = np.flatnonzero(sizes > 0)
    if not len(rows):
        return np.empty(0, np.uint64), rows
    block = leads[rows]
    mixed = minhash.fmix32(block)
    mixed[np.arange(block.shape[1])[None, :] >= sizes[rows][:, None]] = minhash.EMPTY
    k = min(_LEAD_BANDS, block.shape[1])
    low = np.sort(np.partition(mixed, k - 1, axis=1)[:, :k], axis=1)
    keys = low.astype(np.uint64) | (_U64(1) << _U64(40))  # apart from padding keys
    valid = low != minhash.EMPTY
    return keys[valid], np.repeat(rows, k).reshape(len(rows), k)[valid]


def _lead_overlap(
    rows: NDArray[np.uint32], sizes: NDArray[np.int64], lead: NDArray[np.uint32]
) -> NDArray[np.int64]:
    """How many of each padded row's first ``sizes`` hashes are in the sorted ``lead``."""
    if not len(lead):
        return np.zeros(len(rows), np.int64)
    at = np.minimum(np.searchsorted(lead, rows), len(lead) - 1)
    hit = (lead[at] == rows) & (np.arange(rows.shape[1])[None, :] < sizes[:, None])
    return hit.sum(axis=1)  # type: ignore[no-any-return]


def band_keys_many(sigs: NDArray[np.uint32], bands: int, rows: int) -> NDArray[np.uint64]:
    """One 64-bit key per band of each row of ``sigs``; the band number is mixed in so
    bands share one index."""
    out = np.empty((len(sigs), bands), np.uint64)
    seed = np.arange(1, bands + 1, dtype=np.uint64) * _GOLDEN
    # In place, a block of rows at a time: the temporaries stay small and reused.
    for lo in range(0, len(sigs), _KEY_BLOCK):
        block = sigs[lo : lo + _KEY_BLOCK, : bands * rows].reshape(-1, bands, rows)
        acc = out[lo : lo + len(block)]
        acc[:] = seed
        tmp = np.empty_like(acc)
        with np.errstate(over="ignore"):
            for j in range(rows):
                np.bitwise_xor(acc, block[:, :, j], out=acc)  # FNV-style fold per value
                np.multiply(acc, _FNV, out=acc)
                np.right_shift(acc, _U64(29), out=tmp)
                np.bitwise_xor(acc, tmp, out=acc)
    return out


def band_highs_many(sigs: NDArray[np.uint32], bands: int, rows: int) -> NDArray[np.uint32]:
    """The high halves of ``band_keys_many``, one row per band: what ``BandIndex`` sorts.

    A block at a time, so that the full keys (twice the bytes) never exist at once.
    """
    out = np.empty((bands, len(sigs)), np.uint32)
    for lo in range(0, len(sigs), _KEY_BLOCK):
        keys = band_keys_many(sigs[lo : lo + _KEY_BLOCK], bands, rows)
        out[:, lo : lo + len(keys)] = (keys >> _U64(32)).T
    return out


def band_keys_at(
    sigs: NDArray[np.uint32], slots: NDArray[np.int32], bands: NDArray[np.intp], rows: int
) -> NDArray[np.uint64]:
    """The key of band ``bands[i]`` of row ``slots[i]`` of ``sigs`` (as ``band_keys_many``)."""
    values = sigs[slots[:, None], bands[:, None] * rows + np.arange(rows)]
    acc = (bands.astype(np.uint64) + _U64(1)) * _GOLDEN
    with np.errstate(over="ignore"):
        for j in range(rows):
            acc ^= values[:, j]
            acc *= _FNV
            acc ^= acc >> _U64(29)
    return acc


class DocTable:
    """Growable parallel arrays, one row per indexed document.

    Leads past ``size`` are zero: growth allocates zeros and compaction
    clears the rows it frees, so a rebuild need not write the padding.
    """

    def __init__(self, num_perm: int) -> None:
        self.num_perm = num_perm
        self.size = 0
        cap = 1024
        self.sig = np.empty((cap, num_perm), dtype=np.uint32)
        self.card = np.empty(cap, dtype=np.uint32)
        self.article = np.empty(cap, dtype=np.int64)
        self.copy = np.empty(cap, dtype=np.int64)
        self.story = np.empty(cap, dtype=np.int64)
        self.ts = np.empty(cap, dtype=np.float64)
        # The later of story time and first-seen time: the row stays while it is in the window.
        self.held = np.empty(cap, dtype=np.float64)
        self.lang = np.empty(cap, dtype=np.int16)
        self.alive = np.zeros(cap, dtype=bool)
        self.lead = np.zeros((cap, LEAD_WORDS), dtype=np.uint32)  # padded exact lead shingles
        self.nlead = np.zeros(cap, dtype=np.uint8)  # at most LEAD_WORDS
        self.ids = np.zeros((cap, IDS), dtype=np.uint32)  # padded identifier keys
        self.nids = np.zeros(cap, dtype=np.uint8)
        # The feed (0: unknown), title key and URL key (0: none): one feed's own items
        # are copies only on stronger evidence (see ``CopyIndex.same_feed``).
        # 32 bits each: the index stays under 1 KB per document, and two keys of one
        # feed's titles or URLs collide once in four billion pairs.
        self.feed = np.zeros(cap, dtype=np.int32)
        self.title = np.zeros(cap, dtype=np.uint32)
        self.url = np.zeros(cap, dtype=np.uint32)

    _FIELDS = (
        "sig",
        "card",
        "article",
        "copy",
        "story",
        "ts",
        "held",
        "lang",
        "alive",
        "lead",
        "nlead",
        "ids",
        "nids",
        "feed",
        "title",
        "url",
    )

    def reserve(self, extra: int) -> None:
        need = self.size + extra
        cap = len(self.card)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name in self._FIELDS:
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def compact(self) -> NDArray[np.int32]:
        """Drop dead rows; returns old row → new row (-1 for dropped)."""
        keep = np.flatnonzero(self.alive[: self.size])
        mapping = np.full(self.size, -1, dtype=np.int32)
        mapping[keep] = np.arange(len(keep), dtype=np.int32)
        for name in self._FIELDS:
            arr = getattr(self, name)
            arr[: len(keep)] = arr[keep]
            arr[len(keep) : self.size] = 0
        self.size = len(keep)
        return mapping

    def nbytes(self) -> int:
        return sum(int(getattr(self, n)[: self.size].nbytes) for n in self._FIELDS)


class CopyIndex:
    """Exact keys + LSH over MinHash signatures, verified before any join."""

    def __init__(
        self,
        num_perm: int,
        bands: int,
        rows: int,
        *,
        copy_threshold: float,
        containment_threshold: float,
        min_shingles: int,
        lead_agreement: float = 0.5,
        lead_copy: float = 0.7,
        lead_containment: float = 0.5,
        id_conflicts: float = 0.25,
    ) -> None:
        self.table = DocTable(num_perm)
        self.bands, self.rows = bands, rows
        self.copy_threshold = copy_threshold
        self.containment_threshold = containment_threshold
        self.min_shingles = min_shingles
        self.lead_agreement = lead_agreement
        self.lead_copy = lead_copy
        self.lead_containment = lead_containment
        self.id_conflicts = id_conflicts
        self.lsh = BandIndex(bands, self._band_keys_of)
        self.exact_keys = KeyIndex()  # content hash and canonical URL, both 64-bit
        self.leads = KeyIndex()  # lead bands: a summary is a candidate of its original
        self.headlines = KeyIndex()  # long titles: another feed's item under one is a copy
        self.slot_of = IdMap()  # article id → row (rows move on compaction)
        # The keys of the document being placed: ``near`` computes them, ``add`` reuses them.
        self._keys_of: (
            tuple[NDArray[np.uint32], tuple[NDArray[np.uint64], NDArray[np.uint64]]] | None
        ) = None
        self.live = 0

    def _band_keys_of(
        self, slots: NDArray[np.int32], bands: NDArray[np.intp]
    ) -> NDArray[np.uint64]:
        return band_keys_at(self.table.sig, slots, bands, self.rows)

    # ------------------------------------------------------------------ writes
    def add(
        self,
        *,
        article_id: int,
        ts: float,
        held: float,
        sig: NDArray[np.uint32],
        card: int,
        lead: NDArray[np.uint32],
        exact_keys: list[int],
        lang: int,
        copy_id: int,
        story_id: int,
        ids: NDArray[np.uint32] | None = None,
        origin: Origin | None = None,
        headline: int = 0,
    ) -> int:
        t = self.table
        t.reserve(1)
        slot = t.size
        t.size += 1
        t.sig[slot] = sig
        t.card[slot] = card
        t.article[slot] = article_id
        t.copy[slot] = copy_id
        t.story[slot] = story_id
        t.ts[slot] = ts
        t.held[slot] = held
        t.lang[slot] = lang
        t.alive[slot] = True
        t.lead[slot, : len(lead)] = lead
        t.lead[slot, len(lead) :] = 0
        t.nlead[slot] = len(lead)
        ids = np.empty(0, np.uint32) if ids is None else ids[:IDS]
        t.ids[slot, : len(ids)] = ids
        t.ids[slot, len(ids) :] = 0
        t.nids[slot] = len(ids)
        t.feed[slot], t.title[slot], t.url[slot] = origin or (0, 0, 0)
        self.slot_of[article_id] = slot
        self.live += 1
        band, lead_band = self.keys(sig, card, lead)
        self._keys_of = None
        self.lsh.add(band, slot)
        self.exact_keys.add(exact_keys, slot)
        self.leads.add(lead_band.tolist(), slot)
        if headline:
            self.headlines.add([headline], slot)
        return slot

    def load(
        self,
        *,
        article_ids: NDArray[np.int64],
        copy_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        ts: NDArray[np.float64],
        held: NDArray[np.float64],
        langs: NDArray[np.int16],
        signatures: list[bytes],
        content_hashes: list[str],
        urls: list[str | None],
        feeds: NDArray[np.int64] | None = None,
        titles: NDArray[np.uint64] | None = None,
        headlines: NDArray[np.uint64] | None = None,
    ) -> None:
        """``add`` of many documents (in time order) given their stored signatures."""
        n = len(signatures)
        if not n:
            return
        t = self.table
        start = t.size
        t.reserve(n)
        end = start + n
        rows = slice(start, end)
        # Rows past the table's size are zero (see ``DocTable``).
        into = (t.sig[rows], t.card[rows], t.lead[rows], t.nlead[rows], t.ids[rows], t.nids[rows])
        if not minhash.decode_into(signatures, into):
            (t.sig[rows], t.card[rows], t.lead[rows], t.nlead[rows], t.ids[rows], t.nids[rows]) = (
                minhash.decode_many(signatures, LEAD_WORDS, IDS)
            )
        t.feed[rows] = 0 if feeds is None else feeds
        t.title[rows] = 0 if titles is None else titles & np.uint64(0xFFFFFFFF)

        t.article[rows], t.copy[rows], t.story[rows] = article_ids, copy_ids, story_ids
        t.ts[rows], t.held[rows], t.lang[rows] = ts, held, langs
        t.alive[rows] = True
        t.size = end
        slots = np.arange(start, end, dtype=np.int32)
        self.slot_of.bulk(article_ids, slots)
        if titles is not None:
            cards = t.card[rows].tolist()
            content_hashes = [
                content_key(h, card, title, self.min_shingles)
                for h, card, title in zip(content_hashes, cards, titles.tolist(), strict=True)
            ]
        keys, per_doc = exact_keys_many(content_hashes, urls, t.card[rows])
        if len(keys):  # a document's URL key is its last
            has_url = np.fromiter(map(bool, urls), np.bool_, n)
            last = keys[np.maximum(np.cumsum(per_doc) - 1, 0)]
            t.url[rows] = np.where(has_url, last & np.uint64(0xFFFFFFFF), 0)
        self.exact_keys.bulk(keys, np.repeat(slots, per_doc))
        if headlines is not None and headlines.any():
            long = np.flatnonzero(headlines)
            self.headlines.bulk(headlines[long], slots[long])
        self.live += n
        self._index_from(start)

    def rename_story(self, old: int, new: int) -> None:
        """Documents of story ``old`` now belong to story ``new`` (a merge)."""
        story = self.table.story[: self.table.size]
        story[story == old] = new

    def set_story(self, article_id: int, story_id: int) -> None:
        """One document now belongs to story ``story_id`` (a consolidation moved it)."""
        slot = self.slot_of.get(article_id)
        if slot is not None:
            self.table.story[slot] = story_id

    def _index_from(self, start: int) -> None:
        """Index rows ``start:`` (already written to the table) with one sort per index."""
        t = self.table
        rows = np.arange(start, t.size, dtype=np.int32)
        text = t.card[start : t.size] > 0
        if text.any():
            high = band_highs_many(t.sig[start : t.size], self.bands, self.rows)
            if not text.all():
                high = high[:, text]
            self.lsh.bulk_high(rows[text], high)
        lead_keys, lead_rows = lead_keys_many(t.lead[start : t.size], t.nlead[start : t.size])
        self.leads.bulk(lead_keys, (lead_rows + start).astype(np.int32))

    def evict_before(self, ts: float) -> NDArray[np.int64]:
        """Drop rows both published and first seen before ``ts``; returns their article ids."""
        t = self.table
        old = np.flatnonzero(t.alive[: t.size] & (t.held[: t.size] < ts))
        t.alive[old] = False
        self.live -= len(old)
        evicted = t.article[old].copy()
        for article_id in evicted.tolist():
            self.slot_of.pop(article_id, None)
        # Renumber once dead rows are a third of the table: amortised O(1).
        if t.size - self.live > max(1024, t.size // 3):
            mapping = t.compact()
            self.lsh.renumber(mapping)
            self.exact_keys.renumber(mapping)
            self.leads.renumber(mapping)
            self.headlines.renumber(mapping)
            self.slot_of = IdMap.of(t.article[: t.size], np.arange(t.size, dtype=np.int32))
        return evicted

    def remove(self, article_id: int) -> bool:
        """Mark one row dead (its keys are filtered out by ``alive`` until compaction)."""
        slot = self.slot_of.pop(article_id, None)
        if slot is None:
            return False
        self.table.alive[slot] = False
        self.live -= 1
        return True

    # ------------------------------------------------------------------- reads
    def exact(
        self, keys: list[int], accept: Accept | None = None, origin: Origin | None = None
    ) -> CopyMatch | None:
        """The oldest live document sharing a content hash or canonical URL (of a story
        ``accept`` takes; of another feed, or of the same title or URL)."""
        t = self.table
        found = [s for s in self.exact_keys.get(np.array(keys, dtype=np.uint64)) if t.alive[s]]
        if origin is not None and found:
            cand = np.array(found, np.int64)
            found = cand[~self._own_item(cand, origin)].tolist()
        if accept is not None:
            found = [s for s in found if accept(int(t.story[s]))]
        if not found:
            return None
        slot = min(found, key=lambda s: (t.ts[s], t.article[s]))
        return self._match(slot, 1.0, exact=True)

    def headline(
        self, headline: int, feed: int, card: int, accept: Accept | None = None
    ) -> CopyMatch | None:
        """The oldest live item of another feed under the same long title (see
        ``keys.headline_key``), when one of the two has little text of its own
        (``BLURB_SHINGLES``): a cross-post, or a report re-run under its headline with a
        one-line summary. Two full texts under one headline are compared on their text:
        two outlets' rewrites of one wire report are two articles."""
        if not headline or not feed:
            return None
        t = self.table
        found = [
            s
            for s in self.headlines.get(np.array([headline], dtype=np.uint64))
            if t.alive[s] and t.feed[s] not in (0, feed) and min(card, t.card[s]) < BLURB_SHINGLES
        ]
        if accept is not None:
            found = [s for s in found if accept(int(t.story[s]))]
        if not found:
            return None
        slot = min(found, key=lambda s: (t.ts[s], t.article[s]))
        return self._match(slot, 1.0, exact=True)

    def _own_item(self, cand: NDArray[np.int64], origin: Origin) -> NDArray[np.bool_]:
        """Which rows are another item of the document's own feed, under another title and
        URL: not its copies, however alike. An outlet seldom republishes its own report
        under a new id (an update is a revision of the entry, tracked as such), while
        two of its items alike share its template: a show's two episodes under one
        description, a day's two videos under the channel's text."""
        feed, title, url = origin
        t = self.table
        same = t.feed[cand] == feed
        if not feed or not same.any():
            return np.zeros(len(cand), dtype=bool)
        same &= (t.title[cand] != title) | (title == 0)
        same &= (t.url[cand] != url) | (url == 0)
        return same  # type: ignore[no-any-return]

    def _match(self, slot: int, similarity: float, *, exact: bool) -> CopyMatch:
        t = self.table
        article, copy, story = int(t.article[slot]), int(t.copy[slot]), int(t.story[slot])
        return CopyMatch(slot, article, similarity, exact, copy, story)

    def near(
        self,
        sig: NDArray[np.uint32],
        card: int,
        lang: int,
        lead: NDArray[np.uint32],
        accept: Accept | None = None,
        *,
        ids: NDArray[np.uint32] | None = None,
        origin: Origin | None = None,
    ) -> CopyMatch | None:
        """Best verified near-duplicate among LSH and lead candidates (of a story
        ``accept`` takes), or None."""
        if card == 0:
            return None
        band, lead_band = self.keys(sig, card, lead)
        slots = self.lsh.get(band)
        if len(lead_band):
            slots += self.leads.get(lead_band)
        return self.verify(sig, card, lang, lead, slots, accept=accept, ids=ids, origin=origin)

    def keys(
        self, sig: NDArray[np.uint32], card: int, lead: NDArray[np.uint32]
    ) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        """LSH band keys and lead keys of one document (memoised for its ``add``)."""
        if self._keys_of is not None and self._keys_of[0] is sig:
            return self._keys_of[1]
        return self.prime_keys(sig, card, self.keys_many(sig[None, :], [card], [lead])[0])

    def keys_many(
        self,
        sigs: NDArray[np.uint32],
        cards: Sequence[int],
        leads: Sequence[NDArray[np.uint32]],
    ) -> list[bytes]:
        """``keys`` of many documents in a few array passes, each packed as bytes:
        its band keys (none without shingles), then its lead keys, all uint64."""
        n = len(leads)
        band = band_keys_many(sigs, self.bands, self.rows)
        padded = np.zeros((n, LEAD_WORDS), np.uint32)
        sizes = np.fromiter(map(len, leads), np.int64, n)
        for i, lead in enumerate(leads):
            padded[i, : len(lead)] = lead
        lead_keys, rows = lead_keys_many(padded, sizes)
        bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
        return [
            (band[i].tobytes() if card else b"") + lead_keys[bounds[i] : bounds[i + 1]].tobytes()
            for i, card in enumerate(cards)
        ]

    def prime_keys(
        self, sig: NDArray[np.uint32], card: int, packed: bytes
    ) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        """Hand over the ``keys_many`` of ``sig``, computed ahead (where it was sketched)."""
        keys = np.frombuffer(packed, np.uint64)
        bands = self.bands if card else 0
        unpacked = keys[:bands], keys[bands:]
        self._keys_of = (sig, unpacked)
        return unpacked

    def verify(
        self,
        sig: NDArray[np.uint32],
        card: int,
        lang: int,
        lead: NDArray[np.uint32],
        slots: list[int],
        *,
        accept: Accept | None = None,
        ids: NDArray[np.uint32] | None = None,
        origin: Origin | None = None,
    ) -> CopyMatch | None:
        t = self.table
        if not slots or card == 0:
            return None
        cand = np.unique(np.asarray(slots, dtype=np.int64))
        cand = cand[t.alive[cand] & (t.card[cand] > 0)]
        if lang:
            cand = cand[(t.lang[cand] == lang) | (t.lang[cand] == 0)]
        if not len(cand):
            return None
        jac = minhash.jaccard_many(sig, t.sig[cand])
        other = t.card[cand].astype(np.float64)
        # Containment of the smaller text in the larger (either direction):
        # a summary or a trimmed copy is mostly inside the original.
        small = np.minimum(other, card)
        cont = np.minimum(1.0, jac * (other + card) / ((1.0 + jac) * np.maximum(small, 1)))
        # A text of a few words (a user name left by a feed's template, a caption) is
        # no evidence on its own: its exact key carries its title (``keys.content_key``).
        ok_j = (jac >= self.copy_threshold) & (small >= self.min_shingles)
        # Exact overlap of the two leads. A text shorter than its lead window is
        # all lead: its containment in the other's lead is measured exactly,
        # not estimated (MinHash is too coarse for 40 shingles inside 800).
        # A longer one must agree on its opening as well as on the estimate.
        nlead = t.nlead[cand].astype(np.int64)
        inter = _lead_overlap(t.lead[cand], nlead, lead)
        lead_c = inter / np.maximum(np.minimum(nlead, len(lead)), 1)
        small_nlead = np.where(other <= card, nlead, len(lead))
        short = small <= small_nlead
        # A longer text needs the estimate and its opening to agree: either most of
        # it inside the other and half the lead shared, or a copied lead (70%
        # of the exact opening shingles: paraphrases share almost none) and
        # half of it inside the other, as with boilerplate around a short copy.
        long_ok = (cont >= self.containment_threshold) & (lead_c >= self.lead_agreement)
        long_ok |= (
            (np.minimum(nlead, len(lead)) >= _MIN_LEAD)
            & (lead_c >= self.lead_copy)
            & (cont >= self.lead_containment)
        )
        ok_c = (small >= self.min_shingles) & np.where(
            short, lead_c >= self.containment_threshold, long_ok
        )
        cont = np.where(short, lead_c, cont)
        ok = ok_j | ok_c
        if origin is not None:
            ok &= ~self._own_item(cand, origin)
        if ids is not None and len(ids):
            for i in np.flatnonzero(ok).tolist():
                ok[i] = not self._refills(ids, int(cand[i]))
        if accept is not None:
            for i in np.flatnonzero(ok).tolist():
                ok[i] = accept(int(t.story[cand[i]]))
        if not ok.any():
            return None
        sim = np.where(ok_j, jac, cont)
        # Best similarity; ties go to the oldest row so replays are deterministic.
        best = min(np.flatnonzero(ok), key=lambda i: (-sim[i], t.ts[cand[i]], t.article[cand[i]]))
        return self._match(int(cand[best]), float(sim[best]), exact=False)

    def _refills(self, ids: NDArray[np.uint32], slot: int) -> bool:
        """Whether the document's identifiers fill the row's slots differently: two
        reports on one template (see ``identifiers``), not copies."""
        t = self.table
        differ, shared = conflicts(ids, t.ids[slot, : t.nids[slot]])
        return differ > 0 and differ >= self.id_conflicts * shared

    def nbytes(self) -> int:
        indexes = self.lsh.nbytes() + self.exact_keys.nbytes() + self.leads.nbytes()
        indexes += self.headlines.nbytes()
        return self.table.nbytes() + indexes + self.slot_of.nbytes()
