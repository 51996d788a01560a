"""What a newcomer's first session showed: lists that a limit cut without a word, headers and
messages that read oddly, and relative times in the past shown as "ago" for what is due."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from newsfold.cli import main
from newsfold.cli._common import console
from tests.e2e.test_daemon import words
from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

pytestmark = pytest.mark.timeout(120)

ITEMS = 7  # distinct reports of one outlet: as many stories, copy groups and articles


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, *args: str, columns: int = 80, code: int = 0) -> str:
        self.monkeypatch.setenv("COLUMNS", str(columns))
        self.monkeypatch.setattr(console, "width", columns)
        got = main(list(args))
        captured = self.capsys.readouterr()
        assert got == code, captured.err
        return captured.out if code == 0 else captured.err


@pytest.fixture
def cli(
    feed_server: FeedServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    items = [
        {
            "title": f"Report number {i} on {words(i, 4)}",
            "link": f"https://outlet.example/{i}",
            "guid": f"g{i}",
            "date": f"Tue, 01 Dec 2026 1{i}:00:00 GMT",
            "html": f"<p>{words(100 + i)}</p>",
        }
        for i in range(ITEMS)
    ]
    feed_server.route("/feed.xml", Static(rss("Outlet", "https://outlet.example/", items)))
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    run = Cli(capsys, monkeypatch)
    run("feeds", "add", feed_server.url("/feed.xml"), "--no-check")
    run("fetch")
    return run


def test_a_list_cut_by_its_limit_says_how_many_there_are(cli: Cli) -> None:
    for level in ("stories", "copies"):
        rows = json.loads(cli("clusters", "list", "--level", level, "--limit", "0", "--json"))
        assert len(rows) == ITEMS, rows
    cut = {
        ("clusters", "list", "--limit", "2"): f"2 of {ITEMS} stories shown (--limit 0 for all)",
        ("clusters", "list", "--level", "copies", "--limit", "2"): (
            f"2 of {ITEMS} copy groups shown (--limit 0 for all)"
        ),
        ("articles", "list", "--limit", "3"): f"3 of {ITEMS} articles shown (--limit 0 for all)",
    }
    for args, note in cut.items():
        assert cli(*args).splitlines()[-1] == note
    # Nothing cut (no limit, or every row within it), and never in JSON: no note.
    for args in (
        ("clusters", "list", "--limit", "0"),
        ("clusters", "list", "--limit", str(ITEMS)),
        ("articles", "list"),
    ):
        assert "shown" not in cli(*args)
    assert len(json.loads(cli("articles", "list", "--limit", "3", "--json"))) == 3


def test_extract_lines_values_up_under_their_column(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import SHARED

    page = SHARED / "fixtures" / "seed-article.html"
    out = Cli(capsys, monkeypatch)("extract", str(page), "--url", "https://voz.us/en/world/x.html")
    lines = out.splitlines()
    fields = lines[: lines.index("")]
    first = re.match(r" *kind +", fields[0])
    assert first is not None, out
    column = first.end()  # keys right-aligned, then two spaces, then every value
    keys = [line[: column - 2].strip() for line in fields if line[: column - 2].strip()]
    assert "comparison_text" in keys and "updated" in keys
    for line in fields:
        key, value = line[: column - 2], line[column:]
        assert len(line) <= 80, line
        assert key.strip() in (*keys, ""), line
        assert line[column - 2 : column] == "  " and value[:1] not in ("", " "), line
    values = {line[: column - 2].strip(): line[column:].rstrip() for line in fields}
    assert values["updated"] == "-" and "None" not in out
    assert values["rules_fired"] == "subhead"  # a list, not its repr
    text = lines[lines.index("text") + 1 :]
    assert text[0].startswith("This Sunday, Russian and Syrian warplanes")


def test_clusters_show_names_the_story_or_copy_group(cli: Cli) -> None:
    for level, noun in (("stories", "story"), ("copies", "copy group")):
        (first, *_) = json.loads(cli("clusters", "list", "--level", level, "--json"))
        header = cli("clusters", "show", str(first["id"]), "--level", level).splitlines()[0]
        assert header.endswith(f"  ({noun} {first['id']}, 1 article)"), header


@pytest.mark.parametrize(
    "args", [["--level", "bogus"], ["--bogus"], ["--workers", "-1"]], ids=" ".join
)
def test_eval_usage_names_the_command_as_it_is_typed(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dataset = tmp_path / "set.jsonl"
    dataset.write_text("")
    code = main(["eval", str(dataset), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines()[0] == "Usage: newsfold eval [OPTIONS] {dataset}", err
    assert "eval run" not in err, err
    assert main(["eval", str(dataset), "--help"]) == 0
    out = capsys.readouterr().out
    assert "newsfold eval [OPTIONS] {dataset}" in out and "eval run" not in out, out


def test_export_to_a_file_says_what_it_wrote(cli: Cli, tmp_path: Path) -> None:
    atom, feed = tmp_path / "stories.atom", tmp_path / "stories.json"
    out = cli("export", "atom", "--limit", "3", "-o", str(atom))
    assert out == f"wrote an Atom feed of 3 entries to {atom}\n"
    assert atom.read_bytes().count(b"<entry>") == 3
    out = cli("export", "json", "-o", str(feed))
    assert out == f"wrote a JSON Feed of {ITEMS} items to {feed}\n"
    assert "wrote" not in cli("export", "json")  # on stdout: the feed alone


GERMAN = [
    (
        "Datenschutzuntersuchung gegen Meta: Aufsichtsbehörde verhängt Bußgeld in Millionenhöhe",
        "Die Datenschutzuntersuchung der irischen Aufsichtsbehörde dauerte drei Jahre; "
        "das Bußgeldverfahren endete mit der höchsten Strafe der Behördengeschichte.",
    ),
    (
        "Bundesverfassungsgericht prüft Vorratsdatenspeicherung nach Verfassungsbeschwerde",
        "Die Verfassungsbeschwerde gegen die Vorratsdatenspeicherung wurde von "
        "Bürgerrechtsorganisationen eingereicht; die Datenschutzuntersuchung läuft weiter.",
    ),
]


@pytest.mark.parametrize("level", ["articles", "stories"])
def test_search_results_wrap_words_whole(
    level: str,
    feed_server: FeedServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [
        {
            "title": title,
            "link": f"https://presse.example/{i}",
            "guid": f"de{i}",
            "date": f"Tue, 01 Dec 2026 1{i}:00:00 GMT",
            "html": f"<p>{body}</p>",
        }
        for i, (title, body) in enumerate(GERMAN)
    ]
    feed_server.route(
        "/de.xml",
        Static(rss("Süddeutsche Presseschau Nachrichtenagentur", "https://presse.example/", items)),
    )
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")
    cli = Cli(capsys, monkeypatch)
    cli("feeds", "add", feed_server.url("/de.xml"), "--no-check")
    cli("fetch")
    for width in (80, 100, 120):
        out = cli("search", "Datenschutzuntersuchung", "--level", level, columns=width)
        assert max(len(line) for line in out.splitlines()) <= width, out
        tokens = set(re.sub(r"[│┃]", " ", out).split())
        for title, _ in GERMAN[: 1 if level == "stories" else 2]:
            for word in title.split():
                assert word in tokens, (word, width, out)  # never split mid-word
        assert "Datenschutzuntersuchung" in tokens


def test_feeds_list_says_due_now_for_a_time_past(cli: Cli, feed_server: FeedServer) -> None:
    cli("feeds", "add", feed_server.url("/new.xml"), "--no-check")  # due at once
    out = cli("feeds", "list")
    rows = [line for line in out.splitlines() if re.match(r"│ \d+ ", line)]  # a feed's first line
    polled, new = rows[0], rows[-1]
    assert re.search(r"│ due now\s+│$", new), new
    assert re.search(r"│ in \d+[smhd]\s+│$", polled), polled  # polled: its next time is ahead
    assert len(rows) == 2 and " ago" not in out, out


def test_a_bare_link_post_goes_by_its_address_in_the_cli(
    feed_server: FeedServer, database_url: str, cli: Cli
) -> None:
    """An entry with neither title nor text (a link post) is named by its URL's host and path,
    in the CLI's lists and cluster view as on the page and in the output feeds."""
    bare = [{"link": "https://www.links.example/2026/dam-gates", "guid": "bare-1",
             "date": "Tue, 01 Dec 2026 18:00:00 GMT", "title": "", "html": ""}]  # fmt: skip
    feed_server.route("/bare.xml", Static(rss("Links", "https://links.example/", bare)))
    cli("feeds", "add", feed_server.url("/bare.xml"), "--no-check")
    cli("fetch")
    listed = json.loads(cli("clusters", "list", "--json", "--limit", "0"))
    titles = {c["title"] for c in listed}
    assert "links.example/2026/dam-gates" in titles and "(untitled)" not in titles
    story = next(c["id"] for c in listed if c["title"] == "links.example/2026/dam-gates")
    assert json.loads(cli("clusters", "show", str(story), "--json"))["title"] == (
        "links.example/2026/dam-gates"
    )
