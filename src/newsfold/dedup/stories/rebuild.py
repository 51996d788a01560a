"""Many documents into the story index at once: the rebuild from stored sketches.

The result is the state that adding the documents one by one would give
(``StoryIndex.add``), reached with sorts instead of per-document work. There
are two paths, one per job:

- ``load_solo``: the common rebuild, every story of one member (a story's id
  is its founder's) into an empty index. The stored blobs are parsed
  straight into the document columns and one sort of (term, story) keys
  gives the vocabulary, the document frequencies and the postings. The
  stories keep no vectors: each reads its member's.
- ``add_many``: anything else (stories of several members, an index that
  already holds documents). One sort of (story, term) keys sums every
  story's vector; one sort of the distinct pairs by term gives document
  frequencies and postings.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from newsfold.dedup.index import stable_argsort
from newsfold.dedup.stories.blob import blocks, counts_of, decode_columns

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from newsfold.dedup.stories.blob import Columns
    from newsfold.dedup.stories.columns import DocColumns
    from newsfold.dedup.stories.postings import Postings, Vocabulary
    from newsfold.dedup.stories.store import StoryStore

_CHUNK = 1 << 20  # entries per block where a whole-array step would need a huge temporary


class Rebuild:
    """The parts of one story index that a rebuild writes."""

    __slots__ = ("docs", "postings", "stories", "vocab")

    def __init__(
        self, docs: DocColumns, stories: StoryStore, postings: Postings, vocab: Vocabulary
    ) -> None:
        self.docs, self.stories, self.postings, self.vocab = docs, stories, postings, vocab

    def load(
        self,
        article_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        blobs: list[bytes],
        ts: NDArray[np.float64],
        langs: NDArray[np.integer[Any]],
    ) -> None:
        """Add documents (in time order) given their stored sketches."""
        if not self.load_solo(article_ids, story_ids, blobs, ts, langs):
            self.add_many(
                article_ids.tolist(),
                story_ids.tolist(),
                decode_columns(blobs),
                ts.tolist(),
                langs.tolist(),
            )

    def load_solo(
        self,
        article_ids: NDArray[np.int64],
        story_ids: NDArray[np.int64],
        blobs: list[bytes],
        ts: NDArray[np.float64],
        langs: NDArray[np.integer[Any]],
    ) -> bool:
        """``load`` of one-member stories into an empty index; False (nothing
        changed) if that is not the case.

        One sort of (term, story) keys: its runs give the vocabulary, the
        document frequencies and the postings (stories in order). A term's
        slot is its rank in the vocabulary (see ``ranks_into``).
        """
        n = len(blobs)
        if not n or len(self.stories) or not self.vocab.fresh() or n >= 1 << 31:
            return False
        # Stories are kept in id order; documents usually come in it already.
        order: NDArray[np.intp] | None = None
        story_of: NDArray[np.int64] | None = None
        if n > 1 and not (story_ids[1:] > story_ids[:-1]).all():
            order = np.argsort(story_ids, kind="stable")
            if (story_ids[order[1:]] == story_ids[order[:-1]]).any():
                return False  # a story of several members
            story_of = np.empty(n, np.int64)
            story_of[order] = np.arange(n)
        counts, skips = counts_of(np.fromiter(map(len, blobs), np.int64, n))
        if (counts < 0).any():
            return False
        total = int(counts.sum())
        docs = self.docs
        docs.reserve(n, total)
        offset = np.empty(n, np.int64)
        keys = np.empty(total, np.uint64)
        if not _decode_into(
            blobs, counts, skips, docs, offset=offset, keys=keys, story_of=story_of
        ):
            return False
        keys.sort()
        # The postings (each term's stories, in order) overwrite the keys
        # already read: the first half of their bytes, kept once the rest is freed.
        story = keys.view(np.int32)[:total]
        firsts, uniqs, last = [], [], -1
        for lo in range(0, total, _CHUNK):
            part = keys[lo : lo + _CHUNK]
            term = (part >> np.uint64(32)).astype(np.uint32)
            story[lo : lo + len(term)] = part  # the low half: the story
            is_first = np.empty(len(term), np.bool_)
            is_first[0] = int(term[0]) != last
            np.not_equal(term[1:], term[:-1], out=is_first[1:])
            first = np.flatnonzero(is_first)
            firsts.append(first + lo)
            uniqs.append(term[first])
            last = int(term[-1])
            del part
        del story
        try:
            keys.resize((total + 1) // 2)
        except ValueError:  # referenced elsewhere (a debugger): keep a copy instead
            keys = keys[: (total + 1) // 2].copy()
        story = keys.view(np.int32)[:total]
        del keys
        uniq = np.concatenate(uniqs) if uniqs else np.empty(0, np.uint32)
        bounds = np.append(np.concatenate(firsts) if firsts else [], total).astype(np.int64)
        terms, _, slots = docs.free()
        ranks_into(uniq, terms[:total], slots[:total])
        self.vocab.count_many(uniq, np.diff(bounds), n)
        docs.commit(article_ids, story_ids, ts, counts, offset)
        # Copies (the arguments may be views of columns that later change in
        # place), in story order.
        if order is not None:
            article_ids, story_ids = article_ids[order], story_ids[order]
            ts, langs = ts[order], langs[order]
        ids = np.array(story_ids, np.int64)
        times = np.array(ts, np.float64)
        self.stories.set_rows(
            ids=ids,
            last_ts=times,  # a story's last member is its only one
            lang=np.array(langs, np.int16),
            start=np.zeros(n + 1, np.int64),  # no vectors of their own (see ``solo``)
            vectors=(np.empty(0, np.uint32), np.empty(0, np.int32), np.empty(0, np.int32)),
            slots=np.empty(0, np.int32),
            m_start=np.arange(n + 1, dtype=np.int32 if n < 2**31 else np.int64),
            m_ts=times,
            m_aid=ids if np.array_equal(ids, article_ids) else np.array(article_ids, np.int64),
            gone=np.zeros(n, np.bool_),
            solo=np.ones(n, np.bool_),
        )
        self.postings.load(uniq, bounds, story, ids, None)
        return True

    def add_many(
        self,
        article_ids: list[int],
        story_ids: list[int],
        flat: Columns,
        ts: list[float],
        langs: list[int],
    ) -> None:
        """``count`` + ``add`` for many documents (in time order), one sum per story.

        ``flat`` holds every document's bag end to end (see ``decode_columns``).
        """
        if not article_ids:
            return
        terms, fixed, flags, counts = flat
        stories = self.stories
        stories.take_all()
        fresh = self.vocab.fresh()
        usids, sidx = np.unique(np.asarray(story_ids, np.int64), return_inverse=True)
        weights = fixed.astype(np.int64)
        names = np.where(flags, weights, 0)
        parts_s, parts_t = [np.repeat(sidx, counts)], [terms]
        parts_w, parts_n = [weights], [names]
        parts_m = [np.ones(len(terms), np.int64)]
        for k, sid in enumerate(usids.tolist()):
            old = stories.get(sid)
            if old is not None:
                parts_s.append(np.full(len(old.terms), k, np.int64))
                parts_t.append(old.terms)
                parts_w.append(old.weights)
                parts_n.append(old.names)
                parts_m.append(np.zeros(len(old.terms), np.int64))
        # Documents grouped by story (stably) make the keys runs of sorted
        # terms, mostly ascending already: a stable sort (timsort) is then
        # nearly linear. Sums are of integers, so the order of equal keys is moot.
        doc_order = np.argsort(sidx, kind="stable")
        sizes = counts[doc_order]
        shift = (np.cumsum(counts) - counts)[doc_order] - (np.cumsum(sizes) - sizes)
        term_order = np.repeat(shift, sizes) + np.arange(len(terms))
        parts_s[0] = parts_s[0][term_order]
        parts_t[0], parts_w[0], parts_n[0] = (
            terms[term_order],
            weights[term_order],
            names[term_order],
        )
        key = (np.concatenate(parts_s).astype(np.uint64) << np.uint64(32)) | np.concatenate(
            parts_t
        ).astype(np.uint64)
        order = stable_argsort(key)
        key = key[order]
        is_start = np.empty(len(key), np.bool_)
        is_start[:1] = True
        np.not_equal(key[1:], key[:-1], out=is_start[1:])
        starts = np.flatnonzero(is_start)
        # Each document term's (story, term) pair, for the documents' slots.
        pair_of = np.empty(len(key), np.int64)
        pair_of[order] = np.cumsum(is_start) - 1
        del is_start
        ukey = key[starts]
        wsum = np.add.reduceat(np.concatenate(parts_w)[order], starts)
        nsum = np.add.reduceat(np.concatenate(parts_n)[order], starts)
        msum = np.add.reduceat(np.concatenate(parts_m)[order], starts)
        ust = (ukey >> np.uint64(32)).astype(np.int64)
        utm = (ukey & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        doc_pair = np.empty(len(terms), np.int64)
        doc_pair[term_order] = pair_of[: len(terms)]
        del pair_of
        # Term-major order of the pairs with members in this batch: df and postings.
        # (term, pair position) keys are distinct and carry the position:
        # sorting them (faster than an argsort) gives the stable by-term order.
        live = np.flatnonzero(msum > 0)
        tkey = (utm[live].astype(np.uint64) << np.uint64(32)) | live.astype(np.uint64)
        tkey.sort()
        # The two halves of the sorted keys (views): the pairs in term order, and the terms.
        halves = tkey.view(np.uint32).reshape(-1, 2)
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        by_term, pt = halves[:, low], halves[:, high]
        is_first = np.empty(len(pt), np.bool_)
        is_first[:1] = True
        np.not_equal(pt[1:], pt[:-1], out=is_first[1:])
        first = np.flatnonzero(is_first)
        uniq = pt[first]
        df_new = np.add.reduceat(_gather(msum, by_term), first) if len(first) else first
        self.vocab.count_many(uniq, df_new, len(article_ids))
        uslots = np.empty(len(utm), np.int32)
        if fresh and len(live) == len(utm):
            # Slots are positions in the sorted vocabulary: each pair's is its term's rank.
            rank = np.cumsum(is_first, dtype=np.int32)
            rank -= 1
            for lo in range(0, len(rank), _CHUNK):
                uslots[by_term[lo : lo + _CHUNK]] = rank[lo : lo + _CHUNK]
            del rank
        else:
            uslots[:] = self.vocab.slots_sorted(utm)
        del is_first
        self.docs.append(article_ids, story_ids, ts, flat, uslots[doc_pair])
        del doc_pair
        bounds = np.searchsorted(ust, np.arange(len(usids) + 1, dtype=ust.dtype))
        # Members of each story in (ts, article) order: one sort by (story, ts, article).
        ts_a = np.asarray(ts, np.float64)
        aid_a = np.asarray(article_ids, np.int64)
        by_member = np.lexsort((aid_a, ts_a, sidx))
        m_ts, m_aid = ts_a[by_member], aid_a[by_member]
        m_start = np.searchsorted(sidx[by_member], np.arange(len(usids) + 1))
        first_doc = doc_order[np.searchsorted(sidx[doc_order], np.arange(len(usids)))]
        last_ts = np.maximum(ts_a[first_doc], m_ts[m_start[1:] - 1])
        had = (
            np.fromiter(map(stories.__contains__, usids.tolist()), np.bool_, len(usids))
            if len(stories)
            else np.zeros(len(usids), np.bool_)
        )
        for k in np.flatnonzero(had).tolist():
            story = stories.take(int(usids[k]))
            lo, hi = int(bounds[k]), int(bounds[k + 1])
            m0, m1 = int(m_start[k]), int(m_start[k + 1])
            new = list(zip(m_ts[m0:m1].tolist(), m_aid[m0:m1].tolist(), strict=True))
            story.terms, story.weights, story.names = utm[lo:hi], wsum[lo:hi], nsum[lo:hi]
            story.members = sorted(story.members + new)
            story.slots = uslots[lo:hi]
            story.last_ts = max(story.last_ts, new[-1][0])
        # A story of one new member keeps no vector of its own: it is the member's.
        solo = (np.diff(m_start) == 1) & ~had
        keep = np.repeat(~solo, np.diff(bounds))
        utm, wsum, nsum, uslots = utm[keep], wsum[keep], nsum[keep], uslots[keep]
        small = not len(wsum) or max(int(wsum.max()), int(nsum.max())) < 2**31
        kept = np.diff(bounds)
        kept[solo] = 0
        stories.set_rows(
            ids=usids,
            last_ts=last_ts,
            lang=np.asarray(langs, np.int32)[first_doc],
            start=np.concatenate(([0], np.cumsum(kept))).astype(np.int64),
            vectors=(
                utm,
                wsum.astype(np.int32) if small else wsum,
                nsum.astype(np.int32) if small else nsum,
            ),
            slots=uslots,
            m_start=m_start.astype(np.int64),
            m_ts=m_ts,
            m_aid=m_aid,
            gone=had,
            solo=solo,
        )
        self.postings.load(
            uniq,
            np.append(first, len(by_term)).astype(np.int64),
            _gather(ust, by_term).astype(np.int32, copy=False),
            usids,
            _gather(msum, by_term).astype(np.int32),
        )
        del tkey, halves, by_term, pt


def _decode_into(
    blobs: list[bytes],
    counts: NDArray[np.int64],
    skips: NDArray[np.int64],
    docs: DocColumns,
    *,
    offset: NDArray[np.int64],
    keys: NDArray[np.uint64],
    story_of: NDArray[np.int64] | None,
) -> bool:
    """Parse blobs into the free term columns of ``docs`` (each bag's offset from
    there into ``offset``) and give ``keys`` each term's ``term << 32 | story``,
    where a document's story is ``story_of[document]`` (None: the document).

    A block of blobs at a time, stored contiguously: no temporary the size of
    the whole, and no scattered writes. False if a blob's header disagrees
    with its length or a bag is not sorted and unique.
    """
    u0 = docs.used
    terms, weights, _ = docs.free()
    at = 0
    for block in blocks(blobs, counts, skips):
        c, rows = block.count, block.rows
        r, end = len(rows), at + len(rows) * c
        offset[rows] = at + c * np.arange(r)
        if not block.valid():
            return False
        if not c:
            continue
        bag = block.terms()
        if c > 1 and not (bag[:, 1:] > bag[:, :-1]).all():
            return False
        terms[at:end] = bag.ravel()
        weights[at:end] = block.weights().ravel()
        docs.set_names(u0 + at, block.names().ravel())
        key = bag.astype(np.uint64)
        key <<= np.uint64(32)
        story = rows if story_of is None else story_of[rows]
        np.bitwise_or(key, story.astype(np.uint64)[:, None], out=keys[at:end].reshape(r, c))
        at = end
    return True


def ranks_into(
    vocab: NDArray[np.uint32], terms: NDArray[np.uint32], out: NDArray[np.int32]
) -> None:
    """``out[i]``: the position of ``terms[i]`` in ``vocab`` (sorted, holding every term).

    A binary search per term would cost more than the rest of a rebuild, and
    scattering ranks from a sort is as slow: two direct tables, on a term's
    high and on its low bits, map a bucket holding a single vocabulary term
    to its position and so answer almost every term with one look-up each,
    written in order; a search answers the rest.
    """
    width = min(24, max(16, len(vocab).bit_length() + 4))  # buckets ≥ 16 × terms, up to 2²⁴
    shift, mask = np.uint32(32 - width), np.uint32((1 << width) - 1)
    tables = []
    for bucket in ((vocab >> shift).astype(np.intp), (vocab & mask).astype(np.intp)):
        table = np.full(1 << width, -1, np.int32)
        alone = np.bincount(bucket, minlength=1 << width)[bucket] == 1
        table[bucket[alone]] = np.flatnonzero(alone)
        tables.append(table)
    high, low = tables
    for lo in range(0, len(terms), _CHUNK):
        t = terms[lo : lo + _CHUNK]
        rank = high[t >> shift]
        miss = np.flatnonzero((rank < 0) | (vocab[rank] != t))
        if len(miss):
            tm = t[miss]
            found = low[tm & mask]
            bad = np.flatnonzero((found < 0) | (vocab[found] != tm))
            found[bad] = np.searchsorted(vocab, tm[bad])
            rank[miss] = found
        out[lo : lo + len(t)] = rank


def _gather(values: NDArray[Any], at: NDArray[np.uint32]) -> NDArray[Any]:
    """``values[at]`` a block at a time: a whole index in ``intp`` would double the bytes."""
    out = np.empty(len(at), values.dtype)
    for lo in range(0, len(at), _CHUNK):
        out[lo : lo + _CHUNK] = values[at[lo : lo + _CHUNK]]
    return out


__all__ = ["Rebuild", "ranks_into"]
