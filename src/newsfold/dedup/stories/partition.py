"""Order-free stories: the window's documents clustered as a set, not as a stream.

One-pass placement (``scoring.Matcher``) decides each join once, in arrival
order, so the same documents arriving in another order can give other
stories. Consolidation re-decides: after a batch (a poll, a feed write), every
connected component of the candidate graph that the batch touches is
clustered again from scratch, by agglomeration over pairwise scores with the
guards (names, language, the story window). Two documents are linked in the
candidate graph when they share a term held by at most ``max_df`` documents
and their pair score clears the threshold: a relation of the two documents
and the window's document frequencies, so the components, and the clusters
inside them, are a function of the set of documents, not of their order.

The pair score is a narrow seam (``PairScorer``): ``DocScorer`` scores with
the story tier's own features (TF-IDF cosine of the two sketches, the share
of names each holds of the other's); another scorer slots in unchanged.

    candidate graph   component(seeds): the documents linked to the seeds, transitively
    cluster()         deterministic average- or complete-link agglomeration of one component
    inherit()         which new cluster keeps which story id; the merges and splits
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from numpy.typing import NDArray

    from newsfold.dedup.stories.index import StoryIndex

_NEVER = -np.inf


class PairScorer(Protocol):
    """Pairwise join scores over a set of documents (symmetric; ``-inf``: never together)."""

    def scores(self, article_ids: Sequence[int]) -> NDArray[np.float64]: ...

    def score_row(self, article_id: int, others: Sequence[int]) -> NDArray[np.float64]:
        """``scores`` of one document against others (one row, without the diagonal)."""
        ...

    def neighbours(self, article_id: int) -> Iterable[int]:
        """Documents that may score with ``article_id`` (a symmetric relation)."""
        ...

    def fresh(self) -> None:
        """Called before each consolidation: the window's documents changed."""
        ...


@dataclass(frozen=True, slots=True)
class PartitionSettings:
    threshold: float  # least linkage between two clusters to join them
    window_s: float  # the longest a story may span, first member to last
    linkage: str = "average"  # "average" or "complete"
    name_threshold: float = 0.0  # least share of one document's names the other holds
    max_df: float = 0.05  # a shared term held by more of the window's documents links nothing
    min_df_cap: int = 50  # ... but a term held by this many or fewer always may


class DocScorer:
    """``PairScorer`` over a story index's documents: the story tier's features.

    The score is the TF-IDF cosine of the two sketches; a pair in which
    neither document holds enough of the other's IDF-weighted names
    (``name_threshold``) never joins.
    """

    __slots__ = ("_cache", "index", "settings")

    def __init__(self, index: StoryIndex, settings: PartitionSettings) -> None:
        self.index, self.settings = index, settings
        self._cache: dict[
            int, tuple[NDArray[np.uint32], NDArray[np.float64], NDArray[np.float64]]
        ] = {}

    def fresh(self) -> None:
        """Forget the vectors computed so far (the document frequencies changed)."""
        self._cache.clear()

    def _vector(
        self, article_id: int
    ) -> tuple[NDArray[np.uint32], NDArray[np.float64], NDArray[np.float64]]:
        """A document's terms, unit TF-IDF weights and IDF-weighted names (cached)."""
        found = self._cache.get(article_id)
        if found is None:
            index = self.index
            doc = index.docs[article_id]
            idf = index.vocab.idf(doc.slots.astype(np.int64))
            w = doc.weights * idf
            found = (doc.terms, w / (float(np.sqrt(w @ w)) or 1.0), doc.names * idf)
            self._cache[article_id] = found
        return found

    def _df_cap(self) -> int:
        s = self.settings
        return max(s.min_df_cap, int(s.max_df * self.index.vocab.n_docs))

    def _columns(self, article_ids: Sequence[int]) -> _Cols:
        """The documents' TF-IDF vectors (unit length) and IDF-weighted names, end to end."""
        terms, weights, names, lens = [], [], [], []
        for a in article_ids:
            t, w, named = self._vector(a)
            terms.append(t)
            weights.append(w)
            names.append(named)
            lens.append(len(w))
        row = np.repeat(np.arange(len(lens)), lens)
        cat = np.concatenate
        return _Cols(
            cat(terms) if terms else np.empty(0, np.uint32),
            cat(weights) if weights else np.empty(0),
            cat(names) if names else np.empty(0),
            row,
            terms,
            weights,
            names,
        )

    def _row(self, cols: _Cols, k: int, n: int) -> NDArray[np.float64]:
        """Scores of document ``k`` of ``cols`` against all ``n`` of them."""
        terms, w, named = cols.terms[k], cols.weights[k], cols.names[k]
        if not len(terms):
            return np.zeros(n)
        at = np.minimum(np.searchsorted(terms, cols.all_terms), len(terms) - 1)
        hit = terms[at] == cols.all_terms
        contrib = np.where(hit, w[at] * cols.all_weights, 0.0)
        sim = np.bincount(cols.row, weights=contrib, minlength=n)
        s = self.settings
        total = float(named.sum())
        if s.name_threshold > 0 and total > 0:
            theirs = np.bincount(cols.row, weights=cols.all_names, minlength=n)
            # Of k's names, those j also names; of j's names, those k also names.
            both = hit & (cols.all_names > 0) & (named[at] > 0)
            mine = np.bincount(cols.row, weights=np.where(both, named[at], 0.0), minlength=n)
            held = np.bincount(cols.row, weights=np.where(both, cols.all_names, 0.0), minlength=n)
            share = np.maximum(
                mine / total, np.divide(held, theirs, out=np.ones(n), where=theirs > 0)
            )
            # Either one naming enough of the other's names: a short report names a few
            # of its event's; a long one names them and more.
            sim[(theirs > 0) & (share < s.name_threshold)] = _NEVER
        return np.asarray(sim, np.float64)

    def scores(self, article_ids: Sequence[int]) -> NDArray[np.float64]:
        n = len(article_ids)
        cols = self._columns(article_ids)
        out = np.array([self._row(cols, k, n) for k in range(n)]).reshape(n, n)
        out = np.minimum(out, out.T)  # exactly symmetric
        np.fill_diagonal(out, 1.0)
        return np.asarray(out, np.float64)

    def score_row(self, article_id: int, others: Sequence[int]) -> NDArray[np.float64]:
        row = self._row(self._columns([article_id, *others]), 0, len(others) + 1)
        return np.asarray(row[1:], np.float64)

    def neighbours(self, article_id: int) -> list[int]:
        """Documents sharing a term no more than ``_df_cap`` documents hold."""
        index = self.index
        terms, _, slots = index.docs.vector(article_id)
        rare = terms[index.vocab.df(slots.astype(np.int64)) <= self._df_cap()].copy()
        held: set[int] = set()
        for term in rare.tolist():
            held.update(index.postings.stories(term))
        found: set[int] = set()
        for story_id in held:
            story = index.stories.get(story_id)
            if story is not None:
                found.update(a for _, a in story.members)
        found.discard(article_id)
        if not found:
            return []
        # The stories' other members need not hold the term themselves.
        ids = sorted(found)
        vecs = [self._vector(a)[0] for a in ids]
        which = np.repeat(np.arange(len(ids)), [len(v) for v in vecs])
        shares = np.bincount(
            which,
            weights=np.isin(np.concatenate(vecs), rare).astype(np.float64),
            minlength=len(ids),
        )
        return [a for a, c in zip(ids, shares.tolist(), strict=True) if c > 0]


@dataclass(frozen=True, slots=True)
class _Cols:
    all_terms: NDArray[np.uint32]
    all_weights: NDArray[np.float64]
    all_names: NDArray[np.float64]
    row: NDArray[np.intp]
    terms: list[NDArray[np.uint32]]
    weights: list[NDArray[np.float64]]
    names: list[NDArray[np.float64]]


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
    if langs is not None:
        la = np.asarray(langs)
        differ = (la[:, None] != la[None, :]) & (la[:, None] != 0) & (la[None, :] != 0)
        sc[differ] = _NEVER
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


@dataclass(frozen=True, slots=True)
class Inherited:
    """What one consolidation changes: new story of each moved document, and the history."""

    moves: dict[int, int]  # article id → its new story id (only documents that moved)
    merges: list[tuple[int, int]]  # (absorbed, survivor): the old id now resolves to the survivor
    splits: list[tuple[int, int]]  # (new story, the story it split from)


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
    ids: list[int | None] = [None] * len(groups)
    merges: list[tuple[int, int]] = []
    for k in range(len(groups)):
        mine = sorted((s for s, g in heir.items() if g == k), key=lambda s: (-sizes[s], s))
        if mine:
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
            ids[k] = spare[0] if spare else min(g)
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


def components(
    scorer: PairScorer, settings: PartitionSettings, seeds: Iterable[int], stories: StoryIndex
) -> list[list[int]]:
    """The candidate graph's components holding ``seeds``, and the rest of their stories.

    Every story a visited document sits in is visited whole, so each old
    story falls wholly inside the documents clustered again.
    """
    seen: set[int] = set()
    todo = sorted(set(seeds))
    edges: dict[int, list[int]] = {}
    while todo:
        a = todo.pop()
        if a in seen or a not in stories.docs:
            continue
        seen.add(a)
        near = sorted(scorer.neighbours(a))
        linked = []
        if near:
            row = scorer.score_row(a, near)
            linked = [b for b, v in zip(near, row.tolist(), strict=True) if v >= settings.threshold]
        edges[a] = linked
        story = stories.docs.story_of(a)
        mates = [m for _, m in stories.stories[story].members] if story is not None else []
        todo.extend(b for b in (*linked, *mates) if b not in seen)
    # Union-find over the score edges (symmetric: both ends were visited).
    parent = {a: a for a in seen}

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, linked in edges.items():
        for b in linked:
            if b in parent:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    out: dict[int, list[int]] = {}
    for a in sorted(seen):
        out.setdefault(root(a), []).append(a)
    return list(out.values())


def consolidate(
    index: StoryIndex,
    scorer: PairScorer,
    settings: PartitionSettings,
    seeds: Iterable[int],
    is_free: Callable[[int], bool],
) -> Inherited:
    """Cluster again the components ``seeds`` touch; what changes (nothing applied yet)."""
    groups: list[list[int]] = []
    old: dict[int, int] = {}
    scorer.fresh()
    for comp in components(scorer, settings, seeds, index):
        comp.sort(key=lambda a: content_key(index, a))
        ts = [float(index.docs[a].ts) for a in comp]
        langs = [index.stories.meta(index.docs.story_of(a) or a)[2] for a in comp]
        labels = cluster(scorer.scores(comp), ts, settings, langs)
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
    "cluster",
    "components",
    "consolidate",
    "content_key",
    "inherit",
]
