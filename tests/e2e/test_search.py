"""Full-text search: CLI and API, on SQLite and PostgreSQL; the index follows inserts,
revisions and removals, and the migration fills it for articles stored before it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import main
from newsfold.search_query import QueryError, parse
from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.server import FeedServer

DATE = "Tue, 17 Nov 2026 08:00:00 +0000"
FLOOD = (
    "Heavy rain flooded the harbour district on Monday night. Emergency crews pumped water "
    "out of cellars while the river kept rising past the old stone bridge near the market."
)
ITEMS_A = [
    {
        "title": "Harbour district flooded after storm",
        "link": "https://a.example/flood",
        "guid": "a-flood",
        "date": DATE,
        "html": f"<p>{FLOOD}</p>",
    },
    {
        "title": "Council approves new budget",
        "link": "https://a.example/budget",
        "guid": "a-budget",
        "date": DATE,
        "html": "<p>The city council approved the new budget for schools and roads on Tuesday "
        "evening after a long debate about the prime minister and taxes in the region.</p>",
    },
    {
        "title": "Neue Häuser am Stadtrand",
        "link": "https://a.example/haus",
        "guid": "a-haus",
        "date": DATE,
        "html": "<p>Die Stadt baut neue Häuser am Stadtrand. Der Bürgermeister sagte am Montag, "
        "dass die Wohnungen im nächsten Jahr fertig sein sollen und günstig bleiben.</p>",
    },
    {
        "title": "東京で大雨",
        "link": "https://a.example/tokyo",
        "guid": "a-tokyo",
        "date": DATE,
        "html": "<p>東京都で大雨が降り、多くの電車が止まりました。気象庁は警報を出しました。"
        "川の水位が上がっています。</p>",
    },
    {
        "title": "کراچی میں بارش",
        "link": "https://a.example/karachi",
        "guid": "a-karachi",
        "date": DATE,
        "html": "<p>کراچی میں شدید بارش کے بعد کئی سڑکیں پانی میں ڈوب گئیں اور شہریوں کو مشکلات "
        "کا سامنا کرنا پڑا۔ محکمہ موسمیات نے مزید بارش کی پیشگوئی کی ہے۔</p>",
    },
]
ITEMS_B = [
    {
        "title": "Cellars pumped dry",
        "link": "https://b.example/cellars",
        "guid": "b-cellars",
        "date": DATE,
        "html": "<p>Volunteers pumped water from cellars and basements across the old town "
        "during the weekend, working in shifts until the last house was dry again.</p>",
    },
    {
        "title": "Storm floods harbour district",
        "link": "https://b.example/flood",
        "guid": "b-flood",
        "date": DATE,
        "html": f"<p>{FLOOD} Officials said the forecast shows more rain.</p>",
    },
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def search(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "search", *args, "--json")
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


def titles(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    return sorted(h["title"] for h in search(capsys, *args))


@pytest.fixture
def env(
    database_url: str, monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer
) -> Iterator[str]:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    feed_server.route("/a.xml", Static(rss("Daily A", "https://a.example/", ITEMS_A)))
    feed_server.route("/b.xml", Static(rss("Daily B", "https://b.example/", ITEMS_B)))
    for name in ("/a.xml", "/b.xml"):
        assert main(["feeds", "add", feed_server.url(name)]) == 0
    assert main(["fetch"]) == 0
    yield database_url


def test_search_articles_with_syntax(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    hits = search(capsys, "flooded")
    assert {h["title"] for h in hits} == {
        "Harbour district flooded after storm",
        "Storm floods harbour district",
    }
    assert set(hits[0]) >= {"id", "title", "url", "snippet", "published"}
    assert all("<mark>flooded</mark>" in h["snippet"] for h in hits)
    # The title weighs more than the body: the article titled "... cellars" ranks first.
    assert titles(capsys, "cellars") == sorted([*(h["title"] for h in hits), "Cellars pumped dry"])
    assert search(capsys, "pumped water cellars")[0]["title"] == "Cellars pumped dry"
    assert titles(capsys, '"prime minister"') == ["Council approves new budget"]
    assert titles(capsys, '"minister prime"') == []
    assert titles(capsys, "harbour -forecast") == ["Harbour district flooded after storm"]
    assert titles(capsys, "budget OR forecast") == [
        "Council approves new budget",
        "Storm floods harbour district",
    ]
    assert titles(capsys, "(budget OR forecast) -council") == ["Storm floods harbour district"]
    assert len(search(capsys, "harbour", "--limit", "1")) == 1
    assert search(capsys, "harbour", "--since", "1h") == []  # published in 2026-11


def test_search_stories(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    hits = search(capsys, "harbour", "--level", "stories")
    assert len(hits) == 1
    story = hits[0]
    assert story["size"] == 2
    assert sorted(story["sources"]) == ["Daily A", "Daily B"]
    assert story["matches"] == 2
    assert "<mark>" in story["snippet"]
    assert set(story) >= {"id", "title", "size", "sources", "snippet", "published"}


def test_search_by_feed(
    env: str, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    only_b = search(capsys, "harbour", "--feed", feed_server.url("/b.xml"))
    assert [h["title"] for h in only_b] == ["Storm floods harbour district"]


def test_languages_without_case_or_spaces(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Japanese is written without spaces: a word is found inside a run of characters.
    tokyo = search(capsys, "東京")
    assert [h["title"] for h in tokyo] == ["東京で大雨"]
    assert "<mark>東京</mark>" in tokyo[0]["snippet"]
    assert titles(capsys, "気象庁") == ["東京で大雨"]
    assert titles(capsys, "京で大") == ["東京で大雨"]
    assert titles(capsys, "大阪") == []
    # Urdu has no case; its words are found whole.
    assert titles(capsys, "بارش") == ["کراچی میں بارش"]
    assert titles(capsys, "پیشگوئی") == ["کراچی میں بارش"]
    # Accents are ignored (Hauser finds Häuser).
    assert titles(capsys, "hauser") == ["Neue Häuser am Stadtrand"]


def test_postgresql_stems_by_language(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not env.startswith("postgresql"):
        pytest.skip("SQLite does not stem (unicode61 tokenizer)")
    # English stemming: "flood" finds "flooded" and "floods"; German: "Haus" finds "Häuser"
    # only where the German configuration stems it (not an English article).
    assert len(search(capsys, "flood")) == 2
    assert titles(capsys, "Wohnung") == ["Neue Häuser am Stadtrand"]


@pytest.mark.parametrize(
    "query",
    ['"unclosed', "-alone", "a OR", "(open", "()", "+++", "x" * 600, "a\x01b"],
)
def test_malformed_queries_are_one_line_errors(
    env: str, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    code, out, err = run(capsys, "search", "--", query)
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


# What a user might type: dangling operators, lone punctuation, emoji, bytes that are not
# UTF-8 (a shell passes them on as lone surrogates), control characters, overlong input.
ROUGH_QUERIES = [
    '"unterminated',
    "-",
    "--",
    "OR OR",
    "a OR",
    "OR a",
    "a (OR b)",
    "((a)",
    "a)",
    '""',
    "🔥",
    '"🔥"',
    "\u200b",
    "x\udcffy",
    "-(a -b)",
    "\t",
    "x" * 501,
    " ".join(["a"] * 33),
]


def test_rough_queries_are_one_line_errors_on_cli_and_api(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from newsfold.api.app import create_app
    from newsfold.config import load_settings
    from tests.e2e.test_api import serve_app

    for level in ("articles", "stories"):
        for query in ROUGH_QUERIES:
            code, out, err = run(capsys, "search", "--level", level, "--", query)
            assert (code, out) == (1, ""), query
            assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, query
    # Over HTTP: a 400 with a one-line detail; never a validation error's list or a 500.
    raw = ["%ED%A0%80", "%FF", "%00", "", "x" * 600]
    with serve_app(create_app(load_settings(None))) as base, httpx.Client(base_url=base) as c:
        for level in ("articles", "stories"):
            asked = [
                *(
                    c.get("/api/search", params={"q": q, "level": level})
                    for q in ROUGH_QUERIES
                    if "\udcff" not in q
                ),
                *(c.get(f"/api/search?level={level}&q={q}") for q in raw),
                c.get(f"/api/search?level={level}"),
            ]
            for r in asked:
                assert r.status_code == 400, (r.url, r.text)
                detail = r.json()["detail"]
                assert isinstance(detail, str) and "\n" not in detail, r.text
            for q in ["x" * 600, "OR OR"]:
                assert c.get("/search", params={"q": q, "level": level}).status_code == 400
        # Unicode that holds words still searches.
        assert c.get("/api/search", params={"q": "東京 -🔥"}).status_code == 200
        assert c.get("/api/search?q=%E6%9D%B1%E4%BA%AC%FF").status_code == 200


def test_index_follows_revisions_and_removals(
    env: str, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    revised = [
        ITEMS_B[0],
        dict(
            ITEMS_B[1],
            html="<p>The harbour was dry by Wednesday morning, the mayor "
            "said, after crews cleared the drains overnight with pumps.</p>",
        ),
    ]
    feed_server.route("/b.xml", Static(rss("Daily B", "https://b.example/", revised)))
    assert main(["fetch"]) == 0
    capsys.readouterr()
    assert titles(capsys, "forecast") == []
    assert titles(capsys, "drains") == ["Storm floods harbour district"]
    assert main(["feeds", "remove", feed_server.url("/b.xml")]) == 0
    capsys.readouterr()
    assert titles(capsys, "drains") == []
    assert titles(capsys, "harbour") == ["Harbour district flooded after storm"]
    assert titles(capsys, "cellars") == ["Harbour district flooded after storm"]


def test_migration_fills_the_index_for_stored_articles(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic import command
    from alembic.config import Config

    from newsfold.storage import MIGRATIONS, Storage

    storage = Storage(env)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with storage.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")  # as before search: the articles, no index
    storage.upgrade()
    storage.close()
    assert len(search(capsys, "harbour")) == 2
    assert titles(capsys, "東京") == ["東京で大雨"]


def test_query_parser_tree() -> None:
    tree = parse('a b OR "c d" -e')
    assert str(tree).count("Phrase") == 4
    with pytest.raises(QueryError):
        parse("-a -b")


def test_api_and_web_search(env: str) -> None:
    import httpx

    from newsfold.api.app import create_app
    from newsfold.config import load_settings
    from tests.e2e.test_api import serve_app

    settings = load_settings(None)
    app = create_app(settings)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as c:
        hits = c.get("/api/search", params={"q": "harbour -forecast"}).json()
        assert [h["title"] for h in hits] == ["Harbour district flooded after storm"]
        assert set(hits[0]) >= {"id", "title", "url", "snippet", "published"}
        assert "<mark>harbour</mark>" in hits[0]["snippet"].lower()
        stories = c.get("/api/search", params={"q": "harbour", "level": "stories"}).json()
        assert len(stories) == 1
        assert stories[0]["size"] == 2 and len(stories[0]["sources"]) == 2
        for bad in ['"open', "-x", "a OR", "\u0000"]:
            r = c.get("/api/search", params={"q": bad})
            assert r.status_code in (400, 422), (bad, r.text)
            assert "\n" not in r.json()["detail"] if isinstance(r.json()["detail"], str) else True
        page = c.get("/").text
        assert 'action="/search"' in page
        found = c.get("/search", params={"q": "東京"})
        assert found.status_code == 200
        assert "<mark>東京</mark>" in found.text and "/stories/" in found.text
        assert c.get("/search", params={"q": '"open'}).status_code == 400
        # Feed text is escaped in a snippet: a match never opens markup of its own.
        assert "<script" not in c.get("/search", params={"q": "harbour"}).text.lower()
