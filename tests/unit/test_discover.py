"""HTML page detection (lenient about mislabelled feeds) and feed autodiscovery."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from newsfold.fetch.discover import DiscoveredFeed, discover_feeds, looks_like_html

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FEED_FILES = sorted(
    p for p in (SHARED / "data" / "feeds").rglob("*") if p.is_file() and p.suffix != ".tsv"
)

PAGE = b"""<!DOCTYPE html>
<html><head><title>Example News</title>
<link rel="alternate" type="application/rss+xml" title="All stories" href="/rss.xml">
<link rel="alternate" type="application/atom+xml" title="Atom" href="https://example.com/atom">
</head><body><p>hello</p></body></html>"""


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (PAGE, "text/html; charset=utf-8", True),
        (PAGE, "application/rss+xml", True),  # a page mislabelled as a feed is still a page
        (PAGE, None, True),
        (b"<rss version='2.0'><channel/></rss>", "text/html", False),  # mislabelled feed
        (b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"/>', "text/html", False),
        (b"\xef\xbb\xbf<?xml version='1.0'?><rdf:RDF/>", "text/html", False),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "text/html", False),
        ("<rss/>".encode("utf-16"), "text/html", False),  # UTF-16 with BOM
        ("<html><body/></html>".encode("utf-16-le"), None, True),  # UTF-16 page, no BOM
        (
            b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
            b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html xmlns="http://www.w3.org/1999/xhtml"/>',
            "application/xml",
            True,
        ),
        (b"<!-- generator -->\n<!doctype html><title>x</title>", "text/plain", True),
        (b"<p>just a fragment</p>", "text/html", True),  # header decides an unknown root
        (b"<p>just a fragment</p>", "application/xml", False),
        (b"plain text, no markup", "text/html", False),  # nothing to call a page
        (b"", "text/html", False),
        (b"<!-- " + b"x" * 5000 + b" -->\n<rss/>", "text/html", False),  # root past the sniff
    ],
)
def test_looks_like_html(content: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_html(content, content_type) is expected


@pytest.mark.skipif(not FEED_FILES, reason="shared feed corpus not present")
@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/html", "text/plain"])
def test_no_real_feed_is_taken_for_a_page(content_type: str | None) -> None:
    # Real feeds in many encodings (UTF-16/32, Big5, KOI8-R), ill-formed ones,
    # namespaced roots and doctypes with internal subsets, under any label.
    pages = [p.name for p in FEED_FILES if looks_like_html(p.read_bytes(), content_type)]
    assert len(FEED_FILES) > 250
    assert pages == []


@pytest.mark.parametrize(
    ("html", "base", "expected"),
    [
        (
            PAGE,
            "https://example.com/news/",
            [
                DiscoveredFeed("https://example.com/rss.xml", "All stories", "rss"),
                DiscoveredFeed("https://example.com/atom", "Atom", "atom"),
            ],
        ),
        (  # <base href> wins over the page URL; rel tokens in any case and order
            '<head><base href="https://cdn.example.org/site/">'
            '<link rel="Alternate  Home" type="Application/RSS+XML; charset=utf-8"'
            ' href="feed.xml">',
            "https://example.com/",
            [DiscoveredFeed("https://cdn.example.org/site/feed.xml", None, "rss")],
        ),
        (  # JSON Feed and RDF; duplicates dropped
            '<link rel="alternate" type="application/feed+json" href="/feed.json" title=" JSON ">'
            '<link rel="alternate" type="application/rdf+xml" href="/index.rdf">'
            '<link rel="alternate" type="application/feed+json" href="/feed.json">',
            "http://example.com/a/b",
            [
                DiscoveredFeed("http://example.com/feed.json", "JSON", "json"),
                DiscoveredFeed("http://example.com/index.rdf", None, "rdf"),
            ],
        ),
        (  # rel="feed" (HTML5) counts; stylesheets, icons, oEmbed, WP REST JSON do not
            '<link rel="stylesheet" href="/s.css"><link rel="icon" href="/i.png">'
            '<link rel="alternate" type="application/json+oembed" href="/oembed">'
            '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/posts/1">'
            '<link rel="alternate" hreflang="fr" href="/fr/">'
            '<link rel="feed" href="/all">',
            "https://example.com/",
            [DiscoveredFeed("https://example.com/all", None, "xml")],
        ),
        (  # non-http(s) and empty hrefs are ignored
            '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            '<link rel="alternate" type="application/rss+xml" href="  ">',
            "https://example.com/",
            [],
        ),
        (b"<html><body>no feeds here</body></html>", "https://example.com/", []),
        (gzip.compress(b"binary junk")[:20], "https://example.com/", []),  # never crashes
    ],
)
def test_discover_feeds(html: bytes | str, base: str, expected: list[DiscoveredFeed]) -> None:
    assert discover_feeds(html, base) == expected
