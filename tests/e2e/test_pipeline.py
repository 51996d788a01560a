"""End to end through the real CLI and a real HTTP server on 127.0.0.1, on SQLite and PostgreSQL.

The seed article (shared fixture) is republished by two other outlets built
here from its text: new headline, their own banner/credits/share lines, an
agency dateline, a trimmed or reordered paragraph. Unrelated real articles
(ECB+ dev set) ride along in the same feeds and must stay on their own.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import main
from tests.conftest import SHARED
from tests.support.feeds import rss as _rss
from tests.support.server import Reply, Request, Static

if TYPE_CHECKING:
    from tests.support.server import FeedServer

SEED_FEED = (SHARED / "fixtures" / "seed-feed.xml").read_bytes()
EXPECTED = json.loads((SHARED / "fixtures" / "seed-article.expected.json").read_text())


def _seed_paragraphs() -> list[str]:
    lines = (SHARED / "fixtures" / "seed-article.txt").read_text().splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith(EXPECTED["text_starts_with"][:20])
    )
    end = next(i for i, line in enumerate(lines) if line.endswith(EXPECTED["text_ends_with"]))
    # Body paragraphs only (long lines); subheads are short.
    return [line for line in lines[start : end + 1] if len(line) > 80]


def _unrelated(n: int, skip_topics: int = 0) -> list[dict[str, Any]]:
    """Real news articles from distinct ECB+ topics (so distinct events)."""
    docs, topics = [], set()
    with (SHARED / "data" / "dedup-dev.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["topic"] in topics or len(doc["text"]) < 600:
                continue
            topics.add(doc["topic"])
            if len(topics) > skip_topics:
                docs.append(doc)
            if len(docs) == n:
                break
    return docs


def _page(banner: str, paragraphs: list[str], footer: str) -> str:
    inner = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f"<p>{escape(banner)}</p><figure><img src='x.jpg'><figcaption>Smoke over the city"
        f"Jane Roe / AFP</figcaption></figure>{inner}<p>{escape(footer)}</p>"
        "<img src='https://px.example.org/p.gif' width='1' height='1'>"
    )


def _copy_b(paragraphs: list[str]) -> dict[str, str]:
    first = "BEIRUT (AFP) — " + paragraphs[0]
    return {
        "title": "Syrian and Russian jets pound rebel areas after Aleppo falls",
        "link": "https://ledger.example/world/aleppo-strikes?utm_source=rss&fbclid=abc",
        "guid": "ledger-aleppo",
        "date": "Sun, 01 Dec 2024 15:20:00 +0100",
        "html": _page("The Daily Ledger", [first, *paragraphs[1:-1]], "Share this story"),
    }


def _copy_c(paragraphs: list[str]) -> dict[str, str]:
    edited = [p.replace("warplanes", "jets").replace("heavy", "intense") for p in paragraphs]
    edited[1], edited[2] = edited[2], edited[1]
    return {
        "title": "Airstrikes hit Idlib as rebels hold Aleppo",
        "link": "https://courier.example/2024/12/01/airstrikes-idlib?utm_medium=feed&id=77",
        "guid": "courier-idlib",
        "date": "Sun, 01 Dec 2024 14:45:00 GMT",
        "html": _page("Courier Online", edited, "Subscribe to our newsletter"),
    }


def _ecb_item(doc: dict[str, Any], site: str) -> dict[str, str]:
    paras = doc["text"].split("\n")
    return {
        "title": doc["title"],
        "link": f"{site}/story/{doc['id'].split(':')[1]}",
        "guid": doc["id"],
        "date": "Sun, 01 Dec 2024 10:00:00 GMT",
        "html": "".join(f"<p>{escape(p)}</p>" for p in paras),
    }


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


class Slow:
    def __call__(self, request: Request) -> Reply:
        return Reply(200, iter([b"<rss>"] + [b" "] * 50), {"Content-Type": "text/xml"}, delay_s=0.2)


@pytest.fixture
def world(feed_server: FeedServer) -> FeedServer:
    paragraphs = _seed_paragraphs()
    unrelated = _unrelated(4)
    feed_server.route("/voz.xml", Static(SEED_FEED))
    feed_server.route(
        "/ledger.xml",
        Static(
            _rss(
                "The Daily Ledger",
                "https://ledger.example",
                [
                    _copy_b(paragraphs),
                    _ecb_item(unrelated[0], "https://ledger.example"),
                    _ecb_item(unrelated[1], "https://ledger.example"),
                ],
            )
        ),
    )
    feed_server.route(
        "/courier.xml",
        Static(
            _rss(
                "Courier Online",
                "https://courier.example",
                [
                    _copy_c(paragraphs),
                    _ecb_item(unrelated[2], "https://courier.example"),
                    _ecb_item(unrelated[3], "https://courier.example"),
                ],
            )
        ),
    )
    feed_server.route("/garbage.xml", Static(bytes(range(256)) * 20, content_type="text/xml"))
    feed_server.route("/slow.xml", Slow())
    return feed_server


def test_pipeline_end_to_end(
    world: FeedServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__READ_TIMEOUT_S", "0.5")
    monkeypatch.setenv("NEWSFOLD_FETCH__TOTAL_TIMEOUT_S", "2")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    good = ["/voz.xml", "/ledger.xml", "/courier.xml"]
    bad = ["/missing.xml", "/garbage.xml", "/slow.xml"]
    for path in good + bad:
        cli(capsys, "feeds", "add", world.url(path), "--no-check")

    t0 = time.perf_counter()
    summary = cli(capsys, "fetch")
    assert time.perf_counter() - t0 < 20
    assert summary["feeds"] == 6
    assert summary["new_articles"] == 7
    assert summary["errors"] == 3

    # Failures are recorded on their feeds; the healthy ones ingested regardless.
    feeds = {f["url"]: f for f in cli(capsys, "feeds", "list")}
    for path in bad:
        f = feeds[world.url(path)]
        assert f["error_count"] == 1, f
        assert f["last_error"] and f["last_error_kind"]
        assert f["next_fetch"] > f["last_fetch"]
    for path in good:
        assert feeds[world.url(path)]["error_count"] == 0
        assert feeds[world.url(path)]["articles"] >= 1

    # The seed article meets the expected normalisation.
    articles = cli(capsys, "articles", "list", "--limit", "0")
    seed = next(a for a in articles if a["title"] == EXPECTED["title"])
    assert seed["url"] == EXPECTED["canonical_url"]
    assert seed["published"] == EXPECTED["published_utc"]
    detail = cli(capsys, "articles", "show", str(seed["id"]))
    text = detail["text"]
    assert text.startswith(EXPECTED["text_starts_with"])
    assert text.endswith(EXPECTED["text_ends_with"])
    for needle in EXPECTED["text_must_contain"]:
        assert needle in text
    for needle in EXPECTED["text_must_not_contain"]:
        assert needle not in text
    assert "<" not in text
    assert all(
        "utm_" not in (a["url"] or "") and "fbclid" not in (a["url"] or "") for a in articles
    )

    # The three reports of the seed story share one story and one copy group; the rest stand alone.
    story = cli(capsys, "clusters", "show", str(seed["cluster"]))
    assert sorted(m["feed"] for m in story["articles"]) == sorted(
        ["Voz.us — World", "The Daily Ledger", "Courier Online"]
    )
    assert {m["copy_group"] for m in story["articles"]} == {seed["copy_group"]}
    assert all(m["similarity"] > 0 for m in story["articles"])
    clusters = cli(capsys, "clusters", "list")
    assert sorted(c["size"] for c in clusters) == [1, 1, 1, 1, 3]
    big = next(c for c in clusters if c["size"] == 3)
    assert set(big) >= {"id", "title", "size", "first_seen", "last_seen", "sources"}
    assert big["copy_groups"] == 1  # one wire text, three copies
    copies = cli(capsys, "clusters", "list", "--level", "copies", "--min-size", "2")
    assert [(c["size"], c["story"]) for c in copies] == [(3, big["id"])]
    assert cli(capsys, "clusters", "list", "--min-size", "2") == [big]

    # Polling again adds nothing.
    again = cli(capsys, "fetch")
    assert again["new_articles"] == 0
    assert len(cli(capsys, "articles", "list", "--limit", "0")) == 7

    # A restart (fresh process state, index rebuilt from stored signatures) keeps the
    # cluster ids, and a later copy still joins the same story.
    paragraphs = _seed_paragraphs()
    late = _copy_b(paragraphs) | {
        "guid": "herald-1",
        "title": "Idlib bombed after rebels take Aleppo",
        "link": "https://herald.example/a/1",
    }
    world.route("/herald.xml", Static(_rss("Herald", "https://herald.example", [late])))
    cli(capsys, "feeds", "add", world.url("/herald.xml"), "--no-check")
    cli(capsys, "fetch", "--feed", world.url("/herald.xml"))
    after = cli(capsys, "clusters", "list")
    assert {c["id"] for c in after} == {c["id"] for c in clusters}
    assert next(c for c in after if c["id"] == big["id"])["size"] == 4

    stats = cli(capsys, "stats")
    assert stats["articles"] == 8
    assert stats["feeds"] == 7
    assert stats["clusters"] == 5
    assert stats["duplicates"] >= 3
