"""Fuzzing parse + normalise: random bytes and mutated real feeds.

The only allowed outcomes are a ``ParsedFeed`` (whose entries normalise to sane
``Article``s or raise a ``NewsfoldError``) or a ``ParseError``. Bounded so it runs
in seconds in CI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsfold.config import NormaliseSettings
from newsfold.errors import NewsfoldError, ParseError
from newsfold.normalise import normalise_entry
from newsfold.normalise.dates import EARLIEST_PLAUSIBLE
from newsfold.parse import parse_feed
from newsfold.types import FeedSource
from tests.conftest import REPO, SHARED

URL = "https://example.org/feed.xml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NORMALISE = NormaliseSettings(detect_language=False)
SOURCE = FeedSource(1, URL)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # CI runs the same examples every time; a failure reproduces
)


def _seeds() -> list[bytes]:
    """Small real feeds: the bundled samples plus a spread of the shared corpus."""
    files = sorted((REPO / "src" / "newsfold" / "demo_data").glob("*.[xja]*"))
    corpus = sorted((SHARED / "data" / "feeds").rglob("*"))
    files += [p for p in corpus[::7] if p.is_file() and p.suffix != ".tsv"]
    return [
        p.read_bytes()[:20_000] for p in files if p.suffix != ".json" or "MANIFEST" not in p.name
    ]


SEEDS = _seeds()
SNIPPETS = [
    b'<!DOCTYPE rss [<!ENTITY a "&a;&a;">]>',
    b"&a;",
    b"<![CDATA[",
    b"]]>",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"<item>",
    b"</item>",
    b"<entry>",
    b"<script>alert(1)</script>",
    b'<a href="javascript:alert(1)">x</a>',
    b"<pubDate>Mon, 01 Jan 9999 00:00:00 GMT</pubDate>",
    b"<link>data:text/html,x</link>",
    b"&#0;",
    b"&#xD800;",
    b"<div>" * 50,
    b'{"items": [',
    b'"version": "https://jsonfeed.org/version/1.1"',
    b"\r\n",
    b"<?xml version='1.0' encoding='utf-16'?>",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(SNIPPETS))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
        else:
            other = draw(st.sampled_from(SEEDS))
            data[pos:pos] = other[: draw(st.integers(0, len(other)))]
    return bytes(data)


def check(content: bytes) -> None:
    try:
        parsed = parse_feed(content, url=URL, max_entries=50)
    except ParseError as e:
        assert str(e)
        return
    assert len(parsed.entries) <= 50
    assert parsed.total_entries >= len(parsed.entries)
    for entry in parsed.entries:
        try:
            article = normalise_entry(entry, SOURCE, fetched_at=NOW, settings=NORMALISE)
        except NewsfoldError:
            continue
        assert EARLIEST_PLAUSIBLE <= article.published <= NOW + timedelta(hours=1)
        assert article.url is None or article.url.startswith(("http://", "https://"))
        assert article.entry_key
        for value in (article.title, article.text, article.summary):
            assert "\x00" not in value


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(content: bytes) -> None:
    check(content)


@FUZZ
@given(mutated())
def test_mutated_real_feeds(content: bytes) -> None:
    check(content)


@FUZZ
@given(st.text(max_size=2000))
def test_random_text_in_a_feed_shell(body: str) -> None:
    # Random text (escaped or not) where titles and bodies go.
    for raw in (body.encode("utf-8", "surrogatepass"), body.encode("utf-8", "replace")):
        check(
            b'<rss version="2.0"><channel><title>t</title><item><title>'
            + raw
            + b"</title><description>"
            + raw
            + b"</description><guid>g</guid></item></channel></rss>"
        )
