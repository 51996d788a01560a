"""Stories in time: story time, the window rule, what the index holds, and one placement order."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from newsfold.api.schemas import span_days
from newsfold.cli.browse import cluster_json
from newsfold.config import DedupSettings, load_settings
from newsfold.dedup import DedupDoc, Deduplicator, StoredDoc
from newsfold.dedup.order import placement_order
from newsfold.evaluation.datasets import Record
from newsfold.evaluation.scoring import to_docs
from newsfold.pipeline.prepare import story_time
from newsfold.storage.records import ClusterSummary
from newsfold.types import Article, DateSource, Level, Tier

T0 = datetime(2024, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
TOLERANCE = timedelta(hours=1)

# One affair, told differently each day: every report shares most of its words and
# names with the one before, so only time tells the days apart.
SAGA = (
    "Senator Harlan Voss faced the Ledger inquiry again as Governor Mira Castellane "
    "testified about the harbour contracts and the missing Ledger files on day {d}, "
    "and the inquiry heard from {who} about the harbour contracts"
)
WHO = ("the harbour master", "the port auditor", "the contract clerk", "the city treasurer")


def _article(published: datetime, source: DateSource, seen: datetime = T0) -> Article:
    return Article(
        feed_id=1,
        entry_key="k",
        url=None,
        title="t",
        summary="",
        text="x",
        comparison_text="x",
        content_hash="h",
        published=published,
        fetched_at=seen,
        date_source=source,
    )


@pytest.mark.parametrize(
    ("published", "source", "expected"),
    [
        (T0 - 400 * DAY, DateSource.FEED, T0 - 400 * DAY),  # a back catalogue keeps its dates
        (T0 - DAY, DateSource.FEED, T0 - DAY),  # a late report keeps its date
        (T0 + TOLERANCE / 2, DateSource.FEED, T0 + TOLERANCE / 2),  # a little clock skew
        (T0 + 2 * TOLERANCE, DateSource.FEED, T0),  # beyond the tolerance: first seen
        (datetime(1970, 1, 1, tzinfo=UTC), DateSource.FEED, T0),  # "no date"
        (T0 - DAY, DateSource.FIRST_SEEN, T0),
        (T0 - DAY, DateSource.CLAMPED, T0),
    ],
)
def test_story_time_is_credible_publication_else_first_seen(
    published: datetime, source: DateSource, expected: datetime
) -> None:
    assert story_time(_article(published, source), future_tolerance=TOLERANCE) == expected


def _saga_doc(d: int, at: datetime, **kw: object) -> DedupDoc:
    fields: dict[str, object] = {
        "article_id": d + 1,
        # Each day's report from another outlet: one outlet's numbered follow-ups ("day 1",
        # "day 2") read as a series' items, which the same-feed rule keeps apart.
        "feed_id": d + 1,
        "published": at,
        "title": f"Voss inquiry, day {d}",
        "text": SAGA.format(d=d, who=WHO[d % len(WHO)]),
        "url": None,
        "content_hash": f"h{d}",
        "language": "en",
    }
    fields.update(kw)
    return DedupDoc(**fields)  # type: ignore[arg-type]


def _place(dedup: Deduplicator, docs: list[DedupDoc]) -> dict[int, int]:
    """Article id → story id (merges followed)."""
    alias: dict[int, int] = {}
    out = {}
    for d in docs:
        p = dedup.place(d, dedup.sketch(d))
        for old in p.merged_stories:
            alias[old] = p.story.cluster_id
        out[d.article_id] = p.story.cluster_id
    for a, story in out.items():
        s = story
        while s in alias:
            s = alias[s]
        out[a] = s
    return out


def _spans(docs: list[DedupDoc], story_of: dict[int, int]) -> list[float]:
    times: dict[int, list[datetime]] = {}
    for d in docs:
        times.setdefault(story_of[d.article_id], []).append(d.published)
    return [(max(t) - min(t)) / DAY for t in times.values()]


def test_a_daily_saga_is_a_series_of_stories_not_one_chain() -> None:
    settings = DedupSettings()
    docs = [_saga_doc(d, T0 + d * DAY) for d in range(30)]
    story_of = _place(Deduplicator(settings), docs)
    assert max(_spans(docs, story_of)) <= settings.story_window_days
    assert len(set(story_of.values())) >= 30 / (settings.story_window_days + 1)
    # Within one window the same affair is one story: time splits, it does not scatter.
    assert story_of[1] == story_of[2]


def test_a_late_report_joins_and_an_older_one_does_not() -> None:
    dedup = Deduplicator(DedupSettings())
    first = _place(dedup, [_saga_doc(0, T0), _saga_doc(1, T0 + DAY)])
    # Published between them, placed after them (seen late): same story.
    late = _place(dedup, [_saga_doc(2, T0 + DAY / 2, text=SAGA.format(d=0, who=WHO[2]))])
    assert late[3] == first[1] == first[2]
    # The same words dated a week before: another story.
    early = _place(dedup, [_saga_doc(3, T0 - 7 * DAY, text=SAGA.format(d=0, who=WHO[3]))])
    assert early[4] != first[1]


def test_a_copy_republished_after_the_window_starts_a_new_story() -> None:
    dedup = Deduplicator(DedupSettings())
    original = _saga_doc(0, T0, url="https://a.example/x")
    again = dataclasses.replace(original, article_id=2, published=T0 + 30 * DAY)
    copy = dataclasses.replace(original, article_id=3, published=T0 + 31 * DAY)
    placed = [dedup.place(d, dedup.sketch(d)) for d in (original, again, copy)]
    assert placed[1].story.tier is Tier.NEW
    assert placed[2].copy.tier is Tier.EXACT and placed[2].story.cluster_id == 2


def test_the_index_holds_what_was_published_or_first_seen_inside_the_window() -> None:
    dedup = Deduplicator(DedupSettings())
    # A back catalogue seen today, a current report seen today, an old report seen long ago.
    docs = [
        _saga_doc(0, T0 - 400 * DAY, seen=T0),
        _saga_doc(10, T0, seen=T0, text="A different matter entirely, about harbour fish."),
        _saga_doc(20, T0 - 30 * DAY, seen=T0 - 30 * DAY, text="Old news about the weather."),
    ]
    for d in docs:
        dedup.place(d, dedup.sketch(d))
    assert dedup.evict_before(T0 - 7 * DAY) == 1  # only the one seen long ago
    assert dedup.evict_before(T0 + DAY) == 2


def test_a_rebuild_restores_first_seen_for_eviction() -> None:
    dedup = Deduplicator(DedupSettings())
    d = _saga_doc(0, T0 - 400 * DAY, seen=T0)
    sketch = dedup.sketch(d)
    stored = StoredDoc(
        article_id=1,
        feed_id=1,
        published=d.published,
        url=None,
        content_hash="h0",
        language="en",
        signature=sketch.signature,
        story=sketch.story,
        copy_id=1,
        story_id=1,
        seen=T0,
    )
    rebuilt = Deduplicator(DedupSettings())
    rebuilt.load([stored])
    assert rebuilt.evict_before(T0 - DAY) == 0
    assert rebuilt.evict_before(T0 + DAY) == 1


def test_eval_places_in_the_order_ingest_places_in() -> None:
    recs = [
        Record(id=str(i), cluster="c", title="t", text=f"text {i}", published=T0 - i * DAY)
        for i in range(5)
    ]
    docs, clock = to_docs(recs)
    assert clock == "published"
    assert [d.published for d in docs] == sorted(r.published for r in recs if r.published)
    assert placement_order(docs) == list(range(5))
    # Equal times are ordered by the documents themselves, not by where they came from.
    same = [dataclasses.replace(d, published=T0) for d in docs]
    assert placement_order(same) == placement_order(same[::-1])[::-1] or len(
        {d.content_hash for d in same}
    ) == len(same)


def test_settings_default_future_tolerance_is_used() -> None:
    settings = load_settings(None, read_file=False)
    assert settings.normalise.future_tolerance_s == TOLERANCE.total_seconds()


def test_a_cluster_shows_its_time_span() -> None:
    summary = ClusterSummary(
        id=7,
        level=Level.STORIES,
        title="t",
        size=3,
        first_seen=T0,
        last_seen=T0 + DAY * 1.5,
        sources=("a", "b"),
    )
    shown = cluster_json(summary)
    assert shown["first_published"] == "2024-12-01T12:00:00Z"
    assert shown["last_published"] == "2024-12-03T00:00:00Z"
    assert shown["span_days"] == 1.5
    assert {"first_seen", "last_seen"} <= shown.keys()  # the existing keys stay
    assert span_days(T0, T0 + DAY * 1.5) == 1.5
