"""The web page in a real headless browser (Debian's chromium) over the seeded data.

The browser renders what a person sees: the seeded stories with their sources,
the hostile title as visible text (no script element from feed content), and a
screenshot written to ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from newsfold.api.app import create_app
from tests.conftest import REPO
from tests.e2e.test_api import HOSTILE_TEXT, Seeded, seed, seeded, serve_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["seed", "seeded"]  # the module-scoped fixture, shared with the API tests
ARTIFACTS = REPO / "test-artifacts"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI: apt-get install -y chromium")
    pytest.skip("chromium is not installed")


def _browse(url: str, tmp: Path, *, screenshot: Path | None = None, width: int = 1280) -> str:
    """The DOM after chromium ran the page (scripts included, had any slipped through)."""
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={width},900",
        "--virtual-time-budget=2000",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=60, check=False, cwd=tmp
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def site(seeded: Seeded) -> Iterator[str]:
    with serve_app(create_app(seeded.settings, service=seeded.service)) as base:
        yield base


def test_front_page_lists_stories_with_sources(site: str, seeded: Seeded, tmp_path: Path) -> None:
    dom = HTMLParser(_browse(f"{site}/", tmp_path))
    story = dom.css_first(f'article[data-story-id="{seeded.story_id}"]')
    assert story is not None
    assert story.css_first("h2").text(strip=True).startswith("Russia and Syria launch")
    sources = [li.text(strip=True) for li in story.css("ul.sources li")]
    assert sorted(sources) == ["Alpha Wire", "Beta Times", "Gamma Post"]  # each credited once
    assert len(dom.css("article.story")) == 4


def test_hostile_title_is_text_not_markup(site: str, seeded: Seeded, tmp_path: Path) -> None:
    raw = _browse(f"{site}/", tmp_path)
    dom = HTMLParser(raw)
    # Only a script element from content could exist; the page itself has none.
    assert dom.css("script") == []
    assert dom.css("img") == []  # the summary's <img onerror> stayed text too
    titles = [h.text() for h in dom.css("article.story h2")]
    assert any(HOSTILE_TEXT in t for t in titles), titles
    # No link carries a javascript: URL from a feed.
    hrefs = [a.attributes.get("href") or "" for a in dom.css("a")]
    assert not [h for h in hrefs if re.match(r"\s*javascript:", h, re.IGNORECASE)]


def test_story_page_shows_members_side_by_side(site: str, seeded: Seeded, tmp_path: Path) -> None:
    dom = HTMLParser(_browse(f"{site}/stories/{seeded.story_id}", tmp_path))
    members = dom.css("section.members article.member")
    assert len(members) == 5
    sims = [m.css_first(".sim").text(strip=True) for m in members]
    assert all(re.fullmatch(r"similarity [01]\.\d\d", s) for s in sims), sims
    assert {m.css_first(".meta").text().split(" · ")[0] for m in members} == {
        "Alpha Wire",
        "Beta Times",
        "Gamma Post",
    }


def test_screenshot_artifact(site: str, seeded: Seeded, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = seeded.service.storage.dialect
    for name, path in (("index", "/"), ("story", f"/stories/{seeded.story_id}")):
        out = ARTIFACTS / f"web-{name}-{suffix}.png"
        out.unlink(missing_ok=True)
        _browse(f"{site}{path}", tmp_path, screenshot=out)
        assert out.stat().st_size > 10_000
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _ids(dom: HTMLParser) -> list[int]:
    return [int(a.attributes["data-story-id"] or 0) for a in dom.css("article.story")]


def test_front_page_pages_through_every_story_once(seeded: Seeded, tmp_path: Path) -> None:
    """Two stories a page: the browser follows "older" links until there is none."""
    api = seeded.settings.api.model_copy(update={"page_size": 2})
    app = create_app(seeded.settings.model_copy(update={"api": api}), service=seeded.service)
    with serve_app(app) as base:
        every = [c["id"] for c in httpx.get(f"{base}/api/clusters?limit=500").json()["items"]]
        seen: list[int] = []
        pages: list[str] = []
        url: str | None = f"{base}/"
        while url is not None:
            dom = HTMLParser(_browse(url, tmp_path))
            ids = _ids(dom)
            assert 0 < len(ids) <= 2, url
            seen += ids
            pager = dom.css_first(".pager")
            assert pager is not None
            pages.append(" ".join(pager.css_first(".meta").text().split()))
            older = pager.css_first('a[rel="next"]')
            url = f"{base}{older.attributes['href']}" if older else None
        assert seen == every and len(every) == 4  # newest first, each once
        assert pages == ["page 1 of 2", "page 2 of 2"]
        # The last page links back; a page past the end says so and links back too.
        dom = HTMLParser(_browse(f"{base}/?page=9", tmp_path))
        assert _ids(dom) == []
        assert "No stories on page 9" in dom.css_first("main").text()
        newer = dom.css_first('.pager a[rel="prev"]')
        assert newer is not None and newer.attributes["href"] == "/?page=2"


def test_sources_filter_finds_multi_source_stories(
    site: str, seeded: Seeded, tmp_path: Path
) -> None:
    dom = HTMLParser(_browse(f"{site}/", tmp_path))
    choices = {" ".join(a.text().split()): a.attributes["href"] for a in dom.css(".filter a")}
    assert choices == {
        "all stories": "/",
        "2+ sources": "/?min_sources=2",
        "3+ sources": "/?min_sources=3",
    }
    current = dom.css_first('.filter a[aria-current="page"]')
    assert current is not None and current.text().startswith("all stories")
    # Several sources stand out in the full list.
    multi = {int(a.attributes["data-story-id"] or 0) for a in dom.css("article.story.multi")}
    assert multi == {seeded.story_id}
    dom = HTMLParser(_browse(f"{site}/?min_sources=2", tmp_path))
    assert _ids(dom) == [seeded.story_id]
    meta = " ".join(dom.css_first("main p.meta").text().split())
    assert meta.startswith("1 story with 2 or more sources reported in the last 24 hours (of 4)")
    current = dom.css_first('.filter a[aria-current="page"]')
    assert current is not None and current.text().startswith("2+ sources")
    dom = HTMLParser(_browse(f"{site}/?min_sources=4", tmp_path))
    assert _ids(dom) == []
    assert "No stories with 4 or more sources" in dom.css_first("main").text()
