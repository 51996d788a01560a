"""Tables for people: readable at 80 columns (long URLs wrapped, never cut; dates whole),
the full width when the terminal is wider; `articles show` shows every stored field."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

from tests.support.server import Reply, Static

NEWSFOLD = [sys.executable, "-m", "newsfold.cli"]
LONG_PATH = "/news/world/europe/2026/12/02/a-rather-long-feed-path-segment/rss.xml"
FEED = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Long</title>'
    "<link>https://long.example/</link><description>d</description>"
    "<item><title>[bold]Bracketed[/bold] headline of the day</title>"
    "<link>https://long.example/a</link><guid>a1</guid>"
    "<author>jane@long.example (Jane Doe)</author>"
    "<pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate>"
    "<description>&lt;p&gt;A deck that says what happened.&lt;/p&gt;</description>"
    "<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
    + "&lt;p&gt;The long body of the report runs on about the harbour and the port. &lt;/p&gt;" * 6
    + "</content:encoded></item></channel></rss>"
)


def _run(args: list[str], env: dict[str, str], columns: int) -> str:
    proc = subprocess.run(
        [*NEWSFOLD, *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": str(columns), "TERM": "dumb"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def env(feed_server: FeedServer, tmp_path: Path) -> dict[str, str]:
    feed_server.route(LONG_PATH, Static(FEED.encode()))
    feed_server.route("/broken/" + "x" * 60 + ".xml", lambda _r: Reply(500, b"down"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    env |= {
        "NEWSFOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}",
        "NEWSFOLD_ALLOW_PRIVATE_NETWORKS": "true",
    }
    for path in (LONG_PATH, "/broken/" + "x" * 60 + ".xml"):
        _run(["feeds", "add", feed_server.url(path), "--no-check"], env, 80)
    return env


def test_tables_at_80_columns_keep_every_url_whole(env: dict[str, str]) -> None:
    fetched = _run(["fetch"], env, 80)
    listed = _run(["feeds", "list"], env, 80)
    for out in (fetched, listed):
        table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
        assert table and all(len(line) <= 80 for line in out.splitlines()), out
        # Whole rows: each ends in the table's right border (rich crops a table too wide).
        assert all(line.rstrip()[-1] in "┓┃┩│┘" for line in table), out
        assert "…" not in out, out
        # A feed without a title goes by its URL, wrapped, never cut (a titled one goes
        # by its title at 80 columns: its URL is a secondary column).
        feed_column = "".join(line.split("│")[2].strip() for line in table if line[0] == "│")
        assert ("broken/" + "x" * 60 + ".xml") in feed_column, out
    clusters = _run(["clusters", "list"], env, 80)
    assert re.search(r"2026-12-01 10:00", clusters), clusters  # the date is never cut
    assert "[bold]Bracketed" in clusters  # feed text, not console markup


def test_wide_terminal_uses_its_width(env: dict[str, str]) -> None:
    listed = _run(["feeds", "list"], env, 200)
    assert any(LONG_PATH in line for line in listed.splitlines()), listed  # one line, whole


def test_articles_show_has_every_field(env: dict[str, str]) -> None:
    _run(["fetch"], env, 80)
    (article,) = json.loads(_run(["articles", "list", "--json"], env, 80))
    out = _run(["articles", "show", str(article["id"])], env, 100)
    assert "[bold]Bracketed[/bold] headline of the day" in out  # feed text, not markup
    for word in ("Jane Doe", "language", "en", "date from feed", "summary", "A deck that says"):
        assert word in out, (word, out)


def test_messages_are_one_plain_line(env: dict[str, str], feed_server: FeedServer) -> None:
    # Piped output is 80 columns wide to the console; a message must not wrap there (a
    # script reads "added feed N: URL" as one line) nor lose brackets to console markup.
    url = feed_server.url(LONG_PATH.replace("rss.xml", "more/rss.xml"))
    added = _run(["feeds", "add", url, "--no-check"], env, 80)
    assert added.splitlines() == [f"added feed 3: {url}"], added
    assert _run(["feeds", "remove", "3"], env, 80).splitlines() == [f"removed feed 3: {url}"]
    fetched = _run(["fetch"], env, 80).splitlines()[-1]
    assert re.fullmatch(r"2 feeds, 1 new article, .* errors? in \d+\.\d\ds", fetched), fetched
    rules = _run(["alerts", "list"], env, 80)
    assert rules == "no alert rules: add [[alerts]] tables to the settings file\n", rules
    extracted = _run(["extract", feed_server.url(LONG_PATH)], env, 80)
    assert "[bold]Bracketed[/bold] headline" in extracted, extracted


UNDATED = (
    '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Undated</title>'
    "<link>https://undated.example/</link><description>d</description>"
    "<item><title>A report without a date</title><link>https://undated.example/a</link>"
    "<guid>u1</guid><description>The harbour reopened after the storm passed the coast."
    "</description></item></channel></rss>"
)
FRACTION = re.compile(r"\d\d:\d\d:\d\d\.\d")
SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_people_see_times_to_the_second_and_json_keeps_them_whole(
    database_url: str,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An undated entry goes by the time it was first seen (microseconds): people read it
    to the second, UTC marked; ``--json`` keeps full precision."""
    from newsfold.cli import main

    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("NEWSFOLD_RETENTION__DAYS", "30")
    feed_server.route("/undated.xml", Static(UNDATED.encode()))

    def run(*args: str) -> str:
        capsys.readouterr()
        assert main(list(args)) == 0
        return capsys.readouterr().out

    run("feeds", "add", feed_server.url("/undated.xml"))
    run("fetch")
    for args in (
        ["articles", "show", "1"],
        ["clusters", "show", "1"],
        ["feeds", "show", "1"],
        ["prune", "--dry-run"],
    ):
        out = run(*args)
        assert SECONDS.search(out) and not FRACTION.search(out), (args, out)
    article = json.loads(run("articles", "show", "1", "--json"))
    assert article["date_source"] == "first_seen"
    assert FRACTION.search(article["published"]) and article["published"].endswith("Z"), article
    feed = json.loads(run("feeds", "show", "1", "--json"))
    assert FRACTION.search(feed["next_fetch"]) and FRACTION.search(feed["history"][0]["started_at"])
