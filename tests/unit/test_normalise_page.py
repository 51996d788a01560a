"""Full-text pages (extract_page), the extract report, and hostile entries end to end."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from newsfold.config import NormaliseSettings
from newsfold.normalise import extract_page, extract_report, normalise_entry
from newsfold.normalise.extract import looks_like_feed
from newsfold.normalise.page import decode_html
from newsfold.types import FeedSource, RawEntry

NOW = datetime(2024, 12, 2, tzinfo=UTC)
SETTINGS = NormaliseSettings()
BODY = "<p>" + "The harbour board met on Monday to agree next year's dredging plan. " * 4 + "</p>"


def _page(head: str, body: str = BODY, html_attrs: str = "") -> str:
    return f"<!doctype html><html {html_attrs}><head>{head}</head><body><article>{body}</article></body></html>"


@pytest.mark.parametrize(
    ("head", "html_attrs", "url", "expected"),
    [
        (
            '<link rel="canonical" href="https://site.example/a">',
            "",
            "https://site.example/a?utm_source=x",
            "https://site.example/a",
        ),
        (
            '<link rel="canonical" href="/b?utm_campaign=z">',
            "",
            "https://www.site.example/x",
            "https://www.site.example/b",
        ),
        (
            '<meta property="og:url" content="https://site.example/c">',
            "",
            "https://m.site.example/c",
            "https://site.example/c",
        ),
        (
            '<link rel="canonical" href="https://other.example/a">',
            "",
            "https://site.example/a#x",
            "https://site.example/a",
        ),
        (
            '<link rel="canonical" href="javascript:alert(1)">',
            "",
            "https://site.example/a",
            "https://site.example/a",
        ),
        ("", "amp", "https://site.example/news/story/amp", "https://site.example/news/story"),
        (
            "",
            "⚡",
            "https://site.example/news/story?amp=1&id=4",
            "https://site.example/news/story?id=4",
        ),
        (
            '<link rel="canonical" href="https://www.site.example/s">',
            "amp",
            "https://amp.site.example/s",
            "https://www.site.example/s",
        ),
        (
            "",
            "",
            "https://site-example.cdn.ampproject.org/c/s/site.example/s/amp",
            "https://site.example/s",
        ),
        ("", "", "not a url", None),
    ],
)
def test_canonical_address(head: str, html_attrs: str, url: str, expected: str | None) -> None:
    assert extract_page(_page(head, html_attrs=html_attrs), url).url == expected


@pytest.mark.parametrize(
    ("head", "body", "title", "published"),
    [
        (
            '<meta property="og:title" content="Dredging plan agreed | Harbour Post"><meta property="og:site_name" content="Harbour Post">',
            BODY,
            "Dredging plan agreed",
            None,
        ),
        (
            "<title>Dredging plan agreed - harbourpost.example</title>",
            BODY,
            "Dredging plan agreed",
            None,
        ),
        (
            "<title>Plain title</title>",
            "<h1>Headline &amp; more</h1>" + BODY,
            "Headline & more",
            None,
        ),
        (
            '<script type="application/ld+json">{"@graph":[{"@type":"NewsArticle","headline":"From JSON-LD","datePublished":"2024-05-01T10:00:00+02:00"}]}</script>',
            BODY,
            "From JSON-LD",
            "2024-05-01T08:00:00+00:00",
        ),
        (
            '<meta name="parsely-pub-date" content="2024-05-02T00:00:00Z">',
            BODY,
            None,
            "2024-05-02T00:00:00+00:00",
        ),
        (
            "",
            '<time datetime="2024-05-03T12:00:00Z">3 May</time>' + BODY,
            None,
            "2024-05-03T12:00:00+00:00",
        ),
        ('<script type="application/ld+json">{broken</script>', BODY, None, None),
    ],
)
def test_metadata(head: str, body: str, title: str | None, published: str | None) -> None:
    page = extract_page(_page(head, body), "https://harbourpost.example/a")
    assert page.title == title
    assert (page.published.isoformat() if page.published else None) == published
    assert page.text.startswith("The harbour board met on Monday")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("<meta charset='windows-1252'><p>caf\u00e9 \u2019</p>".encode("cp1252"), "café ’"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"><p>\u2019</p>'.encode(
                "cp1252"
            ),
            "’",
        ),
        ("<p>caf\u00e9</p>".encode(), "café"),
        ("<p>caf\u00e9</p>".encode("cp1252"), "café"),
        (b"\xef\xbb\xbf<p>x</p>", "x"),
        ("<p>é</p>".encode("utf-16"), "é"),
        (b"<meta charset='no-such-codec'><p>x</p>", "x"),
    ],
)
def test_decode_html(data: bytes, expected: str) -> None:
    assert expected in decode_html(data)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html>",
        "\x00\x00\x00",
        "<div>" * 10_000 + "deep text" + "</div>" * 10_000,
        "<article>" + "<p>" + "word " * 1_000_000 + "</p></article>",  # 5 MB
        "<p>broken \ud800 surrogate</p>",
        '<a href="javascript:alert(1)">x</a><link rel="canonical" href="data:text/html,x">',
    ],
    ids=["empty", "bare", "nul", "deep", "5mb", "surrogate", "js"],
)
def test_hostile_pages_are_bounded(html: str) -> None:
    start = time.perf_counter()
    page = extract_page(html, "https://site.example/a")
    assert time.perf_counter() - start < 20
    assert page.url == "https://site.example/a"
    page.text.encode("utf-8")


@pytest.mark.parametrize(
    "entry",
    [
        RawEntry(
            guid="g\x00",
            link="https://x.example/\x00a",
            title="T\x00itle",
            content_html="<p>a\x00b</p>",
        ),
        RawEntry(
            guid="\ud800",
            link="https://x.example/\udfff",
            title="\ud800",
            content_html="<p>\ud800 body</p>",
        ),
        RawEntry(
            guid=None,
            link="javascript:alert(1)",
            title=None,
            content_html="<a href='data:x'>link</a>",
        ),
        RawEntry(guid=None, link=None, title=None, summary_html=None, content_html=None),
        RawEntry(
            guid="big", link=None, title="Big", content_html="<p>" + "word " * 1_000_000 + "</p>"
        ),
        RawEntry(guid="deep", link=None, title="Deep", content_html="<div>" * 10_000 + "x"),
    ],
    ids=["nul", "surrogates", "scheme-links", "empty", "5mb", "deep"],
)
def test_hostile_entries_normalise(entry: RawEntry) -> None:
    feed = FeedSource(id=1, url="https://x.example/feed", title="X")
    start = time.perf_counter()
    article = normalise_entry(entry, feed, fetched_at=NOW, settings=SETTINGS)
    assert time.perf_counter() - start < 10
    for value in (article.title, article.text, article.entry_key, article.url or ""):
        value.encode("utf-8")
        assert "\x00" not in value
    assert article.entry_key


@pytest.mark.parametrize(
    ("data", "is_feed"),
    [
        (b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>', True),
        (b"\xef\xbb\xbf  <feed xmlns='http://www.w3.org/2005/Atom'>", True),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', True),
        (b"<rdf:RDF xmlns:rdf='x'>", True),
        (b"<!doctype html><html><body><p>see our <feed> page</p>", False),
        (b"<html><head><link rel=alternate type=application/rss+xml></head>", False),
    ],
)
def test_looks_like_feed(data: bytes, is_feed: bool) -> None:
    assert looks_like_feed(data) is is_feed


def test_report_is_json_serialisable_and_complete() -> None:
    html = _page(
        '<meta property="article:published_time" content="2024-11-30T23:30:00-05:00">',
        "<h1>Dredging</h1>" + BODY,
    )
    [report] = extract_report(
        html.encode(), "https://harbourpost.example/a?fbclid=1", SETTINGS, now=NOW
    )
    json.dumps(report)
    for key in (
        "title",
        "canonical_url",
        "published",
        "date_source",
        "language",
        "text",
        "rules_fired",
    ):
        assert key in report
    assert report["published"] == "2024-12-01T04:30:00Z"
    assert report["canonical_url"] == "https://harbourpost.example/a"
    assert report["kind"] == "page"


def test_report_learns_across_a_feeds_entries() -> None:
    items = "".join(
        f"<item><title>Story {c}</title><guid>{c}</guid><description>&lt;p&gt;Morning note from the desk&lt;/p&gt;"
        f"&lt;p&gt;The {c} committee met to discuss the {c} proposal and agreed to meet again next week.&lt;/p&gt;</description></item>"
        for c in "abcdefgh"
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Valley</title><link>https://valley.example/</link>{items}</channel></rss>'
    reports = extract_report(feed.encode(), "https://valley.example/feed", SETTINGS, now=NOW)
    assert len(reports) == 8
    for report in reports:
        assert "Morning note from the desk" not in str(report["text"])
        assert "learned" in report["rules_fired"]  # type: ignore[operator]
