"""The JSON API over the real app (uvicorn on loopback) and a real database, SQLite and PostgreSQL.

The data comes through the real pipeline: three outlets served from the local
feed server carry one story five times (two reports each from Alpha and Beta,
one from Gamma), plus unrelated news and an item with a hostile title.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import feedparser
import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from sqlalchemy import update

from newsfold.api.app import create_app
from newsfold.config import Settings, load_settings
from newsfold.pipeline.service import Service
from newsfold.storage.tables import ArticleRow
from tests.conftest import SHARED, _postgres_schema_url
from tests.support.feeds import rss as _rss
from tests.support.server import FeedServer, Static

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

HOSTILE_TEXT = "<script>alert(1)</script>"
HOSTILE_TITLE = f'{HOSTILE_TEXT} Harbour board & "friends" <b>meet</b>'
HOSTILE_SUMMARY = "<img src=x onerror=alert(3)> minutes of the meeting"
NOW = datetime.now(UTC).replace(microsecond=0)


def _seed_paragraphs() -> list[str]:
    expected = json.loads((SHARED / "fixtures" / "seed-article.expected.json").read_text())
    lines = (SHARED / "fixtures" / "seed-article.txt").read_text().splitlines()
    start = next(
        i for i, ln in enumerate(lines) if ln.startswith(expected["text_starts_with"][:20])
    )
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
        _item(
            "Russia and Syria launch massive airstrikes after jihadists seize Aleppo",
            "https://alpha.example/aleppo-1",
            6,
            p,
        ),
        _item(
            "Airstrikes on rebel areas continue after Aleppo falls",
            "https://alpha.example/aleppo-2",
            4,
            p[:-1],
        ),
        _item(other[0]["title"], "https://alpha.example/other", 5, other[0]["text"].split("\n")),
    ]
    beta = [
        _item(
            "Syrian and Russian jets pound rebel areas after Aleppo falls",
            "https://beta.example/world/aleppo",
            5,
            ["BEIRUT (AFP) — " + p[0], *p[1:]],
        ),
        _item(
            "Jets hit Idlib as rebels hold Aleppo",
            "https://beta.example/world/idlib",
            3,
            [edited[0], edited[2], edited[1], *edited[3:]],
        ),
    ]
    gamma = [
        _item(
            "Aleppo offensive: strikes across the northwest",
            "https://gamma.example/2024/aleppo",
            2,
            edited[:-1],
        ),
        _item(other[1]["title"], "https://gamma.example/other", 1, other[1]["text"].split("\n")),
        _item("Harbour board meets", "javascript:alert(2)", 1.5, other[2]["text"].split("\n")),
    ]
    server.route("/alpha.xml", Static(_rss("Alpha Wire", "https://alpha.example/", alpha)))
    server.route("/beta.xml", Static(_rss("Beta Times", "https://beta.example/", beta)))
    server.route(
        "/gamma.json",
        Static(
            _json_feed("Gamma Post", "https://gamma.example/", gamma),
            content_type="application/feed+json",
        ),
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
    hostile = [a for a in service.storage.list_articles(limit=None) if "Harbour" in a.title]
    assert len(hostile) == 1
    # The normaliser strips markup from titles, so the hostile text is written
    # straight to the row: the publishing layer must escape whatever is stored.
    with service.storage.session(write=True) as s:
        s.execute(
            update(ArticleRow)
            .where(ArticleRow.id == hostile[0].id)
            .values(title=HOSTILE_TITLE, summary=HOSTILE_SUMMARY)
        )
    return Seeded(service, settings, stories[0].id, hostile[0].id, feeds)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """Seeded once per module and database: every test here only reads."""
    tmp = tmp_path_factory.mktemp("api")
    with contextlib.ExitStack() as stack:
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        # The function-scoped isolation fixture has not run yet at module scope.
        for key in list(os.environ):
            if key.startswith("NEWSFOLD_") and key != "NEWSFOLD_TEST_POSTGRES_URL":
                mp.delenv(key)
        mp.chdir(tmp)
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'newsfold.db'}"
        else:
            urls = _postgres_schema_url()
            url = next(urls)
            stack.callback(urls.close)
        server = stack.enter_context(FeedServer())
        settings = load_settings(
            None, database_url=url, allow_private_networks=True, fetch={"min_host_delay_s": 0}
        )
        data = seed(server, settings)
        stack.callback(data.service.close)
        yield data


@contextlib.contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def client(seeded: Seeded) -> Iterator[httpx.Client]:
    with (
        serve_app(create_app(seeded.settings, service=seeded.service)) as base,
        httpx.Client(base_url=base, timeout=10) as c,
    ):
        yield c


def test_the_story_appears_once_crediting_all_three_sources(
    client: httpx.Client, seeded: Seeded
) -> None:
    page = client.get("/api/clusters").json()
    ids = [c["id"] for c in page["items"]]
    assert len(ids) == len(set(ids)) == page["total"]
    story = next(c for c in page["items"] if c["id"] == seeded.story_id)
    assert story["size"] == 5
    assert set(story["sources"]) == {"Alpha Wire", "Beta Times", "Gamma Post"}
    # Representative: the earliest-published member (Alpha's report, six hours ago).
    assert (
        story["title"] == "Russia and Syria launch massive airstrikes after jihadists seize Aleppo"
    )
    assert story["summary"].startswith("This Sunday, Russian and Syrian warplanes")
    assert len(story["members"]) == 5
    last_seen = [c["last_seen"] for c in page["items"]]
    assert last_seen == sorted(last_seen, reverse=True)  # newest first


def test_pagination_walks_every_story_once(client: httpx.Client) -> None:
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = client.get("/api/clusters", params={"limit": 2, "offset": offset}).json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == page["total"] == 4  # the story and 3 singletons


LOHAN = "Lindsay Lohan Leaves"
COURT = "After more than thre"


def _label(item: dict[str, Any], seeded: Seeded) -> str:
    return "story" if item["id"] == seeded.story_id else item["title"][:20]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"min_size": 5}, {"story"}),
        ({"min_size": 6}, set()),
        ({"tag": "politics"}, {"story"}),
        ({"tag": "world"}, {"story", LOHAN}),
        ({"tag": ["politics", "nope"]}, {"story"}),
        ({"tag": "worl"}, set()),  # whole tags only
        ({"since": "100m"}, {COURT, HOSTILE_TITLE[:20]}),
        ({"since": "100m", "min_size": 2}, set()),
        ({"since": "3h", "min_size": 2}, {"story"}),
        ({"until": "4h"}, {"story", LOHAN}),  # first seen at least 4 hours ago
        ({"since": (NOW - timedelta(hours=3)).isoformat(), "tag": "world"}, {"story"}),
        ({"min_sources": 3}, {"story"}),  # Alpha, Beta and Gamma
        ({"min_sources": 4}, set()),
        ({"min_sources": 2, "since": "100m"}, set()),
    ],
)
def test_filters(
    client: httpx.Client, seeded: Seeded, params: dict[str, Any], expected: set[str]
) -> None:
    items = client.get("/api/clusters", params=params).json()["items"]
    assert {_label(c, seeded) for c in items} == expected


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "0001-01-01T00:00:00+05:00"},
        {"tag": "a\x00b"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"min_size": 0},
        {"min_sources": 0},
    ],
)
def test_bad_query_values_are_client_errors(client: httpx.Client, params: dict[str, Any]) -> None:
    assert client.get("/api/clusters", params=params).status_code == 422


def test_cluster_detail_has_evidence(client: httpx.Client, seeded: Seeded) -> None:
    detail = client.get(f"/api/clusters/{seeded.story_id}").json()
    assert detail["id"] == detail["requested_id"] == seeded.story_id
    members = detail["members"]
    assert len(members) == 5
    ids = {m["id"] for m in members}
    founder = [m for m in members if m["matched_article_id"] is None]
    assert [m["id"] for m in founder] == [seeded.story_id]
    for m in members:
        assert m["tier"] in {"new", "exact", "near", "story"}
        assert 0.0 <= m["similarity"] <= 1.0
        assert m["matched_article_id"] is None or m["matched_article_id"] in ids


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/clusters/999999", 404),
        ("/api/clusters/0", 422),
        ("/api/clusters/99999999999999999999", 422),
        ("/api/articles/999999", 404),
        ("/api/articles/abc", 422),
        ("/stories/999999", 404),
    ],
)
def test_unknown_ids(client: httpx.Client, path: str, status: int) -> None:
    assert client.get(path).status_code == status


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/?page=0", ["page"]),
        ("/?page=abc&min_sources=x", ["min_sources", "page"]),  # in the signature's order
        ("/stories/abc", ["story_id"]),
        ("/search?q=harbour&level=bogus", ["level"]),
    ],
)
def test_a_bad_page_address_is_a_page(client: httpx.Client, path: str, names: list[str]) -> None:
    # A person edits the address; the API keeps its JSON list (above).
    r = client.get(path)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), r.text
    items = [li.text(strip=True) for li in HTMLParser(r.text).css("main li")]
    assert [item.split(":")[0] for item in items] == names, items


def test_article_is_returned_as_stored(client: httpx.Client, seeded: Seeded) -> None:
    article = client.get(f"/api/articles/{seeded.hostile_article}").json()
    assert article["title"] == HOSTILE_TITLE  # JSON is data: the client escapes
    assert article["url"] is None  # the javascript: link never made it into storage
    assert article["source"] == "Gamma Post"
    assert article["text"]


def test_feeds_with_health(client: httpx.Client) -> None:
    feeds = {f["title"]: f for f in client.get("/api/feeds").json()}
    assert set(feeds) == {"Alpha Wire", "Beta Times", "Gamma Post"}
    assert feeds["Beta Times"]["tags"] == ["world", "politics"]
    assert feeds["Alpha Wire"]["article_count"] == 3
    for f in feeds.values():
        assert f["status"] == "ok"
        assert f["error_count"] == 0
        assert f["last_success_at"] is not None


def test_openapi_schema_lists_every_route(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/clusters",
        "/api/clusters/{cluster_id}",
        "/api/articles/{article_id}",
        "/api/feeds",
        "/feeds/stories.atom",
        "/feeds/stories.json",
    ):
        assert "get" in paths[path], path


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
    ],
)
def test_bearer_token_protects_the_api(
    seeded: Seeded, headers: dict[str, str], status: int
) -> None:
    settings = seeded.settings.model_copy(
        update={"api": seeded.settings.api.model_copy(update={"token": "s3cret"})}
    )
    with (
        serve_app(create_app(settings, service=seeded.service)) as base,
        httpx.Client(base_url=base) as c,
    ):
        for path in ("/api/clusters", "/api/feeds", f"/api/clusters/{seeded.story_id}"):
            reply = c.get(path, headers=headers)
            assert reply.status_code == status, path
            if status == 401:
                assert reply.headers["www-authenticate"] == "Bearer"
        # The output feeds are closed too (tests/e2e/test_api_token.py: every route).
        assert c.get("/feeds/stories.atom").status_code == 401


def test_output_feeds_over_http(client: httpx.Client, seeded: Seeded) -> None:
    atom = client.get("/feeds/stories.atom", params={"min_size": 2})
    assert atom.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.id == f"urn:newsfold:story:{seeded.story_id}"
    names = {entry.author} | {c.name for c in entry.get("contributors", [])}
    assert names == {"Alpha Wire", "Beta Times", "Gamma Post"}
    assert parsed.feed.links[0].href.endswith("/feeds/stories.atom")
    doc = client.get("/feeds/stories.json", params={"tag": "politics"}).json()
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    [item] = doc["items"]
    assert {a["name"] for a in item["authors"]} == {"Alpha Wire", "Beta Times", "Gamma Post"}
    assert len(item["_newsfold"]["members"]) == 5
    doc = client.get("/feeds/stories.json", params={"min_sources": 3}).json()
    assert [i["id"] for i in doc["items"]] == [f"urn:newsfold:story:{seeded.story_id}"]


# Any printable text, numbers of every size, and the empty string.
_values = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "24h", "7d", "2026-11-26", "9999-12-31T23:59:59-05:00", "1e9", "-1"]),
)
_params = st.dictionaries(
    st.sampled_from(
        ["limit", "offset", "since", "until", "min_size", "tag", "hours", "min_sources", "page"]
    ),
    _values,
    max_size=4,
)
_paths = st.sampled_from(
    [
        "/api/clusters",
        "/api/feeds",
        "/feeds/stories.atom",
        "/feeds/stories.json",
        "/",
        "/openapi.json",
    ]
)
_id_paths = st.sampled_from(["/api/clusters/", "/api/articles/", "/stories/"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the app is read-only
)
@given(path=_paths, params=_params, id_path=_id_paths, ident=_values)
def test_no_server_errors_for_any_query(
    client: httpx.Client, path: str, params: dict[str, str], id_path: str, ident: str
) -> None:
    assert client.get(path, params=params).status_code < 500
    assert client.get(id_path + quote(ident, safe=""), params=params).status_code < 500
