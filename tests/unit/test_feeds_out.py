"""Output feeds from stored stories: the representative rule, Atom (RFC 4287) and JSON Feed 1.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from newsfold.api.feeds_out import (
    FeedMeta,
    render_atom,
    render_json_feed,
    representative,
    story_summary,
)
from newsfold.storage.published import PublishedMember, PublishedStory

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def member(
    id: int,
    hours: float,
    feed: str = "Alpha",
    *,
    title: str = "",
    summary: str = "",
    text: str = "",
) -> PublishedMember:
    return PublishedMember(
        id=id,
        title=title or f"Title {id}",
        url=f"https://{feed.lower().replace(' ', '')}.example/{id}",
        feed_id=hash(feed) % 1000,
        feed=feed,
        feed_site_url=None,
        author=None,
        published=T0 + timedelta(hours=hours),
        summary=summary,
        snippet=text,
        tier="new" if id == 1 else "near",
        similarity=1.0 if id == 1 else 0.7,
        matched_article_id=None if id == 1 else 1,
    )


def story(sid: int, *members: PublishedMember) -> PublishedStory:
    ordered = tuple(sorted(members, key=lambda m: (m.published, m.id)))
    return PublishedStory(
        id=sid,
        size=len(members),
        first_seen=ordered[0].published,
        last_seen=ordered[-1].published,
        members=ordered,
    )


@pytest.mark.parametrize(
    ("members", "expected_id"),
    [
        ((member(1, 0), member(2, 1), member(3, 2)), 1),  # earliest wins
        ((member(5, 3), member(4, 1), member(6, 2)), 4),  # not the lowest id: the earliest
        ((member(8, 1), member(7, 1)), 7),  # a tie goes to the one stored first
    ],
)
def test_representative_is_the_earliest_published(
    members: tuple[PublishedMember, ...], expected_id: int
) -> None:
    assert representative(story(1, *members)).id == expected_id


@pytest.mark.parametrize(
    ("summary", "text", "expected"),
    [
        ("Short summary.", "Long text " * 50, "Short summary."),
        ("", "From the text.", "From the text."),
        ("  spaced \n  out  ", "", "spaced out"),
        ("", "word " * 100, ("word " * 60).strip() + "…"),
        ("", "", ""),
    ],
)
def test_summary_falls_back_to_the_text(summary: str, text: str, expected: str) -> None:
    assert story_summary(member(1, 0, summary=summary, text=text)) == expected


HOSTILE = '<script>alert(1)</script> & "quotes" \x01 ]]>'

STORIES = [
    story(
        10,
        member(1, 0, "Alpha", title="First report", summary="What happened."),
        member(2, 1, "Alpha"),
        member(3, 2, "Beta"),
        member(4, 3, "Beta"),
        member(5, 4, "Gamma Post"),
    ),
    story(20, member(6, 5, "Delta", title=HOSTILE, summary=HOSTILE)),
]
META = FeedMeta(
    feed_url="http://127.0.0.1:8000/feeds/stories.atom",
    home_url="http://127.0.0.1:8000/",
    story_url="http://127.0.0.1:8000/stories/{id}",
)


def test_atom_is_valid_and_credits_every_source() -> None:
    parsed = feedparser.parse(render_atom(STORIES, META, now=NOW))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    feed = parsed.feed
    assert feed.id == "urn:newsfold:stories"
    assert feed.title
    assert feed.updated_parsed[:4] == (2026, 11, 20, 13)  # the newest story's last member
    assert feed.author == "newsfold"
    entries = {e.id: e for e in parsed.entries}
    assert list(entries) == ["urn:newsfold:story:10", "urn:newsfold:story:20"]
    big = entries["urn:newsfold:story:10"]
    assert big.title == "First report"
    assert big.summary == "What happened."
    assert big.updated_parsed[:4] == (2026, 11, 20, 12)
    assert big.published_parsed[:4] == (2026, 11, 20, 8)
    assert big.author == "Alpha"
    assert [c.name for c in big.contributors] == ["Beta", "Gamma Post"]
    hrefs = [link.href for link in big.links]
    assert hrefs[0] == "https://alpha.example/1"  # rel=alternate: the representative
    assert {
        f"https://{f}.example/{i}"
        for f, i in [("alpha", 2), ("beta", 3), ("beta", 4), ("gammapost", 5)]
    } <= set(hrefs)
    assert "http://127.0.0.1:8000/stories/10" in hrefs


def test_atom_keeps_hostile_text_as_text() -> None:
    body = render_atom(STORIES, META, now=NOW)
    assert b"<script>" not in body
    entry = feedparser.parse(body).entries[1]
    # feedparser sanitises text, so compare what survives: the quotes and the ampersand.
    assert '& "quotes"' in entry.title
    assert "\x01" not in entry.title  # XML 1.0 cannot carry C0 controls


def test_json_feed_required_fields() -> None:
    doc = render_json_feed(STORIES, META, now=NOW)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["title"]
    assert doc["feed_url"] == META.feed_url
    items = doc["items"]
    assert isinstance(items, list)
    assert [i["id"] for i in items] == ["urn:newsfold:story:10", "urn:newsfold:story:20"]
    big = items[0]
    assert big["content_html"].count("<li>") == 5
    assert big["url"] == "https://alpha.example/1"
    assert big["external_url"] == "http://127.0.0.1:8000/stories/10"
    assert big["date_published"] == "2026-11-20T08:00:00Z"
    assert big["date_modified"] == "2026-11-20T12:00:00Z"
    assert [a["name"] for a in big["authors"]] == ["Alpha", "Beta", "Gamma Post"]
    assert big["_newsfold"]["size"] == 5
    hostile = items[1]
    assert hostile["title"] == HOSTILE  # JSON carries the text as is
    assert "<script>" not in hostile["content_html"]  # the HTML rendering escapes it


def test_empty_feed_is_still_valid() -> None:
    parsed = feedparser.parse(render_atom([], FeedMeta(), now=NOW))
    assert not parsed.bozo
    assert parsed.feed.updated_parsed[:3] == (2026, 11, 21)
    assert render_json_feed([], FeedMeta(), now=NOW)["items"] == []
