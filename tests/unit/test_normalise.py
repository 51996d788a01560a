"""The normalise stage on real inputs: the seed fixtures and our own fixtures.

Each fixture in tests/data/normalise/ is an input document (feed or page) beside
``<name>.expected.json`` with the cleaned result expected for each entry.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsfold.config import NormaliseSettings
from newsfold.normalise import (
    STEPS,
    content_hash,
    extract_page,
    extract_report,
    normalise_entry,
)
from newsfold.parse import parse_feed
from newsfold.types import DateSource, FeedSource, RawEntry

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "fixtures"
DATA = REPO / "tests" / "data" / "normalise"
SETTINGS = NormaliseSettings()
NOW = datetime(2024, 12, 2, tzinfo=UTC)
SEED_FEED_URL = "https://voz.us/en/world/feed"


def _seed_expected() -> dict[str, object]:
    return json.loads((SHARED / "seed-article.expected.json").read_text(encoding="utf-8"))


def _check_seed(title: str, url: str | None, published: datetime, text: str) -> None:
    expected = _seed_expected()
    assert title == expected["title"]
    assert url == expected["canonical_url"]
    assert published.strftime("%Y-%m-%dT%H:%M:%SZ") == expected["published_utc"]
    assert text.startswith(str(expected["text_starts_with"]))
    assert text.endswith(str(expected["text_ends_with"]))
    for needle in expected["text_must_contain"]:  # type: ignore[attr-defined]
        assert needle in text
    for needle in expected["text_must_not_contain"]:  # type: ignore[attr-defined]
        assert needle not in text


@pytest.fixture(scope="module")
def seed_article():  # type: ignore[no-untyped-def]
    parsed = parse_feed((SHARED / "seed-feed.xml").read_bytes(), url=SEED_FEED_URL)
    feed = FeedSource(id=7, url=SEED_FEED_URL, title=parsed.title, site_url=parsed.link)
    return normalise_entry(parsed.entries[0], feed, fetched_at=NOW, settings=SETTINGS)


def test_seed_feed_entry_meets_expectations(seed_article) -> None:  # type: ignore[no-untyped-def]
    _check_seed(seed_article.title, seed_article.url, seed_article.published, seed_article.text)
    assert seed_article.summary.startswith("The rebel military command confirmed")
    assert seed_article.language == "en"
    assert seed_article.entry_key == "guid:voz-241201-aleppo"
    assert {"site_banner", "byline", "trailing_word"} <= set(seed_article.rules_fired)
    # Subheads stay in the text but not in what near-duplicate detection compares.
    assert "\nGeopolitical context\n" in seed_article.text
    assert "Geopolitical context" not in seed_article.comparison_text
    assert seed_article.content_hash == content_hash(seed_article.comparison_text)


@pytest.mark.parametrize(
    "url",
    [
        "https://voz.us/en/world/241201/russia-and-syria-launch-massive-airstrikes-after-jihadists-seize-aleppo.html",
        "https://voz.us/en/world/241201/russia-and-syria-launch-massive-airstrikes-after-jihadists-seize-aleppo.html?utm_source=x",
    ],
)
def test_seed_page_meets_expectations(url: str) -> None:
    page = extract_page((SHARED / "seed-article.html").read_bytes(), url)
    assert page.published is not None
    _check_seed(page.title or "", page.url, page.published, page.text)
    assert page.description is not None
    assert page.description.startswith("The rebel military command")


def test_seed_page_through_extract_report() -> None:
    [report] = extract_report((SHARED / "seed-article.html").read_bytes(), None, SETTINGS, now=NOW)
    published = datetime.fromisoformat(str(report["published"]))
    _check_seed(str(report["title"]), report["canonical_url"], published, str(report["text"]))  # type: ignore[arg-type]
    assert report["language"] == "en"
    assert report["date_source"] == "feed"


def test_seed_feed_and_page_compare_equal(seed_article) -> None:  # type: ignore[no-untyped-def]
    page = extract_page((SHARED / "seed-article.html").read_bytes(), seed_article.url)
    feed = FeedSource(
        id=7, url=SEED_FEED_URL, title="Voz.us — World", site_url="https://voz.us/en/world"
    )
    entry = RawEntry(guid="voz-241201-aleppo", link=seed_article.url, title=seed_article.title)
    full = normalise_entry(entry, feed, fetched_at=NOW, settings=SETTINGS, page=page)
    assert full.content_hash == seed_article.content_hash


def _fixtures() -> list[Path]:
    return sorted(DATA.glob("*.expected.json"))


def test_at_least_ten_fixtures() -> None:
    assert len(_fixtures()) >= 10


@pytest.mark.parametrize("expected_path", _fixtures(), ids=lambda p: p.name.split(".")[0])
def test_fixture(expected_path: Path) -> None:
    spec = json.loads(expected_path.read_text(encoding="utf-8"))
    now = datetime.fromisoformat(spec.get("now", "2024-12-02T00:00:00+00:00"))
    data = (DATA / spec["input"]).read_bytes()
    reports = extract_report(data, spec["url"], SETTINGS, now=now)
    assert len(reports) == len(spec["entries"])
    for report, expected in zip(reports, spec["entries"], strict=True):
        for key, value in expected.items():
            if key == "rules_fired":
                assert set(report[key]) == set(value), report[key]  # type: ignore[call-overload]
            else:
                assert report[key] == value, key


@pytest.mark.parametrize(
    ("published", "updated", "expected_source", "expected"),
    [
        (
            datetime(2024, 12, 1, 13, 5, tzinfo=UTC),
            None,
            DateSource.FEED,
            datetime(2024, 12, 1, 13, 5, tzinfo=UTC),
        ),
        (
            None,
            datetime(2024, 12, 1, 9, 0, tzinfo=UTC),
            DateSource.FEED,
            datetime(2024, 12, 1, 9, 0, tzinfo=UTC),
        ),
        (None, None, DateSource.FIRST_SEEN, NOW),
        (datetime(1970, 1, 1, tzinfo=UTC), None, DateSource.FIRST_SEEN, NOW),
        (NOW + timedelta(minutes=30), None, DateSource.FEED, NOW + timedelta(minutes=30)),
        (NOW + timedelta(days=3), None, DateSource.CLAMPED, NOW),
        (
            datetime(2024, 12, 1, 13, 5),
            None,
            DateSource.FEED,
            datetime(2024, 12, 1, 13, 5, tzinfo=UTC),
        ),
    ],
)
def test_dates(published, updated, expected_source, expected) -> None:  # type: ignore[no-untyped-def]
    entry = RawEntry(
        guid="g",
        link=None,
        title="T",
        content_html="<p>x</p>",
        published=published,
        updated=updated,
    )
    article = normalise_entry(
        entry, FeedSource(id=1, url="https://x.example/feed"), fetched_at=NOW, settings=SETTINGS
    )
    assert article.date_source is expected_source
    assert article.published == expected
    assert article.published.tzinfo is not None


@pytest.mark.parametrize(
    ("guid", "link", "prefix"),
    [
        ("  abc-1 ", "https://x.example/a", "guid:abc-1"),
        (None, "https://X.example/a?utm_source=rss", "url:https://x.example/a"),
        ("", "/relative/b", "url:https://x.example/relative/b"),
        (None, "javascript:void(0)", "hash:"),
        (None, None, "hash:"),
    ],
)
def test_entry_key(guid: str | None, link: str | None, prefix: str) -> None:
    entry = RawEntry(guid=guid, link=link, title="Title", content_html="<p>Some words here.</p>")
    feed = FeedSource(id=1, url="https://x.example/feed")
    article = normalise_entry(entry, feed, fetched_at=NOW, settings=SETTINGS)
    assert article.entry_key.startswith(prefix)
    again = normalise_entry(entry, feed, fetched_at=NOW + timedelta(hours=1), settings=SETTINGS)
    assert again.entry_key == article.entry_key


def test_hash_key_differs_by_title_when_body_empty() -> None:
    feed = FeedSource(id=1, url="https://x.example/feed")
    a = normalise_entry(
        RawEntry(guid=None, link=None, title="One headline"),
        feed,
        fetched_at=NOW,
        settings=SETTINGS,
    )
    b = normalise_entry(
        RawEntry(guid=None, link=None, title="Another headline"),
        feed,
        fetched_at=NOW,
        settings=SETTINGS,
    )
    assert a.entry_key != b.entry_key


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("The cat sat.", "the  CAT sat", True),
        ("Café", "Cafe\u0301", True),
        ("ﬁne print", "fine print", True),
        ("The cat sat.", "The dog sat.", False),
    ],
)
def test_content_hash(a: str, b: str, same: bool) -> None:
    assert (content_hash(a) == content_hash(b)) is same
    assert len(content_hash(a)) == 32


def test_language_unknown_when_short_or_disabled() -> None:
    feed = FeedSource(id=1, url="https://x.example/feed")
    short = normalise_entry(
        RawEntry(guid="1", link=None, title="Ok", content_html="<p>Yes.</p>"),
        feed,
        fetched_at=NOW,
        settings=SETTINGS,
    )
    assert short.language is None
    off = NormaliseSettings(detect_language=False)
    long_text = (
        "<p>" + "The council met on Tuesday to discuss the new budget for schools. " * 3 + "</p>"
    )
    article = normalise_entry(
        RawEntry(guid="1", link=None, title="T", content_html=long_text),
        feed,
        fetched_at=NOW,
        settings=off,
    )
    assert article.language is None


_DECLARING = {
    "rss": b'<rss version="2.0"><channel><title>Kanal</title><language>de-DE</language>'
    b"<item><guid>1</guid><title>Kurz notiert</title><description>Ok.</description></item>"
    b"<item><guid>2</guid><title>The council met</title><description>" + b"The council met on "
    b"Tuesday to discuss the new budget for schools and the plans for the river. "
    * 3
    + b"</description></item></channel></rss>",
    "atom": b'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de"><title>K</title>'
    b"<entry><id>1</id><title>Kurz notiert</title><summary>Ok.</summary></entry>"
    b'<entry xml:lang="fr"><id>2</id><title>Bref</title><summary>Oui.</summary></entry></feed>',
    "json": b'{"version": "https://jsonfeed.org/version/1.1", "title": "K", "language": "de",'
    b' "items": [{"id": "1", "title": "Kurz notiert", "content_text": "Ok."},'
    b' {"id": "2", "title": "Bref", "content_text": "Oui.", "language": "fr-FR"}]}',
}


@pytest.mark.parametrize("kind", sorted(_DECLARING))
def test_a_short_entry_takes_its_declared_language(kind: str) -> None:
    """Too short to identify, an entry is read in the language it or its feed declares (the
    story terms then stem it and drop its stop words); a text long enough to identify keeps
    the language it is written in, whatever its feed declares (a CMS default, often)."""
    parsed = parse_feed(_DECLARING[kind], url=f"https://x.example/{kind}")
    assert parsed.language == "de"
    feed = FeedSource(id=1, url=f"https://x.example/{kind}")
    short, other = (
        normalise_entry(e, feed, fetched_at=NOW, settings=SETTINGS) for e in parsed.entries
    )
    assert short.language == "de"
    assert other.language == ("en" if kind == "rss" else "fr")


def test_extra_tracking_params_from_settings() -> None:
    settings = NormaliseSettings(extra_tracking_params=("src",))
    entry = RawEntry(guid=None, link="https://x.example/a?src=feed&id=3", title="T")
    article = normalise_entry(
        entry, FeedSource(id=1, url="https://x.example/feed"), fetched_at=NOW, settings=settings
    )
    assert article.url == "https://x.example/a?id=3"


def test_full_text_page_replaces_feed_body_and_keeps_identity() -> None:
    html = (DATA / "canonical-page.html").read_bytes()
    page = extract_page(html, "https://www.stadtbote.example.de/verkehr/radbruecke-eroeffnet")
    entry = RawEntry(
        guid="sb-1",
        link="https://www.stadtbote.example.de/verkehr/radbruecke-eroeffnet",
        title="Radbrücke",
        summary_html="<p>Kurz.</p>",
    )
    feed = FeedSource(
        id=3, url="https://www.stadtbote.example.de/feed", title="Stadtbote", full_text=True
    )
    article = normalise_entry(entry, feed, fetched_at=NOW, settings=SETTINGS, page=page)
    assert article.text.startswith("Nach zwei Jahren Bauzeit")
    assert article.entry_key == "guid:sb-1"
    assert article.language == "de"
    assert article.summary == "Kurz."


def test_steps_are_listed_in_order() -> None:
    names = [step.__name__ for step in STEPS]
    assert names.index("clean_body") < names.index("comparison") < names.index("entry_key")
    # A step is a plain function of (Article, Context): it can run on its own.
    entry = RawEntry(guid="g", link=None, title="T", content_html="<p>x</p>")
    article = normalise_entry(
        entry, FeedSource(id=1, url="https://x.example/"), fetched_at=NOW, settings=SETTINGS
    )
    assert replace(article, entry_key="") != article
