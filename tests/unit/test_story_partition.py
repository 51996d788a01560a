"""Order-free stories: the partition after consolidation is a function of the set."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.dedup.stories.partition import PartitionSettings, cluster, inherit

T0 = datetime(2024, 3, 1, tzinfo=UTC)
_SYLLABLES = ["ka", "lo", "mi", "ran", "te", "vu", "zor", "pel", "dax", "qui", "ho", "ne"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(3))


def _corpus(events: int = 8, reports: int = 6, seed: int = 1) -> list[DedupDoc]:
    """Reports of made-up events: each event has its own names and words, all share a
    common vocabulary, and two events of one kind share half their words."""
    rng = random.Random(seed)
    common = [_word(rng) for _ in range(30)]
    docs = []
    kinds = [[_word(rng) for _ in range(12)] for _ in range(events // 2)]
    for e in range(events):
        names = [_word(rng).capitalize() for _ in range(4)]
        words = kinds[e // 2][:6] + [_word(rng) for _ in range(10)]
        for r in range(reports):
            body = [*rng.sample(words, 10), *rng.sample(common, 12)]
            body += rng.sample(names, 3)
            rng.shuffle(body)
            title = " ".join(rng.sample(names, 2) + rng.sample(words, 3))
            docs.append(
                DedupDoc(
                    article_id=len(docs) + 1,
                    feed_id=r % 3,
                    published=T0 + timedelta(days=10 * e, hours=r),
                    title=title,
                    text=" ".join(body) + ".",
                    url=f"https://x.example/{e}/{r}",
                    content_hash=f"{e}-{r}",
                    language=None,
                )
            )
    return docs


def _partition(docs: list[DedupDoc], order: list[int], batches: int) -> set[frozenset[int]]:
    """Place ``docs`` in ``order`` in ``batches`` batches, consolidating after each."""
    dedup = Deduplicator(DedupSettings())
    used: set[int] = set()
    picked = [docs[i] for i in order]
    size = -(-len(picked) // batches)
    for lo in range(0, len(picked), size):
        chunk = picked[lo : lo + size]
        for doc, sketch in zip(chunk, dedup.sketch_many(chunk), strict=True):
            used.add(dedup.place(doc, sketch).story.cluster_id)
        changes = dedup.consolidate([d.article_id for d in chunk], lambda a: a not in used)
        used.update(changes.moves.values())
    stories: dict[int, set[int]] = {}
    for d in docs:
        story = dedup.stories.docs.story_of(d.article_id)
        assert story is not None
        stories.setdefault(story, set()).add(d.article_id)
    return {frozenset(m) for m in stories.values()}


@pytest.mark.parametrize("seed", range(4))
def test_any_arrival_order_gives_the_same_partition(seed: int) -> None:
    docs = _corpus()
    by_time = _partition(docs, list(range(len(docs))), 1)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    for batches in (1, 3, len(docs)):
        assert _partition(docs, order, batches) == by_time, batches


def test_the_partition_separates_events_and_keeps_reports_together() -> None:
    docs = _corpus()
    parts = _partition(docs, list(range(len(docs))), 1)
    gold = {frozenset(range(e * 6 + 1, e * 6 + 7)) for e in range(8)}
    assert parts == gold


def test_cluster_respects_forbidden_pairs_and_the_window() -> None:
    s = PartitionSettings(threshold=0.1, window_s=10.0, linkage="complete")
    scores = np.full((3, 3), 0.9)
    scores[0, 2] = scores[2, 0] = -np.inf
    assert cluster(scores, [0.0, 1.0, 2.0], s) == [0, 0, 2]
    # All joinable, but the three would span more than the window.
    assert cluster(np.full((3, 3), 0.9), [0.0, 5.0, 11.0], s) == [0, 0, 2]


def test_ids_stay_with_the_majority_and_a_split_is_recorded() -> None:
    # Story 1 (articles 1-5) loses articles 4 and 5 to a new cluster; story 6 joins it whole.
    old = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 6}
    changes = inherit(old, [[1, 2, 3, 6], [4, 5]], lambda a: a not in {1, 6})
    assert changes.moves == {6: 1, 4: 4, 5: 4}
    assert (6, 1) in changes.merges
    assert changes.splits == [(4, 1)]


def test_a_founder_split_off_alone_gets_an_id_of_its_own() -> None:
    # Story 1's founder leaves it alone; the rest keep id 1, every article id was a story's.
    old = {1: 1, 2: 1, 3: 1, 4: 1}
    changes = inherit(old, [[2, 3, 4], [1]], lambda a: a > 4)
    assert changes.moves[1] != 1
    assert changes.moves[1] > 4
    assert changes.splits == [(changes.moves[1], 1)]
    assert {2, 3, 4}.isdisjoint(changes.moves)


def test_a_late_report_keeps_the_story_id() -> None:
    old = {10: 10, 11: 10, 12: 10, 30: 30}
    changes = inherit(old, [[10, 11, 12, 30]], lambda a: a not in {10, 30})
    assert changes.moves == {30: 10}
    assert changes.merges == [(30, 10)]
    assert changes.splits == []


def _hot(reports: int, others: int, seed: int = 5) -> list[DedupDoc]:
    """One event reported ``reports`` times over two days, beside ``others`` small events."""
    rng = random.Random(seed)
    common = [_word(rng) for _ in range(40)]
    hot_names = [_word(rng).capitalize() for _ in range(6)]
    hot_words = [_word(rng) for _ in range(30)]
    docs: list[DedupDoc] = []

    def add(title: str, body: list[str], at: datetime, feed: int) -> None:
        n = len(docs) + 1
        docs.append(
            DedupDoc(n, feed, at, title, " ".join(body) + ".", None, f"h{n}", language=None)
        )

    for r in range(reports):
        body = [*rng.sample(hot_words, 14), *rng.sample(common, 10), *rng.sample(hot_names, 3)]
        add(" ".join(rng.sample(hot_names, 2)), body, T0 + timedelta(minutes=5 * r), 1 + r % 40)
    for e in range(others):
        words = [_word(rng) for _ in range(16)]
        names = [_word(rng).capitalize() for _ in range(3)]
        for r in range(3):
            body = [*rng.sample(words, 12), *rng.sample(common, 10), *names]
            add(" ".join(names[:2]), body, T0 + timedelta(hours=e, minutes=r), 100 + r)
    return docs


def _place(dedup: Deduplicator, docs: list[DedupDoc]) -> set[int]:
    for doc, sketch in zip(docs, dedup.sketch_many(docs), strict=True):
        dedup.place(doc, sketch)
    return {d.article_id for d in docs}


def test_a_hot_story_costs_one_pass_per_batch_bounded_by_what_it_touches() -> None:
    docs = _hot(reports=511, others=40)
    late_one, late_ten, hot = docs[500:501], docs[501:511], docs[:500]
    unrelated = docs[-3:]
    dedup = Deduplicator(DedupSettings())
    first = [*hot, *docs[511:-3]]
    dedup.consolidate(sorted(_place(dedup, first)), lambda a: True)
    story = dedup.stories.docs.story_of(hot[0].article_id)
    assert sum(dedup.stories.docs.story_of(d.article_id) == story for d in hot) >= 490
    work = dedup.scorer.work

    def cost(batch: list[DedupDoc]) -> tuple[int, int, int]:
        before = (work.passes, work.docs, work.cluster_pairs)
        dedup.consolidate(sorted(_place(dedup, batch)), lambda a: True)
        return work.passes - before[0], work.docs - before[1], work.cluster_pairs - before[2]

    # One late report: the story is searched and clustered again once, so the work is
    # bounded by the story's size (plus what links to it), not by the window.
    passes, visited, pairs = cost(late_one)
    assert passes == 1
    assert visited <= 501 + 30
    assert pairs <= (501 + 30) ** 2
    # Ten late reports in one batch: still one pass over the story, not ten.
    passes, visited_ten, pairs_ten = cost(late_ten)
    assert passes == 1
    assert visited_ten <= visited + 10
    assert pairs_ten <= (511 + 30) ** 2
    # A batch elsewhere never touches the hot story (only the few small stories holding
    # a term whose frequency level the batch changed).
    passes, visited, pairs = cost(unrelated)
    assert passes == 1
    assert visited <= 40
    assert pairs <= 40**2
    assert all(dedup.stories.docs.story_of(d.article_id) == story for d in late_ten)


WORM_REPORTS = [
    ("Sha1-Hulud worm returns to npm: hundreds of packages compromised",
     "The Sha1-Hulud worm has returned to the npm registry, compromising hundreds of packages "
     "and stealing developer credentials through a preinstall script. Wiz counted 25,000 GitHub "
     "repositories exposing stolen secrets."),
    ("Second Sha1-Hulud wave hits hundreds of npm packages",
     "The second wave abuses a preinstall script in hundreds of compromised npm packages to steal "
     "credentials and publish them to 25,000 GitHub repositories, according to Wiz."),
    ("Preinstall script steals registry credentials, publishes them to GitHub",
     "A preinstall script steals registry credentials and publishes them to 25,000 GitHub "
     "repositories, Wiz said; maintainers should rotate tokens and credentials."),
    # A link post: its headline is all it says, and it shares no word with the third report.
    ("Live updates: Sha1-Hulud worm returns, hundreds of npm packages compromised", ""),
]  # fmt: skip


@pytest.mark.parametrize(("short_terms", "together"), [(12, True), (0, False)])
def test_a_headline_that_shares_nothing_with_one_report_still_joins_its_story(
    short_terms: int, together: bool
) -> None:
    """Under complete link one pair scoring 0 keeps a document out of a cluster; a document
    of a few terms scores 0 against many reports of its own event, so its low scores are no
    evidence against a join, while its high ones still link it."""
    from newsfold.evaluation import evaluate
    from newsfold.evaluation.datasets import Record

    t0 = datetime(2025, 11, 24, 9, tzinfo=UTC)
    records = [
        Record(f"r{i}", "worm", title, text, t0 + timedelta(hours=i), f"outlet{i}")
        for i, (title, text) in enumerate(WORM_REPORTS)
    ]
    stories = evaluate(records, DedupSettings(story_short_terms=short_terms), "stories").stories
    assert len({stories[1], stories[2], stories[3]}) == 1
    assert (stories[4] == stories[1]) is together
