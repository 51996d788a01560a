"""The write side's pure step: what a poll changes, with no database and no index."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from newsfold.config import RetentionSettings, ScheduleSettings
from newsfold.dedup import Sketch
from newsfold.dedup.minhash import encode
from newsfold.errors import FetchError, ParseError
from newsfold.pipeline import decide
from newsfold.storage.records import FeedInfo, Validators
from newsfold.types import Article, ErrorKind, FetchOutcome, FetchResult, ParsedFeed

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(seconds=2)
SETTINGS = ScheduleSettings()


def _article(key: str, content_hash: str = "h") -> Article:
    return Article(
        feed_id=1,
        entry_key=key,
        url=f"https://site.example/{key}",
        title=key,
        summary="",
        text="",
        comparison_text="",
        content_hash=content_hash,
        published=NOW,
        fetched_at=NOW,
    )


def _feed(**fields: object) -> FeedInfo:
    base = FeedInfo(
        id=1,
        url="https://site.example/feed.xml",
        title=None,
        site_url=None,
        tags=(),
        full_text=False,
        configured_interval_s=None,
        origin="cli",
        created_at=NOW - timedelta(days=3),
        etag='"old"',
        last_modified=None,
        last_body_hash="old-hash",
        last_fetch_at=None,
        last_success_at=None,
        next_fetch_at=NOW,
        interval_s=1800,
        error_count=0,
        error_since=None,
        last_error_kind=None,
        last_error=None,
        disabled_reason=None,
        redirect_candidate=None,
        redirect_seen=0,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _result(status: int = 200, **fields: object) -> FetchResult:
    url = "https://site.example/feed.xml"
    return FetchResult(
        requested_url=url,
        url=url,
        status=status,
        content=b"" if status == 304 else b"<rss/>",
        not_modified=status == 304,
        **fields,  # type: ignore[arg-type]
    )


PARSED = ParsedFeed(format="rss20", title="Site", link="https://site.example/", entries=())


# --- entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "stored", "new", "revised", "unchanged"),
    [
        ([], {}, [], [], 0),
        ([("a", "h"), ("b", "h")], {}, ["a", "b"], [], 0),
        ([("a", "h")], {"a": (7, "h")}, [], [], 1),
        ([("a", "h2")], {"a": (7, "h")}, [], [(7, "a")], 0),
        # Order is the feed's: new and revised entries keep it.
        (
            [("c", "h"), ("a", "x"), ("b", "h"), ("d", "h")],
            {"a": (1, "h"), "b": (2, "h")},
            ["c", "d"],
            [(1, "a")],
            1,
        ),
        # Stored entries the poll does not mention are not the poll's business.
        ([("a", "h")], {"z": (9, "h")}, ["a"], [], 0),
    ],
    ids=["empty", "all-new", "unchanged", "revised", "mixed", "others-stored"],
)
def test_diff_entries(
    keys: list[tuple[str, str]],
    stored: dict[str, tuple[int, str]],
    new: list[str],
    revised: list[tuple[int, str]],
    unchanged: int,
) -> None:
    changes = decide.diff_entries([_article(k, h) for k, h in keys], stored)
    assert [a.entry_key for a in changes.new] == new
    assert [(aid, a.entry_key) for aid, a in changes.revised] == revised
    assert changes.unchanged == unchanged


def _sketch(values: list[int]) -> Sketch:
    return Sketch(signature=encode(np.array(values, dtype=np.uint32), 10), story=b"")


SIG = list(range(100))


@pytest.mark.parametrize(
    ("new_sig", "founder", "re_placed"),
    [
        (SIG, False, False),  # the same text: keeps its place
        ([*SIG[:95], *range(1000, 1005)], False, False),  # 95 % alike: a trivial edit
        ([*SIG[:50], *range(1000, 1050)], False, True),  # half of it new: placed again
        ([*SIG[:50], *range(1000, 1050)], True, False),  # …unless others joined its cluster
        (list(range(1000, 1100)), False, True),  # a different text under the same entry
    ],
    ids=["same", "trivial", "material", "material-founder", "rewritten"],
)
def test_decide_revisions(new_sig: list[int], founder: bool, re_placed: bool) -> None:
    article = _article("a", "new")
    sketch = _sketch(new_sig)
    [revision] = decide.decide_revisions(
        [(7, article)],
        [sketch],
        {7: _sketch(SIG).signature},
        {7} if founder else set(),
    )
    assert (revision.article_id, revision.article) == (7, article)
    assert revision.sketch == (sketch if re_placed else None)


def test_signature_similarity_of_unlike_shapes_is_zero() -> None:
    assert decide.signature_similarity(_sketch(SIG).signature, _sketch(SIG[:50]).signature) == 0.0


# --- the feed's next state ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "parsed", "expected"),
    [
        (_result(304), None, FetchOutcome.NOT_MODIFIED),
        (_result(200), None, FetchOutcome.UNCHANGED),
        (_result(200), PARSED, FetchOutcome.OK),
    ],
)
def test_outcome(result: FetchResult, parsed: ParsedFeed | None, expected: FetchOutcome) -> None:
    assert decide.outcome(result, parsed) is expected


def _after_success(
    feed: FeedInfo, result: FetchResult, parsed: ParsedFeed | None
) -> decide.FeedUpdate:
    return decide.after_success(
        feed,
        result,
        parsed,
        started_at=STARTED,
        now=NOW,
        settings=SETTINGS,
        rng=random.Random(0),
        entry_times=[],
        boilerplate="{}",
    )


def test_not_modified_keeps_validators_title_and_model() -> None:
    update = _after_success(_feed(), _result(304), None)
    assert update.validators is None
    assert (update.title, update.site_url, update.boilerplate, update.moved_to) == (None,) * 4
    assert (update.last_fetch_at, update.last_success_at) == (STARTED, NOW)
    assert update.health.next_fetch_at > NOW


def test_same_bytes_store_new_validators_but_nothing_parsed() -> None:
    result = _result(200, etag='"new"', body_hash="old-hash")
    update = _after_success(_feed(), result, None)
    assert update.validators == Validators('"new"', None, "old-hash")
    assert (update.title, update.boilerplate) == (None, None)


@pytest.mark.parametrize(
    ("stored_title", "stored_site", "title", "site_url"),
    [
        (None, None, "Site", "https://site.example/"),  # the feed's own names fill the gaps
        ("Mine", "https://mine.example/", "Mine", "https://site.example/"),  # a title given stays
    ],
)
def test_parsed_document_fills_title_and_site(
    stored_title: str | None, stored_site: str | None, title: str, site_url: str
) -> None:
    feed = _feed(title=stored_title, site_url=stored_site)
    update = _after_success(feed, _result(200, etag='"e"', body_hash="b"), PARSED)
    assert (update.title, update.site_url) == (title, site_url)
    assert update.validators == Validators('"e"', None, "b")
    assert update.boilerplate == "{}"


@pytest.mark.parametrize(
    ("candidate", "seen", "moved_to"),
    [
        (None, 0, None),  # a first 301 is only noted
        ("https://new.example/feed.xml", 1, "https://new.example/feed.xml"),  # the second moves
        ("https://other.example/feed.xml", 1, None),  # a different target starts over
    ],
)
def test_permanent_redirect_moves_on_the_second_sighting(
    candidate: str | None, seen: int, moved_to: str | None
) -> None:
    feed = _feed(redirect_candidate=candidate, redirect_seen=seen)
    result = _result(200, permanent_redirect="https://new.example/feed.xml")
    assert _after_success(feed, result, PARSED).moved_to == moved_to


@pytest.mark.parametrize(
    ("error", "kind", "disabled"),
    [
        (
            FetchError("503", url="u", kind=ErrorKind.TRANSIENT, status=503),
            ErrorKind.TRANSIENT,
            False,
        ),
        (ParseError("not a feed"), ErrorKind.PERMANENT, False),
        (FetchError("410", url="u", kind=ErrorKind.GONE, status=410), ErrorKind.GONE, True),
    ],
    ids=["transient", "permanent", "gone"],
)
def test_after_error(error: FetchError | ParseError, kind: ErrorKind, disabled: bool) -> None:
    feed = _feed(error_count=2, error_since=NOW - timedelta(hours=1))
    update = decide.after_error(
        feed, error, started_at=STARTED, now=NOW, settings=SETTINGS, rng=random.Random(0)
    )
    assert update.health.consecutive_errors == 3
    assert update.health.last_error_kind is kind
    assert bool(update.health.disabled_reason) is disabled
    assert update.last_fetch_at == STARTED
    # An error changes nothing else about the feed.
    assert update.last_success_at is None and update.validators is None
    assert (update.title, update.site_url, update.boilerplate, update.moved_to) == (None,) * 4


@pytest.mark.parametrize(
    ("days", "age_days", "stored"),
    [
        (None, 400.0, True),  # retention off: everything is stored
        (30.0, 29.0, True),
        (30.0, 31.0, False),
        # Retention shorter than two story windows (3 days each): an entry a little past the
        # cutoff may still join an open story, so only one past both edges is left out.
        (2.0, 5.0, True),
        (2.0, 6.5, False),
    ],
)
def test_new_entries_past_retention_are_left_out(
    days: float | None, age_days: float, stored: bool
) -> None:
    old = replace(_article("old"), published=NOW - timedelta(days=age_days))
    changes = decide.EntryChanges(new=(_article("fresh"), old), revised=(), unchanged=0)
    edges = decide.retention_edges(NOW, RetentionSettings(days=days), story_window_days=3.0)
    kept = decide.drop_expired(changes, edges, lambda a: a.published)
    assert [a.entry_key for a in kept.new] == (["fresh", "old"] if stored else ["fresh"])
