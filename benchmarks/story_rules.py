"""Join rules for the story tier, measured in the real one-pass replay.

python -m benchmarks.story_rules UNDATED.jsonl [--dated DATED.jsonl] [--loto] [--folds 5]

Every document that reaches the story tier is placed by ``Deduplicator.place``
as in ingest; only the decision among the candidate stories is swapped for a
rule. Each candidate gets features (story cosine, name coverage both ways,
name cosine, best member, the rival candidates, story size) and a gold answer
(is the story's majority event the document's own). Decisions change later
candidates, so a rule is only ever scored by replaying it.

Rules measured: the shipped thresholds, thresholds loosened when no rival
story is close, a logistic join model and a logistic veto on top of the
thresholds (fitted on replay logs, two rounds of refitting on the model's
own replays), merges of grown stories afterwards, and oracles that reject
wrong joins (upper bounds). ``--loto`` fits and chooses on four fifths of
the topics and scores the held-out fifth replayed alone (see story_cv).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.optimize import minimize

from benchmarks.story_cv import folds_of, topics_of
from newsfold.config import DedupSettings
from newsfold.dedup import Deduplicator
from newsfold.dedup.stories.scoring import Matcher, StoryMatch, _common, names_shared
from newsfold.evaluation.datasets import read_dataset
from newsfold.evaluation.scoring import score, to_docs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import NDArray

    from newsfold.dedup.stories.index import StoryIndex
    from newsfold.evaluation.datasets import Record

FEATURES = ("sim", "ns", "rns", "ncos", "best", "second", "margin", "lsize")


@dataclass(slots=True)
class Candidate:
    story: int
    f: dict[str, float]
    right: bool  # the story's majority event is the document's


class Rule(Protocol):
    def accept(self, cands: list[Candidate]) -> list[int]: ...


def pick(cands: list[Candidate], ok: list[int]) -> int | None:
    """The accepted candidate with the highest cosine (smallest id among equals)."""
    return min(ok, key=lambda q: (-cands[q].f["sim"], cands[q].story)) if ok else None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The shipped rule: cosine ≥ t and name coverage ≥ nt."""

    t: float = DedupSettings().story_threshold
    nt: float = DedupSettings().story_name_threshold

    def accept(self, cands: list[Candidate]) -> list[int]:
        return [q for q, c in enumerate(cands) if c.f["sim"] >= self.t and c.f["ns"] >= self.nt]


@dataclass(frozen=True, slots=True)
class Competition:
    """Looser thresholds for a story of ``min_size`` members or more when no rival is close."""

    loose_t: float
    loose_nt: float
    rival: float
    min_size: int
    t: float = DedupSettings().story_threshold
    nt: float = DedupSettings().story_name_threshold

    def accept(self, cands: list[Candidate]) -> list[int]:
        ok = []
        for q, c in enumerate(cands):
            loose = c.f["second"] < self.rival and math.expm1(c.f["lsize"]) >= self.min_size - 0.5
            t, nt = (self.loose_t, self.loose_nt) if loose else (self.t, self.nt)
            if c.f["sim"] >= t and c.f["ns"] >= nt:
                ok.append(q)
        return ok


@dataclass(frozen=True, slots=True)
class Logistic:
    """Join when the model's probability clears ``tau``; with ``gate``, only candidates the
    shipped thresholds accept (a veto), else any candidate with cosine ≥ 0.2."""

    weights: tuple[float, ...]
    bias: float
    tau: float
    gate: bool

    def accept(self, cands: list[Candidate]) -> list[int]:
        cut = math.log(self.tau / (1 - self.tau))
        ok = []
        for q, c in enumerate(cands):
            if self.gate and not (c.f["sim"] >= 0.25 and c.f["ns"] >= 0.3):
                continue
            if not self.gate and c.f["sim"] < 0.2:
                continue
            z = sum(w * c.f[n] for w, n in zip(self.weights, FEATURES, strict=True)) + self.bias
            if z >= cut:
                ok.append(q)
        return ok


@dataclass(frozen=True, slots=True)
class Oracle:
    """The shipped thresholds, with wrong joins into stories of ≤ ``max_size`` members rejected."""

    max_size: int

    def accept(self, cands: list[Candidate]) -> list[int]:
        return [
            q
            for q in Thresholds().accept(cands)
            if cands[q].right or math.expm1(cands[q].f["lsize"]) > self.max_size + 0.5
        ]


@dataclass(frozen=True, slots=True)
class Merges:
    """Afterwards: a grown story merges with a grown candidate story whose vector is close
    (and, with ``names`` > 0, which names that share of its names both ways)."""

    size: int
    cosine: float
    names: float = 0.0


class LoggingMatcher(Matcher):
    """``Matcher`` whose decision is a rule's, logging every candidate with its features."""

    __slots__ = ("current", "gold", "log", "rule")

    def setup(self, rule: Rule, gold: dict[int, str]) -> None:
        self.rule, self.gold = rule, gold
        self.log: list[tuple[int, list[Candidate]]] = []
        self.current = 0

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
        if not len(terms):
            return None
        idf = self.vocab.idf(self.vocab.slots(terms))
        vec = weights * idf
        ranked = self.candidates(terms, vec, ts, lang)
        if own_feed is not None:  # the shipped same-feed rule holds for every rule compared
            cands0 = [self.stories[s] for s in ranked]
            sims0 = self.cosines(terms, vec, [(c.terms, c.weights, c.slots) for c in cands0])
            ranked = [
                s for s, sim in zip(ranked, sims0.tolist(), strict=True) if sim >= own_feed(s)
            ]
        named = names * idf if names is not None else np.zeros(len(terms))
        stories = [self.stories[s] for s in ranked]
        sims = self.cosines(terms, vec, [(s.terms, s.weights, s.slots) for s in stories])
        cands = []
        for k, (story_id, story) in enumerate(zip(ranked, stories, strict=True)):
            f = self._features(terms, vec, named, story, float(sims[k]), np.delete(sims, k))
            events = Counter(self.gold[a] for _, a in story.members)
            right = events.most_common(1)[0][0] == self.gold[self.current]
            cands.append(Candidate(story_id, f, right))
        self.log.append((self.current, cands))
        ok = self.rule.accept(cands)
        best = pick(cands, ok)
        if best is None:
            return None
        best_id, sim = cands[best].story, cands[best].f["sim"]
        merge = self.settings.merge_threshold
        merged = tuple(
            cands[q].story
            for q in ok
            if q != best
            and cands[q].f["sim"] >= merge
            and self.story_cosine(best_id, cands[q].story) >= merge
        )
        return StoryMatch(best_id, sim, self.closest_member(best_id, terms, vec), merged)

    def _features(
        self,
        terms: NDArray[np.uint32],
        vec: NDArray[np.float64],
        named: NDArray[np.float64],
        story: Any,
        sim: float,
        others: NDArray[np.float64],
    ) -> dict[str, float]:
        second = float(others.max()) if len(others) else 0.0
        has_names = bool(named.any()) and bool(story.names.any())
        ns = rns = 1.0
        ncos = 0.0
        if has_names:
            ns = names_shared(terms, named, story)
            i, j = _common(terms, story.terms)
            theirs = story.names * self.vocab.idf(story.slots)
            rns = float(theirs[j][named[i] > 0].sum()) / float(theirs.sum())
            norm = float(np.sqrt(named @ named) * np.sqrt(theirs @ theirs))
            ncos = float(named[i] @ theirs[j]) / norm if norm else 0.0
        members = [a for _, a in story.members[-16:]]
        best = float(self.cosines(terms, vec, [self.docs.vector(a) for a in members]).max())
        return {
            "sim": sim,
            "ns": ns,
            "rns": rns,
            "ncos": ncos,
            "best": best,
            "second": second,
            "margin": sim - second,
            "lsize": math.log1p(len(story.members)),
        }


def _names_both_ways(index: StoryIndex, a: int, b: int) -> float:
    sa, sb = index.stories[a], index.stories[b]
    na = sa.names * index.vocab.idf(sa.slots)
    nb = sb.names * index.vocab.idf(sb.slots)
    if not na.any() or not nb.any():
        return 1.0
    i, j = _common(sa.terms, sb.terms)
    return min(
        float(na[i][nb[j] > 0].sum()) / float(na.sum()),
        float(nb[j][na[i] > 0].sum()) / float(nb.sum()),
    )


@dataclass(slots=True)
class Replay:
    labels: list[tuple[int, int]]  # (fold tag, story) per record, merges resolved
    gold: list[str]
    log: list[tuple[int, list[Candidate]]] = field(default_factory=list)

    @property
    def ari(self) -> float:
        return score(self.gold, self.labels).ari


def replay(records: list[Record], rule: Rule, merges: Merges | None = None, tag: int = 0) -> Replay:
    """Place ``records`` as ``evaluate`` does, the story decision by ``rule``."""
    docs, _ = to_docs(records)
    settings = DedupSettings()
    dedup = Deduplicator(settings)
    index = dedup.stories
    matcher = LoggingMatcher(
        index.matcher.settings,
        vocab=index.vocab,
        postings=index.postings,
        stories=index.stories,
        docs=index.docs,
    )
    matcher.setup(rule, {d.article_id: records[d.article_id - 1].cluster for d in docs})
    index.matcher = matcher
    alias: dict[int, int] = {}
    story_of: dict[int, int] = {}
    for doc, sketch in zip(docs, dedup.sketch_many(docs), strict=True):
        matcher.current = doc.article_id
        placed = dedup.place(doc, sketch)
        story_of[doc.article_id] = placed.story.cluster_id
        for old in placed.merged_stories:
            alias[old] = placed.story.cluster_id
        if merges is not None and matcher.log and matcher.log[-1][0] == doc.article_id:
            gone = _merge_after(dedup, placed.story.cluster_id, matcher.log[-1][1], merges)
            if gone is not None:
                alias[max(gone)] = min(gone)

    def resolve(story: int) -> int:
        while story in alias:
            story = alias[story]
        return story

    labels = [(tag, resolve(story_of[i + 1])) for i in range(len(records))]
    return Replay(labels, [r.cluster for r in records], matcher.log)


def _merge_after(
    dedup: Deduplicator, story_id: int, cands: list[Candidate], rule: Merges
) -> tuple[int, int] | None:
    index = dedup.stories
    story = index.stories.get(story_id)
    if story is None or len(story.members) < rule.size:
        return None
    found = []
    for c in cands:
        other = index.stories.get(c.story)
        if c.story == story_id or other is None or len(other.members) < rule.size:
            continue
        cos = index.matcher.story_cosine(story_id, c.story)
        if cos >= rule.cosine and _names_both_ways(index, story_id, c.story) >= rule.names:
            found.append((cos, c.story))
    if not found:
        return None
    other_id = max(found)[1]
    keep, gone = min(story_id, other_id), max(story_id, other_id)  # the older id survives
    index.merge(keep, gone)
    dedup.copies.rename_story(gone, keep)
    return keep, gone


# ---------------------------------------------------------------------- fitting
def fit_logistic(
    logs: Iterable[tuple[int, list[Candidate]]], *, gate: bool, l2: float = 1.0
) -> tuple[tuple[float, ...], float]:
    """L2-regularised logistic regression of ``right`` on the features (standardised)."""
    rows, ys = [], []
    for _, cands in logs:
        for c in cands:
            gated = c.f["sim"] >= 0.25 and c.f["ns"] >= 0.3
            if (gate and gated) or (not gate and c.f["sim"] >= 0.2):
                rows.append([c.f[n] for n in FEATURES])
                ys.append(1.0 if c.right else 0.0)
    x, y = np.array(rows), np.array(ys)
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])

    def loss(w: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        s = z @ w
        grad = z.T @ (1 / (1 + np.exp(-s)) - y) + l2 * np.r_[w[:-1], 0.0]
        return float((np.logaddexp(0, s) - y * s).sum() + 0.5 * l2 * w[:-1] @ w[:-1]), grad

    w = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x
    raw = w[:-1] / sd
    return tuple(raw.tolist()), float(w[-1] - raw @ mu)


def train_logistic(records: list[Record], *, gate: bool, rounds: int = 2) -> Logistic:
    """Fit on the replay of ``records`` with the shipped rule, then refit on the model's own
    replays (its decisions change later candidates); tau by replay ARI on the same records."""
    logs = list(replay(records, Thresholds()).log)
    best: tuple[float, Logistic] | None = None
    for n in range(rounds + 1):
        weights, bias = fit_logistic(logs, gate=gate)
        tried = []
        for tau in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            model = Logistic(weights, bias, tau, gate)
            r = replay(records, model)
            tried.append((r.ari, tau, model, r))
        ari, _, model, r = max(tried, key=lambda t: (t[0], t[1]))
        if best is None or ari > best[0]:
            best = (ari, model)
        if n < rounds:
            logs.extend(r.log)
    assert best is not None
    return best[1]


# ------------------------------------------------------------------------ report
Fitter = Callable[[list[Any]], tuple[Rule, Merges | None]]


def choose(options: list[tuple[Rule, Merges | None]]) -> Fitter:
    """A fitter that picks, by replay ARI on the training records, one of ``options``."""

    def fit(train: list[Record]) -> tuple[Rule, Merges | None]:
        scored = [(replay(train, r, m).ari, -k) for k, (r, m) in enumerate(options)]
        return options[-max(scored)[1]]

    return fit


def loto(records: list[Record], topics: list[str], fitter: Fitter, k: int) -> dict[str, Any]:
    per_fold, gold, pooled = [], [], []
    for n, fold in enumerate(folds_of(topics, k)):
        train = [r for r, t in zip(records, topics, strict=True) if t not in fold]
        test = [r for r, t in zip(records, topics, strict=True) if t in fold]
        rule, merges = fitter(train)
        r = replay(test, rule, merges, tag=n)
        per_fold.append(r.ari)
        gold += r.gold
        pooled += r.labels
    return {
        "mean": statistics.fmean(per_fold),
        "sd": statistics.stdev(per_fold),
        "pooled": score(gold, pooled).ari,
    }


COMPETITION = [
    Competition(lt, lnt, rival, size)
    for lt, lnt in ((0.15, 0.1), (0.2, 0.2), (0.15, 0.2))
    for rival in (0.05, 0.1)
    for size in (3, 5)
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.story_rules", description=__doc__)
    p.add_argument("dataset", type=Path)
    p.add_argument("--dated", type=Path, help="the same documents with dates, scored alongside")
    p.add_argument("--loto", action="store_true", help="also leave-topics-out (slow: minutes)")
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    sets = {"undated": read_dataset(args.dataset)}
    if args.dated:
        sets["dated"] = read_dataset(args.dated)
    undated = sets["undated"]
    rows: list[tuple[str, Rule, Merges | None]] = [
        ("shipped thresholds 0.25 / names 0.3", Thresholds(), None),
        ("best competition thresholds (in-sample)", Competition(0.15, 0.1, 0.05, 3), None),
        ("+ merges of grown stories (3, 0.5)", Thresholds(), Merges(3, 0.5)),
        ("+ merges with names both ways ≥ 0.4", Thresholds(), Merges(3, 0.45, 0.4)),
        ("logistic join (fitted in-sample)", train_logistic(undated, gate=False), None),
        ("logistic veto (fitted in-sample)", train_logistic(undated, gate=True), None),
        ("oracle: no wrong join into 1-member stories", Oracle(1), None),
        ("oracle: no wrong join at all", Oracle(10**6), None),
    ]
    for name, rule, merges in rows:
        scores = "  ".join(f"{s} {replay(recs, rule, merges).ari:.3f}" for s, recs in sets.items())
        print(f"{name:48} {scores}", flush=True)
    if args.loto:
        topics = topics_of(args.dataset, undated)
        fitters: dict[str, Fitter] = {
            "shipped thresholds (no choice)": choose([(Thresholds(), None)]),
            "thresholds or competition, chosen": choose(
                [(Thresholds(), None), *((c, None) for c in COMPETITION)]
            ),
            "logistic veto, fitted": lambda train: (train_logistic(train, gate=True), None),
        }
        for name, fitter in fitters.items():
            out = loto(undated, topics, fitter, args.folds)
            print(
                f"LOTO {name:40} {out['mean']:.3f} ± {out['sd']:.3f} per fold, "
                f"{out['pooled']:.3f} pooled",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
