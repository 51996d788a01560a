"""Order-free stories: the window's documents clustered as a set, not as a stream.

One-pass placement (``scoring.Matcher``) decides each join once, in arrival
order, so the same documents arriving in another order can give other
stories. Consolidation re-decides: after a batch (a poll, a feed write), every
connected component of the candidate graph that the batch touches is
clustered again from scratch, by agglomeration over pairwise scores with the
guards (names, language, the story window). Two documents are linked in the
candidate graph when they share a term held by at most ``df_cap`` documents
and their pair score clears the threshold: a relation of the two documents
and the window's document frequencies, so the components, and the clusters
inside them, are a function of the set of documents, not of their order.

The frequencies change with every batch, so a component no batch touches
could keep clusters decided under older ones. The scorer therefore reads
each term's frequency on a coarse scale (``df_level``: a few levels per
doubling, every term above ``idf_cap`` documents on one level) and weights
terms by it against a fixed collection size (``idf_docs``), never the
window's size: a document's vector, its rare terms and its edges change
only when one of its terms changes level. ``stale`` lists the documents
holding such a term; consolidating them with the batch keeps every
component clustered under the frequencies of the set it now holds. A
common term crosses a level about once per doubling, so, summed over a
stream, the documents looked at again stay proportional to the terms
counted.

The pair score is a narrow seam (``PairScorer``): ``DocScorer`` scores with
the story tier's own features (TF-IDF cosine of the two sketches, scaled by
their length ratio; the share of names each holds of the other's); another
scorer slots in unchanged.

    candidate graph   component(seeds): the documents linked to the seeds, transitively
    cluster()         deterministic average- or complete-link agglomeration of one component
    inherit()         which new cluster keeps which story id; the merges and splits
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from numpy.typing import NDArray

    from newsfold.dedup.stories.index import StoryIndex

_NEVER = -np.inf
_NEUTRAL = np.inf  # a pair that neither links nor forbids (see ``DocScorer.scores``)


class PairScorer(Protocol):
    """Pairwise join scores over a set of documents (symmetric; ``-inf``: never together)."""

    def scores(self, article_ids: Sequence[int]) -> NDArray[np.float64]: ...

    def scores_many(self, groups: Sequence[Sequence[int]]) -> list[NDArray[np.float64]]:
        """``scores`` of each of several sets at once."""
        ...

    def links(self, frontier: Sequence[int]) -> NDArray[np.int64]:
        """Candidate-graph edges (pairs of article ids) from ``frontier`` to any document."""
        ...

    def fresh(self) -> None:
        """Called before each consolidation: the window's documents changed."""
        ...

    def stale(self) -> Sequence[int]:
        """Documents whose scores may have changed since the last consolidation."""
        ...


@dataclass(frozen=True, slots=True)
class PartitionSettings:
    threshold: float  # least linkage between two clusters to join them
    window_s: float  # the longest a story may span, first member to last
    linkage: str = "average"  # "average" or "complete"
    name_threshold: float = 0.0  # least share of one document's names the other holds
    same_feed_threshold: float = 1.0  # least score for two documents of one feed to pair
    edge_threshold: float = 0.1  # least score of a candidate-graph edge (what may cluster)
    df_cap: int = 50  # a shared term held by more of the window's documents links nothing
    own_rare: int = 4  # ... but each document's this many least held terms may
    idf_docs: float = 300.0  # the collection size IDF weights against (fixed: see above)
    idf_cap: int = 128  # terms held by more documents weigh as if held by this many
    idf_steps: int = 2  # document-frequency levels per doubling
    length_exponent: float = 0.0  # a pair's cosine times (long/short terms, capped) ** this
    length_cap: float = 4.0
    short_terms: int = 0  # a pair with a document of fewer terms scores no evidence against


@dataclass(slots=True)
class Work:
    """What consolidations cost, counted (not timed): tests bound it."""

    passes: int = 0  # consolidations run
    docs: int = 0  # documents visited by the candidate search
    candidate_pairs: int = 0  # pairs sharing a rare term, scored to find edges
    cluster_pairs: int = 0  # pairs scored inside the components clustered again


@dataclass(frozen=True, slots=True)
class _Rows:
    """Documents' terms as sparse rows: slots, unit TF-IDF weights, and what a caller
    asked for besides (building a sparse matrix costs more than most products here)."""

    ids: NDArray[np.int64]
    terms: NDArray[np.int64]  # each document's number of terms
    tfidf: sparse.csr_array
    names: sparse.csr_array | None = None  # IDF-weighted name terms
    named: sparse.csr_array | None = None  # 1 where a term is a name
    rare: sparse.csr_array | None = None  # 1 where a term is held by few documents
    rare_terms: NDArray[np.uint32] | None = None  # those terms, as held (repeats and all)

    def part(self, start: int, stop: int) -> _Rows:
        """Documents ``start:stop`` (their rows unchanged; no rare terms)."""
        names, named = self.names, self.named
        return _Rows(
            self.ids[start:stop],
            self.terms[start:stop],
            self.tfidf[start:stop],
            None if names is None else names[start:stop],
            None if named is None else named[start:stop],
        )


class DocScorer:
    """``PairScorer`` over a story index's documents: the story tier's features.

    The score is the TF-IDF cosine of the two sketches times their length
    scale (``_length_scale``). Two documents of one feed pair only at
    ``same_feed_threshold`` (as one-pass placing joins a story of the
    document's own feed alone only at it: an outlet rarely reports one event
    twice). A pair with a document of fewer than ``short_terms`` terms is no
    evidence against a join. A pair in which neither document holds enough
    of the other's IDF-weighted names (``name_threshold``) never joins.
    All pairs of a set are scored at once, as sparse products.
    """

    __slots__ = ("feed_of", "index", "settings", "titles_agree", "work")

    def __init__(
        self,
        index: StoryIndex,
        settings: PartitionSettings,
        feed_of: Mapping[int, int],
        titles_agree: Callable[[int, int], bool] | None = None,
    ) -> None:
        self.index, self.settings, self.feed_of = index, settings, feed_of
        # Two reports of one feed pair only when their titles name a subject together
        # (a feed's template and running topics make its items alike): a pairwise rule.
        self.titles_agree = titles_agree
        self.work = Work()

    def _title_veto(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which same-feed pairs (a[i], b[i]) have titles that do not agree."""
        agree = self.titles_agree
        if agree is None or not len(a):
            return np.zeros(len(a), np.bool_)
        return np.fromiter(
            (not agree(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)),
            np.bool_,
            len(a),
        )

    def fresh(self) -> None:
        self.work.passes += 1

    def level(self, df: NDArray[np.int64]) -> NDArray[np.int64]:
        """Document frequencies on the scorer's coarse scale (see the module's docstring)."""
        return df_level(df, self.settings)

    def idf(self, slots: NDArray[np.int64]) -> NDArray[np.float64]:
        """IDF of the terms' levels against ``idf_docs`` documents (at least 1)."""
        s = self.settings
        held = 2.0 ** ((self.level(self.index.vocab.df(slots)) - 1) / s.idf_steps)
        return np.maximum(np.log((s.idf_docs + 2) / (held + 1.0)), 0.0) + 1.0

    def stale(self) -> list[int]:
        """Documents whose vectors or rare terms changed since the last call: those
        holding a term whose level changed (the postings give the stories holding it)."""
        vocab, index = self.index.vocab, self.index
        moved, vocab.moved = vocab.moved, {}
        if not moved:
            return []
        terms = list(moved)
        before = self.level(np.fromiter(moved.values(), np.int64, len(terms)))
        now = self.level(np.fromiter(map(vocab.df_of, terms), np.int64, len(terms)))
        held: set[int] = set()
        for term in np.asarray(terms, np.int64)[before != now].tolist():
            held.update(index.postings.stories(term))
        out: set[int] = set()
        for story_id in held:
            story = index.stories.get(story_id)
            if story is not None:
                out.update(a for _, a in story.members)
        return sorted(out)

    def _rows(
        self, article_ids: Sequence[int], *, names: bool = False, rare: bool = False
    ) -> _Rows:
        """The documents' vectors, gathered from the index's columns in one pass, with
        their names (``names``) and their rare terms (``rare``) when asked for."""
        docs = self.index.docs
        n = len(article_ids)
        at, which = _positions(self.index, article_ids)
        slots = docs.slots[at].astype(np.int64)
        idf = self.idf(slots)
        w = docs.weights[at].astype(np.float64) * idf
        norm = np.sqrt(np.bincount(which, weights=w * w, minlength=n))
        w /= np.where(norm > 0, norm, 1.0)[which]
        shape = (n, max(int(slots.max()) + 1 if len(slots) else 1, 1))

        def csr(values: NDArray[np.float64]) -> sparse.csr_array:
            m = sparse.csr_array((values, (which, slots)), shape=shape)
            m.eliminate_zeros()
            return m

        out = _Rows(
            np.asarray(article_ids, np.int64),
            np.bincount(which, minlength=n).astype(np.int64),
            csr(w),
        )
        if names:
            flag = (docs.flags[at >> 3] >> (at & 7).astype(np.uint8)) & 1
            named = flag.astype(np.float64)
            weighted = csr(docs.weights[at].astype(np.float64) * idf * named)
            out = dataclasses.replace(out, names=weighted, named=csr(named))
        if rare:
            terms = docs.terms[at]
            few = self._rare(slots, terms, which)
            out = dataclasses.replace(out, rare=csr(few.astype(np.float64)), rare_terms=terms[few])
        return out

    def _rare(
        self, slots: NDArray[np.int64], terms: NDArray[np.uint32], which: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Terms that may link: held by few documents, or among their document's
        ``own_rare`` least held (a big story's own words are common in its window,
        yet its reports must still find each other). Frequencies are read as levels
        and equal ones ranked by the term itself (a slot depends on arrival order)."""
        df = self.index.vocab.df(slots)
        order = np.lexsort((terms, self.level(df), which))
        start = np.searchsorted(which[order], which[order], side="left")
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - start
        cap = self.level(np.array([self.settings.df_cap], np.int64))[0]
        return np.asarray((self.level(df) <= cap) | (rank < self.settings.own_rare), np.bool_)

    def _length_scale(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
        """What a pair's cosine is multiplied by, for documents of ``a`` and ``b`` terms.

        A short report of an event inside a long one shares its k terms among the
        other's n, and its cosine is about sqrt(k / n) at best: by cosine alone a
        feed's two-line summary never reaches the article it summarises. Labelled
        pairs bear it out (``benchmarks.calibration``): same-event pairs whose term
        counts differ threefold or more score about half the cosine of pairs of
        like length, while different-event pairs barely move. The ratio is capped,
        since past it a long text shares some terms with any short one.
        """
        s = self.settings
        if not s.length_exponent:
            return np.ones(np.broadcast_shapes(a.shape, b.shape))
        ratio = np.maximum(a, b) / np.maximum(np.minimum(a, b), 1)
        return np.asarray(np.minimum(ratio, s.length_cap) ** s.length_exponent, np.float64)

    def closest(self, moved: Sequence[int], members: Sequence[int]) -> dict[int, tuple[int, float]]:
        """For each of ``moved`` (all in one story whose ``members`` are given), the other
        member scoring highest with it (the smallest id among equals) and the score: the
        evidence kept for a join clustering made. One set of rows for the story."""
        ids = list(dict.fromkeys([*moved, *members]))
        r = self._rows(ids)
        _fit(r)
        at = {a: i for i, a in enumerate(ids)}
        rows, cols = [at[a] for a in moved], [at[m] for m in members]
        sims = np.asarray((r.tfidf[rows] @ r.tfidf[cols].T).toarray())
        sims *= self._length_scale(r.terms[rows][:, None], r.terms[cols][None, :])
        out = {}
        for k, a in enumerate(moved):
            scored = [(-s, m) for s, m in zip(sims[k].tolist(), members, strict=True) if m != a]
            if scored:
                score, best = min(scored)
                out[a] = (best, -score)
        return out

    def _feeds(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Each document's feed (0: none known)."""
        get = self.feed_of.get
        return np.fromiter((get(x, 0) for x in ids.tolist()), np.int64, len(ids))

    def scores(self, article_ids: Sequence[int]) -> NDArray[np.float64]:
        return self.scores_many([article_ids])[0]

    def scores_many(self, groups: Sequence[Sequence[int]]) -> list[NDArray[np.float64]]:
        """``scores`` of each group, from one set of sparse rows: building them costs more
        than a small group's products (a row's values do not depend on the others)."""
        if not groups:
            return []
        rows = self._rows([a for g in groups for a in g], names=self.settings.name_threshold > 0)
        out, at = [], 0
        for g in groups:
            out.append(self._scores(rows.part(at, at + len(g))))
            at += len(g)
        return out

    def _scores(self, r: _Rows) -> NDArray[np.float64]:
        n = len(r.ids)
        self.work.cluster_pairs += n * n
        s = self.settings
        sim = np.asarray((r.tfidf @ r.tfidf.T).toarray(), np.float64)
        sim *= self._length_scale(r.terms[:, None], r.terms[None, :])
        # A document of a few terms (a headline, a link post) shares none with many reports of
        # its own event: under complete link one such pair would keep a story apart. Its low
        # scores are no evidence either way (``_NEUTRAL``); its high ones still link.
        short = np.minimum.outer(r.terms, r.terms) < s.short_terms
        sim[short & (sim < s.threshold)] = _NEUTRAL
        feeds = self._feeds(r.ids)
        same = (feeds[:, None] == feeds[None, :]) & (feeds[:, None] != 0)
        # Below its threshold, a pair of one feed is no evidence either way (``_NEUTRAL``):
        # as in one-pass placing, two reports of one outlet join through other
        # outlets' reports, or by themselves only at ``same_feed_threshold``.
        sim[same & (sim < s.same_feed_threshold)] = _NEUTRAL
        iu, ju = np.nonzero(np.triu(same & ~np.isposinf(sim), 1))
        veto = self._title_veto(r.ids[iu], r.ids[ju])
        sim[iu[veto], ju[veto]] = _NEUTRAL
        sim[ju[veto], iu[veto]] = _NEUTRAL
        if r.names is not None and r.named is not None:  # a name threshold is set
            total = np.asarray(r.names.sum(axis=1)).ravel()
            # mine[k, j]: of k's names, the weight j also names; held = mine.T.
            mine = np.asarray((r.names @ r.named.T).toarray())
            share = np.maximum(
                np.divide(mine, total[:, None], out=np.ones((n, n)), where=total[:, None] > 0),
                np.divide(mine.T, total[None, :], out=np.ones((n, n)), where=total[None, :] > 0),
            )
            # Either one naming enough of the other's names: a short report names a few
            # of its event's; a long one names them and more.
            sim[(total[None, :] > 0) & (total[:, None] > 0) & (share < s.name_threshold)] = _NEVER
        out = np.minimum(sim, sim.T)  # exactly symmetric
        np.fill_diagonal(out, 1.0)
        return np.asarray(out, np.float64)

    def links(self, frontier: Sequence[int]) -> NDArray[np.int64]:
        """Edges from ``frontier``: pairs sharing a rare term (``_rare``) whose score
        clears the threshold.

        The documents holding a rare term are found through the stories holding
        it (the postings), then checked for the term themselves: a relation of
        the two documents, not of the stories they happen to be in.
        """
        index = self.index
        if not len(frontier):
            return np.empty((0, 2), np.int64)
        self.work.docs += len(frontier)
        f = self._rows(frontier, rare=True)
        _fit(f)
        assert f.rare_terms is not None
        terms = np.unique(f.rare_terms)
        held: set[int] = set()
        for term in terms.tolist():
            held.update(index.postings.stories(term))
        cand: set[int] = set()
        for story_id in held:
            story = index.stories.get(story_id)
            if story is not None:
                cand.update(a for _, a in story.members)
        if not cand:
            return np.empty((0, 2), np.int64)
        ids = sorted(cand)
        # A batch's first search often finds just its own documents: their rows are built.
        c = f if ids == list(frontier) else self._rows(ids, rare=True)
        _fit(f, c)
        assert f.rare is not None and c.rare is not None
        shared = f.rare @ c.rare.T
        self.work.candidate_pairs += shared.nnz
        # The pairs that may score an edge's threshold (the length scale only raises a
        # cosine, by at most ``length_cap ** length_exponent``; few of all the pairs that
        # share some term), then of those the ones sharing a rare term, in (row, column) order.
        s = self.settings
        sim = (f.tfidf @ c.tfidf.T).tocoo()
        close = np.flatnonzero(sim.data * s.length_cap**s.length_exponent >= s.edge_threshold)
        close = close[shared[sim.row[close], sim.col[close]] > 0]
        close = close[np.lexsort((sim.col[close], sim.row[close]))]
        fi, ci = sim.row[close].astype(np.int64), sim.col[close].astype(np.int64)
        dots = sim.data[close] * self._length_scale(f.terms[fi], c.terms[ci])
        edge = dots >= s.edge_threshold
        fi, ci, dots = fi[edge], ci[edge], dots[edge]
        a, b = f.ids[fi], c.ids[ci]
        fa, fb = self._feeds(f.ids)[fi], self._feeds(c.ids)[ci]
        ok = a != b
        ok &= (fa != fb) | (fa == 0) | (dots >= self.settings.same_feed_threshold)
        mine = np.flatnonzero(ok & (fa == fb) & (fa != 0))
        ok[mine[self._title_veto(a[mine], b[mine])]] = False
        return np.stack([a[ok], b[ok]], axis=1)


def df_level(df: NDArray[np.int64], settings: PartitionSettings) -> NDArray[np.int64]:
    """``idf_steps`` levels per doubling of the document frequency, up to ``idf_cap``
    (0: held by none; 1: by one document)."""
    capped = np.minimum(np.maximum(df, 0), settings.idf_cap).astype(np.float64)
    steps = settings.idf_steps
    out = np.floor(steps * np.log2(np.maximum(capped, 1.0)) + 1e-9).astype(np.int64) + 1
    return np.where(df > 0, out, 0)


def _positions(
    index: StoryIndex, article_ids: Sequence[int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Term positions in the index's columns of the documents, end to end, and whose."""
    docs = index.docs
    n = len(article_ids)
    rows = np.fromiter(map(docs.row_of.__getitem__, article_ids), np.int64, n)
    lo, lens = docs.offset[rows], docs.length[rows].astype(np.int64)
    at = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    return at, np.repeat(np.arange(n), lens)


def _fit(*rows: _Rows) -> None:
    """Give sparse rows one width (the widest), so that they multiply."""
    width = max(r.tfidf.shape[1] for r in rows)
    for r in rows:
        for m in (r.tfidf, r.names, r.named, r.rare):
            if m is not None and m.shape[1] != width:
                m.resize((m.shape[0], width))


def content_key(index: StoryIndex, article_id: int) -> tuple[float, bytes]:
    """A document's place in a component's order: its story time, then its sketch.

    Never its article id: ids are given in insertion order, which differs
    between two ingests of the same documents.
    """
    terms, weights, _ = index.docs.vector(article_id)
    digest = hashlib.blake2b(terms.tobytes() + weights.tobytes(), digest_size=8).digest()
    return float(index.docs[article_id].ts), digest


def cluster(
    scores: NDArray[np.float64],
    ts: Sequence[float],
    settings: PartitionSettings,
    langs: Sequence[int] | None = None,
) -> list[int]:
    """Agglomerate documents (in a fixed order) into clusters; each one's label.

    The two clusters with the highest linkage (average or complete over their
    pairs; a forbidden pair, ``-inf``, forbids the whole join) join while it
    clears the threshold and the union spans at most the window. Equal
    linkages join the pair that comes first in the documents' order, so the
    result depends on the scores and that order alone. A label is the
    position of the cluster's first document.
    """
    n = len(ts)
    if n <= 1:
        return list(range(n))
    s = settings
    sc = np.array(scores, np.float64)
    if s.linkage != "complete":
        sc[np.isposinf(sc)] = 0.0
    if langs is not None:
        la = np.asarray(langs)
        differ = (la[:, None] != la[None, :]) & (la[:, None] != 0) & (la[None, :] != 0)
        sc[differ] = _NEVER
    if s.linkage == "complete":
        return _complete(sc, np.asarray(ts, np.float64), s)
    forbidden = np.isneginf(sc)
    link = np.where(forbidden, 0.0, sc)  # sums of pair scores (average) or minima (complete)
    size = np.ones(n)
    first = np.asarray(ts, np.float64).copy()
    last = first.copy()
    alive = np.ones(n, np.bool_)
    label = list(range(n))
    members: list[list[int]] = [[i] for i in range(n)]
    complete = s.linkage == "complete"
    while True:
        value = link.copy() if complete else link / np.outer(size, size)
        span = np.maximum.outer(last, last) - np.minimum.outer(first, first)
        ok = ~forbidden & (span <= s.window_s) & np.outer(alive, alive)
        np.fill_diagonal(ok, False)
        value = np.where(ok, value, _NEVER)
        best = float(value.max())
        if best < s.threshold:
            break
        # The first pair, in the documents' order, among those of the best linkage.
        i, j = (int(v) for v in np.argwhere(value == best)[0])
        i, j = min(i, j), max(i, j)
        if complete:
            link[i] = np.minimum(link[i], link[j])
        else:
            link[i] = link[i] + link[j]
        link[:, i] = link[i]
        forbidden[i] |= forbidden[j]
        forbidden[:, i] = forbidden[i]
        size[i] += size[j]
        first[i], last[i] = min(first[i], first[j]), max(last[i], last[j])
        alive[j] = False
        link[j], link[:, j] = 0.0, 0.0
        members[i] += members[j]
        members[j] = []
    for head, group in enumerate(members):
        for m in group:
            label[m] = head
    return label


def _complete(sc: NDArray[np.float64], ts: NDArray[np.float64], s: PartitionSettings) -> list[int]:
    """``cluster`` by complete link, in about n² steps rather than n³.

    Under complete link a cluster's linkage to another is its weakest pair,
    and its span is its farthest pair: the window is a pairwise guard too,
    so a pair too far apart is simply forbidden. Linkages only fall as
    clusters grow, so each row's best partner is recomputed only when it was
    one of the two that joined, or gained evidence from a neutral pair.
    A neutral pair (``+inf``) is left out of the minimum.
    """
    n = len(ts)
    v = np.where(np.abs(ts[:, None] - ts[None, :]) <= s.window_s, sc, _NEVER)
    np.fill_diagonal(v, _NEVER)

    def best(rows: NDArray[np.int64]) -> None:
        # A pair of clusters with only neutral pairs between them has no evidence to join.
        sel = v[rows]
        sel = np.where(np.isposinf(sel), _NEVER, sel)
        best_j[rows] = np.argmax(sel, axis=1)  # the first of equals: the documents' order
        best_v[rows] = sel[np.arange(len(rows)), best_j[rows]]

    best_j = np.zeros(n, np.int64)
    best_v = np.full(n, _NEVER)
    best(np.arange(n))
    members: list[list[int]] = [[i] for i in range(n)]
    while True:
        i = int(np.argmax(best_v))
        if best_v[i] < s.threshold:
            break
        j = int(best_j[i])
        i, j = min(i, j), max(i, j)
        row = np.minimum(v[i], v[j])  # -inf stays -inf: a forbidden pair forbids the join
        # A neutral pair that now has evidence can become a row's best: recompute it.
        woke = np.isposinf(v[i]) & ~np.isposinf(row)
        row[i] = row[j] = _NEVER
        v[i], v[:, i] = row, row
        v[j], v[:, j] = _NEVER, _NEVER
        best_v[j] = _NEVER
        members[i] += members[j]
        members[j] = []
        stale = np.flatnonzero((best_j == i) | (best_j == j) | woke)
        best(np.union1d(stale, [i]).astype(np.int64))
    label = list(range(n))
    for head, group in enumerate(members):
        for m in group:
            label[m] = head
    return label


@dataclass(frozen=True, slots=True)
class Inherited:
    """What one consolidation changes: new story of each moved document, and the history."""

    moves: dict[int, int]  # article id → its new story id (only documents that moved)
    merges: list[tuple[int, int]]  # (absorbed, survivor): the old id now resolves to the survivor
    splits: list[tuple[int, int]]  # (new story, the story it split from)
    # A moved article's evidence: its closest member in its new story and their score
    # (absent: it is alone there, a story of its own).
    evidence: dict[int, tuple[int, float]] = dataclasses.field(default_factory=dict)


def inherit(
    old: dict[int, int],
    groups: Sequence[Sequence[int]],
    is_free: Callable[[int], bool],
) -> Inherited:
    """Story ids for new clusters, from the stories their documents were in (``old``).

    An old story's id goes to the cluster holding more than half of its
    documents (a story keeps its id while most of its articles stay); when
    one cluster has the majorities of several, the largest old story's id
    (then the smallest id) survives and the others merge into it. A cluster
    that inherits nothing takes the smallest of its documents' ids that is
    free (``is_free``: never yet a story id), else the smallest id it could
    inherit, and records what it split from. An old story with no majority
    anywhere resolves to the cluster holding most of its documents.
    """
    sizes: dict[int, int] = {}
    for s in old.values():
        sizes[s] = sizes.get(s, 0) + 1
    overlap: list[dict[int, int]] = []
    for g in groups:
        c: dict[int, int] = {}
        for a in g:
            c[old[a]] = c.get(old[a], 0) + 1
        overlap.append(c)
    heir: dict[int, int] = {}  # old story → the group holding its majority
    for k, c in enumerate(overlap):
        for s, m in c.items():
            if 2 * m > sizes[s]:
                heir[s] = k
    kept: dict[int, list[int]] = {}  # group → the old stories it holds the majority of
    for s, k in heir.items():
        kept.setdefault(k, []).append(s)
    ids: list[int | None] = [None] * len(groups)
    merges: list[tuple[int, int]] = []
    for k in sorted(kept):
        mine = sorted(kept[k], key=lambda s: (-sizes[s], s))
        ids[k] = mine[0]
        merges += [(s, mine[0]) for s in mine[1:]]
    used = {i for i in ids if i is not None}
    splits: list[tuple[int, int]] = []
    for k, g in enumerate(groups):
        if ids[k] is not None:
            continue
        free = [a for a in sorted(g) if a not in used and is_free(a)]
        origins = sorted(overlap[k], key=lambda s: (-overlap[k][s], s))
        if free:
            ids[k] = free[0]
        else:  # every document's id is taken: reuse an old id no cluster keeps
            spare = [s for s in sorted(overlap[k]) if s not in used and s not in heir]
            ids[k] = spare[0] if spare else _fresh_id(min(g), used, is_free)
        used.add(ids[k])  # type: ignore[arg-type]
        splits += [(ids[k], s) for s in origins if s != ids[k]]  # type: ignore[misc]
    # An old story kept by nobody resolves to the cluster holding most of it.
    for s in sorted(sizes):
        if s in heir or s in used:
            continue
        k = max(range(len(groups)), key=lambda k: (overlap[k].get(s, 0), -k))
        merges.append((s, ids[k]))  # type: ignore[arg-type]
    moves = {a: ids[k] for k, g in enumerate(groups) for a in g if old[a] != ids[k]}
    return Inherited(moves, merges, splits)  # type: ignore[arg-type]


FRESH_IDS = 1 << 40  # story ids no article has: see ``_fresh_id``


def _fresh_id(article_id: int, used: set[int], is_free: Callable[[int], bool]) -> int:
    """An id for a cluster whose documents' ids are all stories' (a story's founder
    left it alone, and the story kept its id): above every article id, from the
    cluster's smallest article id, the first free one."""
    story_id = FRESH_IDS + article_id
    while story_id in used or not is_free(story_id):
        story_id += 1
    return story_id


def components(scorer: PairScorer, seeds: Iterable[int], stories: StoryIndex) -> list[list[int]]:
    """The candidate graph's components holding ``seeds``, and the rest of their stories.

    Every story a visited document sits in is visited whole, so each old
    story falls wholly inside the documents clustered again. The search goes
    a frontier at a time, each one's edges found in one sparse product.
    """
    docs = stories.docs
    seen: set[int] = set()
    frontier = sorted({a for a in seeds if a in docs})
    found: list[NDArray[np.int64]] = []
    while frontier:
        seen.update(frontier)
        edges = scorer.links(frontier)
        found.append(edges)
        nxt = {int(b) for b in np.unique(edges[:, 1]).tolist()} - seen
        for story_id in {docs.story_of(a) for a in frontier}:
            story = stories.stories.get(story_id) if story_id is not None else None
            if story is not None:
                nxt.update(m for _, m in story.members if m not in seen)
        frontier = sorted(nxt)
    ids = np.array(sorted(seen), np.int64)
    if not len(ids):
        return []
    pairs = np.concatenate(found) if found else np.empty((0, 2), np.int64)
    at = np.searchsorted(ids, pairs)
    graph = sparse.coo_array(
        (np.ones(len(pairs)), (at[:, 0], at[:, 1])), shape=(len(ids), len(ids))
    )
    _, label = csgraph.connected_components(graph, directed=True, connection="weak")
    out: dict[int, list[int]] = {}
    for a, k in zip(ids.tolist(), label.tolist(), strict=True):
        out.setdefault(k, []).append(a)
    return sorted(out.values())


def consolidate(
    index: StoryIndex,
    scorer: PairScorer,
    settings: PartitionSettings,
    seeds: Iterable[int],
    is_free: Callable[[int], bool],
) -> Inherited:
    """Cluster again the components ``seeds`` touch, and those of the documents whose
    scores changed (``PairScorer.stale``); what changes (nothing applied yet)."""
    groups: list[list[int]] = []
    old: dict[int, int] = {}
    scorer.fresh()
    comps = components(scorer, [*seeds, *scorer.stale()], index)
    several = [comp for comp in comps if len(comp) > 1]
    for comp in several:
        comp.sort(key=lambda a: content_key(index, a))
    scored = iter(scorer.scores_many(several))
    for comp in comps:
        if len(comp) > 1:
            ts = [float(index.docs[a].ts) for a in comp]
            langs = [index.stories.meta(index.docs.story_of(a) or a)[2] for a in comp]
            labels = cluster(next(scored), ts, settings, langs)
        else:
            labels = [0]
        by_label: dict[int, list[int]] = {}
        for a, label in zip(comp, labels, strict=True):
            by_label.setdefault(label, []).append(a)
            old[a] = index.docs.story_of(a) or a
        groups += by_label.values()
    return inherit(old, groups, is_free)


__all__ = [
    "DocScorer",
    "Inherited",
    "PairScorer",
    "PartitionSettings",
    "Work",
    "cluster",
    "components",
    "consolidate",
    "content_key",
    "inherit",
]
