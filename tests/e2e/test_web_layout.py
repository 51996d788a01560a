"""The web page's layout in headless Chromium, on stories that stress it: 21 reports, a
feed name longer than a card, an untitled report, Urdu (right-to-left) text.

A measuring script is added to the rendered page here (the page itself has none); it
writes what the browser laid out into attributes that ``--dump-dom`` returns.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from newsfold.api.web import FrontPage, make_env
from newsfold.storage.published import PublishedMember, PublishedStory
from tests.e2e.test_web import ARTIFACTS, _browse

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
LONG_FEED = "The Extraordinarily Long-Named Regional Evening Chronicle and Advertiser" + "X" * 30
URDU = "کراچی میں شدید بارش کے بعد سیلاب، شہری انتظامیہ نے ہنگامی حالت کا اعلان کر دیا"
MEASURE = """<script>
addEventListener("load", () => {
  const root = document.documentElement;
  root.dataset.sideways = String(Math.max(0, root.scrollWidth - root.clientWidth));
  for (const el of document.querySelectorAll(".sources li, .member .feed, h2, h3, .filter a, .pager a")) {
    el.dataset.clipped = String(el.scrollWidth > el.clientWidth + 1);
    const r = el.getBoundingClientRect();
    el.dataset.outside = String(r.right > root.clientWidth + 1 || r.left < -1);
  }
  for (const el of document.querySelectorAll("time")) {
    el.dataset.lines = String(el.getClientRects().length);
  }
});
</script>"""


def _member(i: int, *, feed: str, title: str, text: str = "") -> PublishedMember:
    return PublishedMember(
        id=i,
        title=title,
        url=f"https://site{i}.example/news/2026/12/01/{'long-slug-' * 8}{i}",
        feed_id=i,
        feed=feed,
        feed_site_url=None,
        author=None,
        published=NOW - timedelta(minutes=30 * (21 - i)),
        summary="",
        snippet=text or f"Report {i} on the harbour flood and the council's response.",
        tier="story",
        similarity=0.5,
        matched_article_id=1 if i > 1 else None,
    )


def _stories() -> list[PublishedStory]:
    big = tuple(
        _member(i, feed=LONG_FEED if i == 3 else f"Outlet {i}", title=f"Harbour flood, report {i}")
        for i in range(1, 22)
    )
    untitled = (_member(40, feed="Quiet Wire", title="", text="Dam gates opened at dawn. More"),)
    urdu = (_member(50, feed="روزنامہ", title=URDU, text=URDU),)
    return [
        PublishedStory(1, 21, NOW - timedelta(hours=10), NOW, big),
        PublishedStory(40, 1, NOW, NOW, untitled),
        PublishedStory(50, 1, NOW, NOW, urdu),
    ]


def _view(stories: list[PublishedStory]) -> FrontPage:
    """Page 2 of 3 of 123 stories, so both pager links and the filter counts show."""
    return FrontPage(
        stories=stories,
        total=123,
        page=2,
        pages=3,
        hours=24,
        min_size=1,
        min_sources=1,
        everything=123,
        page_size=50,
    )


def _render(tmp_path: Path, name: str, **context: object) -> Path:
    html = make_env().get_template(name).render(**context)
    path = tmp_path / f"{name}"
    path.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_never_scroll_sideways_and_show_long_names(tmp_path: Path, width: int) -> None:
    stories = _stories()
    index = _render(
        tmp_path,
        "index.html",
        stories=stories,
        recent=True,
        hours=24,
        now=NOW,
        view=_view(stories),
    )
    big = stories[0]
    story = _render(
        tmp_path,
        "story.html",
        story=big,
        by_id={m.id: m for m in big.members},
        requested_id=big.id,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    for page in (index, story):
        dom = HTMLParser(_browse(page.as_uri(), tmp_path, width=width))
        root = dom.css_first("html")
        assert root is not None and root.attributes.get("data-sideways") == "0", page.name
        for el in dom.css("[data-clipped]"):
            assert el.attributes.get("data-clipped") == "false", el.html
            assert el.attributes.get("data-outside") == "false", el.html
        # Every date is whole on one line ("2026-12-01 11:30 UTC", never "2026-" / "12-01").
        dates = dom.css("time")
        assert dates, page.name
        for el in dates:
            assert el.attributes.get("data-lines") == "1", el.html
        # The long feed name can be read whole: wrapped, and in a tooltip.
        names = [n for n in dom.css(".sources li, .member .feed") if "Extraordinarily" in n.text()]
        assert names or page.name == "index.html"
        for node in names:
            assert node.attributes.get("title") == LONG_FEED
        shot = ARTIFACTS / f"web-layout-{page.stem}-{width}.png"
        _browse(page.as_uri(), tmp_path, width=width, screenshot=shot)
        assert shot.stat().st_size > 5_000


def test_index_titles_direction_and_plurals(tmp_path: Path) -> None:
    stories = _stories()
    page = _render(tmp_path, "index.html", stories=stories, recent=True, hours=24, now=NOW)
    dom = HTMLParser(page.read_text())
    cards = {int(c.attributes["data-story-id"] or 0): c for c in dom.css("article.story")}
    untitled = cards[40].css_first("h2 a")
    assert untitled is not None and untitled.text(strip=True) == "Dam gates opened at dawn."
    assert cards[50].css_first("h2").attributes.get("dir") == "auto"
    meta = cards[40].css_first(".meta").text()
    assert "1 article from 1 source" in " ".join(meta.split())
    assert "21 articles from 21 sources" in " ".join(cards[1].css_first(".meta").text().split())
    assert "3 stories reported" in dom.css_first("main p.meta").text()


def test_a_report_with_neither_title_nor_text_goes_by_its_url(tmp_path: Path) -> None:
    bare = replace(
        _member(60, feed="Link Wire", title=""),
        url="https://www.links.example/2026/12/dam-gates-open/?utm_source=rss",
        snippet="",
    )
    stories = [PublishedStory(60, 1, NOW, NOW, (bare,))]
    page = _render(tmp_path, "index.html", stories=stories, recent=True, hours=24, now=NOW)
    card = HTMLParser(page.read_text()).css_first("article.story h2 a")
    assert card is not None and card.text(strip=True) == "links.example/2026/12/dam-gates-open"
    story = _render(tmp_path, "story.html", story=stories[0], by_id={60: bare}, requested_id=60)
    assert "(untitled)" not in story.read_text()


def test_pages_carry_their_icon_inline(tmp_path: Path) -> None:
    """A browser asks for /favicon.ico unless the page names an icon: a 404 each visit."""
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote

    stories = _stories()
    page = _render(tmp_path, "index.html", stories=stories, recent=True, hours=24, now=NOW)
    icon = HTMLParser(page.read_text()).css_first('head link[rel="icon"]')
    assert icon is not None, "no icon"
    media, _, svg = (icon.attributes.get("href") or "").partition(",")
    assert media == "data:image/svg+xml"
    assert ET.fromstring(unquote(svg)).tag == "{http://www.w3.org/2000/svg}svg"


def test_index_filter_and_pager(tmp_path: Path) -> None:
    stories = _stories()
    view = _view(stories)
    page = _render(
        tmp_path, "index.html", stories=stories, recent=True, hours=24, now=NOW, view=view
    )
    dom = HTMLParser(page.read_text())
    meta = " ".join(dom.css_first("main p.meta").text().split())
    assert meta == "123 stories reported in the last 24 hours, newest first; 51–53 shown."
    links = {" ".join(a.text().split()): a.attributes["href"] for a in dom.css(".filter a")}
    assert links == {
        "all stories": "/",
        "2+ sources": "/?min_sources=2",
        "3+ sources": "/?min_sources=3",
    }
    pager = {a.attributes["rel"]: a.attributes["href"] for a in dom.css(".pager a")}
    assert pager == {"prev": "/", "next": "/?page=3"}
    # Only the story with several outlets is marked as such.
    marked = [a.attributes["data-story-id"] for a in dom.css("article.story.multi")]
    assert marked == ["1"]
