"""The JSON API over the real app (httpx ASGITransport) and a real database, SQLite and PostgreSQL.

The data comes through the real pipeline: three outlets served from the local
feed server carry one story five times (two reports each from Alpha and Beta,
one from Gamma), plus unrelated news and an item with a hostile title.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import httpx
import pytest

from newsfold.api.app import create_app
from newsfold.config import Settings
from newsfold.service import Service
from tests.conftest import SHARED
from tests.support.server import FeedServer, Static

# Feeds often double-escape: the stored title is the literal text "<script>alert(1)</script> …".
HOSTILE = "&lt;script&gt;alert(1)&lt;/script&gt; Harbour board &amp; \"friends\" meet"
HOSTILE_TEXT = "<script>alert(1)</script>"
NOW = datetime.now(UTC).replace(microsecond=0)


def _seed_paragraphs() -> list[str]:
    expected = json.loads((SHARED / "fixtures" / "seed-article.expected.json").read_text())
    lines = (SHARED / "fixtures" / "seed-article.txt").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(expected["text_starts_with"][:20]))
    end = next(i for i, ln in enumerate(lines) if ln.endswith(expected["text_ends_with"]))
    return [ln for ln in lines[start : end + 1] if len(ln) > 80]


def _unrelated(n: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    topics: set[str] = set()
    with (SHARED / "data" / "dedup-dev.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["topic"] in topics or len(doc["text"]) < 600:
                continue
            topics.add(doc["topic"])
            docs.append(doc)
            if len(docs) == n:
                break
    return docs


def _item(title: str, link: str, hours_ago: float, paragraphs: list[str]) -> dict[str, str]:
    when = email.utils.format_datetime(NOW - timedelta(hours=hours_ago))
    html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return {"title": title, "link": link, "guid": link, "date": when, "html": html}


def _rss(title: str, site: str, items: list[dict[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f'<guid isPermaLink="false">{escape(i["guid"])}</guid><pubDate>{i["date"]}</pubDate>'
        f"<description>{escape(i['html'])}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{site}</link><description>news</description>"
        f"{body}</channel></rss>"
    ).encode()


def _json_feed(title: str, site: str, items: list[dict[str, str]]) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": site,
            "items": [
                {
                    "id": i["guid"],
                    "url": i["link"],
                    "title": i["title"],
                    "content_html": i["html"],
                    "date_published": email.utils.parsedate_to_datetime(i["date"]).isoformat(),
                }
                for i in items
            ],
        }
    ).encode()


@dataclass
class Seeded:
    service: Service
    settings: Settings
    story_id: int  # the five-member story
    hostile_article: int
    feeds: dict[str, int]


def seed(server: FeedServer, settings: Settings) -> Seeded:
    """Three outlets, one story carried five times, unrelated news, one hostile title."""
    p = _seed_paragraphs()
    edited = [x.replace("warplanes", "jets").replace("heavy", "intense") for x in p]
    other = _unrelated(3)
    alpha = [
        _item("Russia and Syria launch massive airstrikes after jihadists seize Aleppo",
              "https://alpha.example/aleppo-1", 6, p),
        _item("Airstrikes on rebel areas continue after Aleppo falls",
              "https://alpha.example/aleppo-2", 4, p[:-1]),
        _item(other[0]["title"], "https://alpha.example/other", 5, other[0]["text"].split("\n")),
    ]
    beta = [
        _item("Syrian and Russian jets pound rebel areas after Aleppo falls",
              "https://beta.example/world/aleppo", 5, ["BEIRUT (AFP) — " + p[0], *p[1:]]),
        _item("Jets hit Idlib as rebels hold Aleppo", "https://beta.example/world/idlib",
              3, [edited[0], edited[2], edited[1], *edited[3:]]),
    ]
    gamma = [
        _item("Aleppo offensive: strikes across the northwest",
              "https://gamma.example/2024/aleppo", 2, edited[:-1]),
        _item(other[1]["title"], "https://gamma.example/other", 1, other[1]["text"].split("\n")),
        _item(HOSTILE, "javascript:alert(2)", 1.5, other[2]["text"].split("\n")),
    ]
    server.route("/alpha.xml", Static(_rss("Alpha Wire", "https://alpha.example/", alpha)))
    server.route("/beta.xml", Static(_rss("Beta Times", "https://beta.example/", beta)))
    server.route(
        "/gamma.json",
        Static(_json_feed("Gamma Post", "https://gamma.example/", gamma),
               content_type="application/feed+json"),
    )
    service = Service.open(settings)
    feeds = {
        "alpha": service.add_feed(server.url("/alpha.xml"), title="Alpha Wire", tags=["world"]).id,
        "beta": service.add_feed(
            server.url("/beta.xml"), title="Beta Times", tags=["world", "politics"]
        ).id,
        "gamma": service.add_feed(server.url("/gamma.json"), title="Gamma Post").id,
    }
    summary = service.poll()
    assert summary.errors == 0, summary
    stories = service.storage.list_clusters(level="stories", min_size=5, limit=None)
    assert len(stories) == 1, stories
    hostile = [a for a in service.storage.list_articles(limit=None) if "alert(1)" in a.title]
    assert len(hostile) == 1
    return Seeded(service, settings, stories[0].id, hostile[0].id, feeds)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def seeded(
    feed_server: FeedServer, database_url: str, make_settings: SettingsFactory
) -> Iterator[Seeded]:
    settings = make_settings(database_url, fetch={"min_host_delay_s": 0})
    data = seed(feed_server, settings)
    yield data
    data.service.close()
