"""Parse stage under hostile input: DTDs, entity bombs, XXE, entry floods, oversized
entries, broken bytes and absurd dates — each bounded in time and never crashing."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from newsfold.config import NormaliseSettings
from newsfold.errors import ParseError
from newsfold.normalise import normalise_entry
from newsfold.normalise.dates import EARLIEST_PLAUSIBLE
from newsfold.parse import MAX_ENTRY_HTML, cut_entries, defuse_xml, parse_feed
from newsfold.types import DateSource, FeedSource
from tests.support import hostile as h
from tests.support.server import FeedServer, Static

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

URL = "https://example.org/feed.xml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = FeedSource(1, URL)


def _all_text(feed_bytes: bytes) -> str:
    parsed = parse_feed(feed_bytes, url=URL)
    return repr(parsed)


@pytest.mark.parametrize(
    ("doc", "removed"),
    [
        (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', False),
        (b'<!DOCTYPE rss PUBLIC "-//Netscape//DTD RSS 0.91//EN" "http://x/rss.dtd"><rss/>', True),
        (b'<!DOCTYPE rss [<!ENTITY a "b">]><rss/>', True),
        (b'<!doctype rss [\n<!ENTITY % p SYSTEM "http://x/p"> %p;\n]>\n<rss/>', True),
    ],
)
def test_defuse_removes_doctype(doc: bytes, removed: bool) -> None:
    out, warning = defuse_xml(doc)
    assert b"DOCTYPE" not in out.upper()
    assert (warning is not None) == removed
    assert out.endswith(b"<rss/>") or out.endswith(b"</rss>")


@pytest.mark.parametrize(
    "doc",
    [
        # The value of an entity closes the bracket early; the rest still declares entities.
        b'<!DOCTYPE r [<!ENTITY a "]>"><!ENTITY x SYSTEM "file:///etc/passwd">]><rss>&x;</rss>',
        b'<rss><!ENTITY x SYSTEM "file:///etc/passwd"></rss>',
    ],
)
def test_surviving_entity_declarations_are_refused(doc: bytes) -> None:
    with pytest.raises(ParseError, match="entities"):
        parse_feed(doc, url=URL)


@pytest.mark.parametrize(
    ("name", "factory"),
    [
        ("billion_laughs", h.billion_laughs),
        ("quadratic_blowup", h.quadratic_blowup),
    ],
)
def test_entity_bombs_are_not_expanded(name: str, factory: object) -> None:
    t0 = time.perf_counter()
    parsed = parse_feed(factory(), url=URL)  # type: ignore[operator]
    assert time.perf_counter() - t0 < 10
    assert parsed.warning and "DOCTYPE removed" in parsed.warning
    assert all(len(e.title or "") < 100_000 for e in parsed.entries)
    assert "lollol" not in repr(parsed)


def test_xxe_reads_no_file_and_no_network(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("LOCAL-SECRET-42")
    with FeedServer() as attacker:
        attacker.route("/x", Static(b'<!ENTITY leak "NET-SECRET">', content_type="text/plain"))
        for doc in (
            h.xxe_local_file(str(secret)),
            h.xxe_network(attacker.url("/x")),
            h.xinclude(str(secret)),
        ):
            text = _all_text(doc)
            assert "LOCAL-SECRET-42" not in text and "NET-SECRET" not in text
        assert attacker.requests == []


def test_entry_flood_is_cut_before_parsing() -> None:
    doc = h.many_entries(100_000)
    t0 = time.perf_counter()
    parsed = parse_feed(doc, url=URL, max_entries=500)
    assert time.perf_counter() - t0 < 15
    assert len(parsed.entries) == 500
    assert parsed.total_entries == 100_000
    assert parsed.warning and "100000 entries" in parsed.warning
    assert (parsed.entries[0].guid or "").endswith("many-0")  # document order kept


@pytest.mark.parametrize(
    ("n", "cap", "cut"),
    [(10, 500, False), (600, 500, True), (516, 500, False), (517, 500, True), (10, None, False)],
)
def test_cut_entries(n: int, cap: int | None, cut: bool) -> None:
    doc = h.many_entries(n)
    out, counted = cut_entries(doc, cap)
    assert (counted is not None) == cut
    assert (len(out) < len(doc)) == cut
    if cut:
        assert counted == n


def test_oversized_entry_is_capped() -> None:
    parsed = parse_feed(h.huge_entry(3), url=URL)
    huge = next(e for e in parsed.entries if e.guid == "huge")
    assert huge.summary_html is not None and len(huge.summary_html) <= MAX_ENTRY_HTML
    assert {"good-0", "good-1"} <= {e.guid for e in parsed.entries}


@pytest.mark.parametrize(
    ("factory", "good"),
    [
        (h.invalid_utf8, {"good-0", "good-1", "bad-utf8"}),
        (h.nul_bytes, {"good-0", "good-1", "nul"}),
        (h.script_links, {"good-0", "good-1", "js-link", "data-link", "vb-link"}),
        (h.json_feed_mixed, {"good-0", "good-1", "neg"}),
    ],
)
def test_partly_broken_documents_keep_their_entries(factory: object, good: set[str]) -> None:
    parsed = parse_feed(factory(), url=URL)  # type: ignore[operator]
    assert good <= {e.guid for e in parsed.entries}
    for e in parsed.entries:
        for value in (e.title, e.summary_html, e.content_html, e.guid, e.link):
            assert value is None or "\x00" not in value


@pytest.mark.parametrize(
    "doc",
    [
        h.deep_json(),
        b"{",
        b"[1, 2",
        b'{"version": "https://jsonfeed.org/version/1.1"}',
        b"\x00" * 100,
        b"   ",
    ],
)
def test_unusable_documents_raise_parse_error(doc: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(doc, url=URL)


@pytest.mark.parametrize(
    ("doc", "media", "detail"),
    [
        # Latin-1 bytes declared UTF-8: feedparser's complaint is an encoding override.
        (
            "<p>caf\xe9</p>".encode("latin-1"),
            "text/csv; charset=utf-8",
            "CharacterEncodingOverride",
        ),
        (b"id\ttitle\n1\tlamp\n", "text/tab-separated-values", "SAXParseException"),
    ],
)
def test_not_a_feed_says_so_before_the_parsers_complaint(
    doc: bytes, media: str, detail: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(doc, url=URL, headers={"Content-Type": media})
    reason, _, rest = str(caught.value).partition("; ")
    assert reason == "not a feed: no RSS, Atom or JSON Feed content found"
    assert rest.startswith(detail), rest


def test_absurd_dates_fall_back_or_clamp() -> None:
    parsed = parse_feed(h.absurd_dates(), url=URL)
    settings = NormaliseSettings()
    latest = NOW + timedelta(seconds=settings.future_tolerance_s)
    for entry in parsed.entries:
        article = normalise_entry(entry, SOURCE, fetched_at=NOW, settings=settings)
        assert EARLIEST_PLAUSIBLE <= article.published <= latest, (entry.guid, article.published)
        assert article.published.tzinfo is not None
        if entry.guid in ("date-0", "date-1", "date-2"):  # 9999, year 1, the epoch
            assert article.date_source in (DateSource.FIRST_SEEN, DateSource.CLAMPED)


def test_script_urls_never_become_article_urls() -> None:
    parsed = parse_feed(h.script_links(), url=URL)
    for entry in parsed.entries:
        article = normalise_entry(entry, SOURCE, fetched_at=NOW, settings=NormaliseSettings())
        assert article.url is None or article.url.startswith(("http://", "https://"))
        for value in (article.title, article.summary, article.text):
            assert not any(m in value.lower() for m in h.SCRIPT_MARKERS), value


def _finishes_within(seconds: float, work: Callable[[], object]) -> bool:
    """Run ``work`` in a forked child; False if it is still running after ``seconds``.

    A signal-based timeout cannot interrupt a C extension busy in one call.
    """
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return True
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def test_deeply_nested_html_is_bounded() -> None:
    parsed = parse_feed(h.nested_html(100_000), url=URL)

    def normalise_all() -> None:
        for entry in parsed.entries:
            normalise_entry(entry, SOURCE, fetched_at=NOW, settings=NormaliseSettings())

    assert _finishes_within(5.0, normalise_all)
