"""Every table of the CLI at 80 and 120 columns: nothing past the edge or cut at the
border, no header or word split mid-word, and narrow views fit a feed in a few lines
(secondary columns go first)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import TYPE_CHECKING

import pytest
from rich.cells import cell_len

from newsfold.cli import main
from newsfold.cli._common import console
from tests.support.feeds import rss
from tests.support.server import Reply, Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

WIDTHS = (80, 120)
BORDERS = "┓┃┩│┘"

# Every header word any table has: a header cell line holds only whole ones.
HEADER_WORDS = {
    "id",
    "feed",
    "url",
    "status",
    "articles",
    "errors",
    "last",
    "error",
    "next",
    "poll",
    "when",
    "outcome",
    "bytes",
    "fetch",
    "ms",
    "wait",
    "new",
    "dup",
    "near",
    "clusters",
    "size",
    "copy",
    "groups",
    "story",
    "title",
    "sources",
    "seen",
    "latest",
    "published",
    "cluster",
    "group",
    "tier",
    "sim",
    "via",
    "what",
    "count",
    "metric",
    "value",
}

TITLES = [
    "Harbour authority approves redevelopment of the waterfront warehouses",
    "Redemption of municipal bonds postponed after unexpected parliamentary objections",
    "Councillors disagree over the reconstruction timetable for the suspension bridge",
    "Librarians celebrate the anniversary of the cooperative lending programme",
    "Meteorologists forecast extraordinary temperatures throughout the northernmost provinces",
]
OUTLETS = {
    "/feeds/the-harbour-and-waterfront-chronicle/daily/everything/rss.xml": "Waterfront Chronicle",
    "/feeds/coastal-observer/rss.xml": "The Coastal Observer of Northern Provinces",
    "/feeds/urdu/rss.xml": "بی بی سی اردو - پاکستان",
    "/feeds/cjk/rss.xml": "東京新聞ニュース速報",
}
BROKEN = "/feeds/" + "an-outlet-that-went-away-" * 3 + "rss.xml"


def _feed(title: str, n: int) -> bytes:
    items = [
        {
            "title": TITLES[(i + n) % len(TITLES)] if n < 2 else f"{title} {i}: {TITLES[i]}",
            "link": f"https://outlet{n}.example/{i}",
            "guid": f"{n}-{i}",
            "date": f"Tue, 01 Dec 2026 1{i}:00:00 GMT",
            "html": f"<p>{TITLES[i]}. " + "The report continues with details. " * 30 + "</p>",
        }
        for i in range(len(TITLES))
    ]
    return rss(title, f"https://outlet{n}.example/", items)


class Cli:
    """The CLI in this process (a subprocess a view would take seconds on a busy machine)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, args: list[str], columns: int = 80) -> str:
        self.monkeypatch.setenv("COLUMNS", str(columns))  # consoles made while running
        self.monkeypatch.setattr(console, "width", columns)
        code = main(args)
        captured = self.capsys.readouterr()
        assert code == 0, captured.err
        return captured.out


@pytest.fixture
def cli(
    feed_server: FeedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    for n, (path, title) in enumerate(OUTLETS.items()):
        feed_server.route(path, Static(_feed(title, n)))
    feed_server.route(BROKEN, lambda _r: Reply(404, b"gone"))
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    run = Cli(capsys, monkeypatch)
    for path in [*OUTLETS, BROKEN]:
        run(["feeds", "add", feed_server.url(path), "--no-check"])
    run(["fetch"])
    (tmp_path / "set.jsonl").write_text(
        "".join(
            json.dumps({"id": f"d{i}", "cluster": f"c{i % 2}", "title": t, "text": t * 3}) + "\n"
            for i, t in enumerate(TITLES)
        ),
        encoding="utf-8",
    )
    return run


def _words(text: str) -> list[str]:
    """Words as a reader sees them: CJK (no spaces between words) is left out, as are
    runs too long to be words (URLs), which may fold anywhere."""
    return [
        w
        for w in text.split()
        if len(w) <= 24 and not any(unicodedata.east_asian_width(c) in "WF" for c in w)
    ]


def _cells(out: str) -> set[str]:
    """Every whitespace-separated token inside the table cells and text of ``out``."""
    return set(re.sub(r"[│┃┆]", " ", out).split())


def _check(out: str, width: int, titles: list[str]) -> None:
    lines = out.splitlines()
    assert all(cell_len(line) <= width for line in lines), out
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert all(line.rstrip()[-1] in BORDERS for line in table), out  # never cut at the edge
    assert "…" not in out, out
    for line in table:
        if line.startswith("┃"):
            for word in re.sub(r"[┃]", " ", line).split():
                assert word in HEADER_WORDS, (word, out)  # no header split mid-word
    tokens = _cells(out)
    for title in titles:
        for word in _words(title):
            assert word in tokens, (word, title, out)  # never split mid-word


def test_every_table_fits_80_and_120_columns(cli: Cli, tmp_path: Path) -> None:
    feeds = json.loads(cli(["feeds", "list", "--json"]))
    articles = json.loads(cli(["articles", "list", "--json"]))
    clusters = json.loads(cli(["clusters", "list", "--json"]))
    biggest = max(clusters, key=lambda c: c["size"])
    members = json.loads(cli(["clusters", "show", str(biggest["id"]), "--json"]))
    broken = next(f for f in feeds if f["url"].endswith(BROKEN))
    feed_titles = [f["title"] for f in feeds if f["title"]]
    views = [
        (["feeds", "list"], feed_titles),
        (["feeds", "show", str(broken["id"])], []),
        (["feeds", "show", str(feeds[0]["id"])], [feeds[0]["title"]]),
        (["fetch"], feed_titles),
        (["articles", "list"], [a["title"] for a in articles]),
        (["clusters", "list"], [c["title"] for c in clusters]),
        (["clusters", "show", str(biggest["id"])], [a["title"] for a in members["articles"]]),
        (["clusters", "list", "--level", "copies"], []),
        (["stats"], []),
        (["eval", str(tmp_path / "set.jsonl")], []),
    ]
    for args, titles in views:
        for width in WIDTHS:
            out = cli(args, width)
            _check(out, width, titles)
            if args[0] in ("feeds", "fetch") and args[-1] in ("list", "fetch"):
                # One or two lines a feed, not one a dozen characters of its URL.
                rows = len([line for line in out.splitlines() if line.startswith("│")])
                assert rows <= 2 * len(feeds) + 6, out
    history = cli(["feeds", "show", str(broken["id"])])
    assert "outcome" in history and "404" in history
    wide = cli(["feeds", "list"], 120)
    assert "last error" in wide and "HTTP 404" in wide  # the wider view has more columns


def test_history_shows_fetch_time_and_wait_for_the_host_apart(cli: Cli) -> None:
    # Queued behind the others on one host, a polite 0.3 s apart: the last feed waits.
    cli.monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0.3")
    cli(["fetch"])
    feeds = json.loads(cli(["feeds", "list", "--json"]))
    history = [
        json.loads(cli(["feeds", "show", str(f["id"]), "--json"]))["history"][0] for f in feeds
    ]
    assert all(h["duration_ms"] >= h["wait_ms"] >= 0 for h in history), history
    assert max(h["wait_ms"] for h in history) >= 2 * 300, history  # 3rd in line or later
    errors = [h for h in history if h["outcome"] == "error"]
    assert errors and "wait_ms" in errors[0], history
    out = cli(["feeds", "show", str(feeds[-1]["id"])], 80)
    assert re.search(r"┃\s+wait\s+┃", out) or "wait ms" in out, out
