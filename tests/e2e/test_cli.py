"""Every CLI command: help text, behaviour, JSON shape, and one-line errors with exit ≠ 0."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import app, main
from tests.conftest import REPO
from tests.support.server import Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

COMMANDS = [
    ["feeds", "add"],
    ["feeds", "list"],
    ["feeds", "show"],
    ["feeds", "remove"],
    ["feeds", "enable"],
    ["feeds", "import"],
    ["feeds", "export"],
    ["fetch"],
    ["run"],
    ["prune"],
    ["clusters", "list"],
    ["clusters", "show"],
    ["articles", "list"],
    ["articles", "show"],
    ["stats"],
    ["search"],
    ["alerts", "list"],
    ["alerts", "test"],
    ["demo"],
    ["extract"],
    ["db", "upgrade"],
]

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Local News</title>
<link>https://local.example/</link>
<item><guid>a1</guid><title>Bridge reopens after repairs</title>
<link>https://local.example/a1?utm_source=rss&amp;page=2</link>
<pubDate>Tue, 17 Nov 2026 08:00:00 +0200</pubDate>
<description>&lt;p&gt;The old river bridge reopened on Tuesday after eight months of repairs to its
steel deck, the city said, with a lower speed limit for lorries.&lt;/p&gt;</description></item>
</channel></rss>"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert "Usage:" in out
    # Every command reads settings from --config, but the demo, which brings its own.
    assert ("--config" in out) == (command != ["demo"])
    # The first line of the docstring is the command's summary.
    assert len(out.splitlines()) > 3


def test_all_registered_commands_are_tested() -> None:
    import typer.main

    group = typer.main.get_group(app)
    found = set()
    for name, cmd in group.commands.items():
        sub = getattr(cmd, "commands", None)
        if sub:
            found |= {f"{name} {s}" for s in sub}
        else:
            found.add(name)
    tested = {" ".join(c) for c in COMMANDS}
    extra = {"eval run", "eval syndicate", "serve", "export"}  # tested with their own modules
    assert found - extra <= tested, found - tested


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    return url


def test_feed_lifecycle(
    env: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    feed_server.route("/feed.xml", Static(FEED))
    link = (
        f'<link rel="alternate" type="application/rss+xml" href="{feed_server.url("/feed.xml")}">'
    )
    page = f"<html><head>{link}</head><body>hi</body></html>"
    feed_server.route("/", Static(page.encode(), content_type="text/html"))

    # Autodiscovery: subscribing to the site's page subscribes to the feed it advertises.
    added = as_json(
        capsys, "feeds", "add", feed_server.url("/"), "--interval", "15m", "--tag", "local"
    )
    assert added["url"] == feed_server.url("/feed.xml")
    assert added["configured_interval_s"] == 900 and added["tags"] == ["local"]

    summary = as_json(capsys, "fetch", "--feed", str(added["id"]))
    assert summary["new_articles"] == 1 and summary["errors"] == 0

    shown = as_json(capsys, "feeds", "show", str(added["id"]))
    assert shown["title"] == "Local News" and shown["status"] == "ok"
    assert shown["history"][0]["outcome"] == "ok" and shown["history"][0]["new_items"] == 1

    arts = as_json(capsys, "articles", "list", "--feed", feed_server.url("/feed.xml"))
    assert arts[0]["url"] == "https://local.example/a1?page=2"
    assert arts[0]["published"] == "2026-11-17T06:00:00Z"
    assert set(arts[0]) >= {"id", "title", "url", "feed", "published", "cluster"}
    one = as_json(capsys, "articles", "show", str(arts[0]["id"]))
    assert one["text"].startswith("The old river bridge reopened")

    clusters = as_json(capsys, "clusters", "list", "--since", "1000d")
    assert clusters[0]["size"] == 1 and clusters[0]["sources"] == ["Local News"]
    detail = as_json(capsys, "clusters", "show", str(clusters[0]["id"]))
    assert set(detail["articles"][0]) >= {"id", "title", "url", "feed", "published", "similarity"}
    assert as_json(capsys, "clusters", "list", "--level", "copies")[0]["size"] == 1

    stats = as_json(capsys, "stats")
    assert stats["feeds"] == 1 and stats["articles"] == 1 and stats["clusters"] == 1

    # OPML round trip into a fresh database.
    opml = tmp_path / "subs.opml"
    code, _, _ = run(capsys, "feeds", "export", "-o", str(opml))
    assert code == 0 and "xmlUrl" in opml.read_text()
    code, out, _ = run(capsys, "feeds", "remove", feed_server.url("/feed.xml"))
    assert code == 0 and "removed" in out
    assert as_json(capsys, "stats")["articles"] == 0
    code, out, _ = run(capsys, "feeds", "import", str(opml))
    assert code == 0 and "imported 1" in out
    assert [f["url"] for f in as_json(capsys, "feeds", "list")] == [feed_server.url("/feed.xml")]
    code, out, err = run(capsys, "feeds", "import", str(opml))
    assert code == 0 and "imported 0 feeds, skipped 1" in out
    assert err.split() == ["skipped", feed_server.url("/feed.xml") + ":", "already", "subscribed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feeds", "show", "999"], "no such feed"),
        (["articles", "show", "42"], "no such article"),
        (["clusters", "show", "42"], "no such cluster"),
        (["feeds", "add", "javascript:alert(1)", "--no-check"], "not an http(s) URL"),
        (["feeds", "add", "not a url at all", "--no-check"], "URL"),
        (["--config", "/nonexistent/newsfold.toml", "stats"], "config file not found"),
        (["clusters", "list", "--since", "yesterday-ish"], "--since"),
    ],
)
def test_errors_are_one_line(
    env: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert code != 0
    assert message in err + out
    assert "Traceback" not in err


def test_duplicate_subscription_is_refused(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "feeds", "add", "https://x.example/feed", "--no-check")[0] == 0
    code, _, err = run(capsys, "feeds", "add", "https://x.example/feed", "--no-check")
    assert code == 1 and "already subscribed" in err


def test_invalid_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[fetch]\ntimeout = 3\n")
    code, _, err = run(capsys, "--config", str(bad), "stats")
    assert code == 1 and "fetch.timeout: unknown key" in err


def test_example_settings_file_is_valid() -> None:
    from newsfold.config import load_settings

    settings = load_settings(REPO / "config" / "newsfold.toml")
    # The shipped file subscribes nothing: a first `feeds add` must not clash with it.
    assert settings.feeds == ()
    # Its commented examples are valid once uncommented.
    text = (REPO / "config" / "newsfold.toml").read_text()
    start = text.index("# [[feeds]]")
    examples = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    import tomllib

    data = tomllib.loads(examples.replace("#\n", "\n"))
    assert len(data["feeds"]) == 2
    from newsfold.config import FeedConfig

    for feed in data["feeds"]:
        FeedConfig(**feed)


def test_extract_on_a_page(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import SHARED

    page = SHARED / "fixtures" / "seed-article.html"
    data = as_json(capsys, "extract", str(page), "--url", "https://voz.us/en/world/x.html")
    assert data[0]["title"].startswith("Russia and Syria")
    assert "Muhammad Haj Kadour" not in data[0]["text"]


def test_demo_runs_as_documented(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsfold.cli",
            "demo",
            "--json",
            "--database",
            str(tmp_path / "d.db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["articles"] == 14 and data["errors"] == 0 and data["second_poll_new_articles"] == 0
    manifest = json.loads((REPO / "src" / "newsfold" / "demo_data" / "MANIFEST.json").read_text())
    sizes = sorted(s["size"] for s in data["stories"])
    expected = sorted(
        [len(g) for g in manifest["expected"]["stories"]]
        + [1] * len(manifest["expected"]["singletons"])
    )
    assert sizes == expected


def test_example_settings_show_the_defaults() -> None:
    """config/newsfold.toml claims to show each key with its default: keep it true."""
    import tomllib

    from newsfold.config import Settings

    data = tomllib.loads((REPO / "config" / "newsfold.toml").read_text())
    defaults = Settings.model_construct()
    for key, value in data.items():
        if not isinstance(value, dict | list):
            assert value == getattr(defaults, key), key
    for section in (
        "fetch",
        "schedule",
        "normalise",
        "dedup",
        "pipeline",
        "daemon",
        "api",
        "retention",
        "http",
        "alerting",
    ):
        for key, value in data.get(section, {}).items():
            expected = getattr(getattr(defaults, section), key)
            assert value == (list(expected) if isinstance(expected, tuple) else expected), (
                f"[{section}] {key}"
            )


def test_example_settings_list_every_key() -> None:
    """config/newsfold.toml lists every setting, set or commented out under its section header
    (``# key = ...``, ``# [[feeds]]``). The defaults test above reads only the keys the file
    has, so a setting added to config.py and not to the file went unnoticed."""
    import re

    from pydantic import BaseModel

    from newsfold.config import AlertRule, FeedConfig, Settings

    listed: dict[str, set[str]] = {"": set()}
    section = ""
    for line in (REPO / "config" / "newsfold.toml").read_text().splitlines():
        if header := re.match(r"#?\s*\[\[?(\w+)\]\]?", line):
            section = header[1]
            listed.setdefault(section, set())
        elif key := re.match(r"#?\s*(\w+)\s*=", line):
            listed[section].add(key[1])
    expected: dict[str, set[str]] = {"": set()}
    tables = {"feeds": FeedConfig, "alerts": AlertRule}
    for name, field in Settings.model_fields.items():
        model = tables.get(name) or field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            expected[name] = set(model.model_fields)
        else:
            expected[""].add(name)
    missing = {
        f"[{name}] {key}" if name else key
        for name, keys in expected.items()
        for key in keys - listed.get(name, set())
    }
    assert not missing, sorted(missing)


def test_settings_file_feeds_follow_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "nf.toml"
    db = f'database_url = "sqlite:///{tmp_path / "cfg.db"}"\n'
    two = '[[feeds]]\nurl = "https://a.example/feed"\n[[feeds]]\nurl = "https://B.example/rss?utm_source=x"\ntitle = "B"\n'
    cfg.write_text(db + two)
    # Read-only commands never create a database: a writing one does.
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    capsys.readouterr()
    feeds = as_json(capsys, "--config", str(cfg), "feeds", "list")
    assert [(f["url"], f["status"]) for f in feeds] == [
        ("https://a.example/feed", "pending"),
        ("https://b.example/rss", "pending"),
    ]
    # Taken out of the file: disabled (its articles are history), not deleted.
    cfg.write_text(db + '[[feeds]]\nurl = "https://a.example/feed"\n')
    feeds = {f["url"]: f for f in as_json(capsys, "--config", str(cfg), "feeds", "list")}
    assert feeds["https://b.example/rss"]["disabled_reason"] == "removed from the settings file"
    assert feeds["https://a.example/feed"]["disabled_reason"] is None
    # Listed again: back.
    cfg.write_text(db + two)
    feeds = {f["url"]: f for f in as_json(capsys, "--config", str(cfg), "feeds", "list")}
    assert feeds["https://b.example/rss"]["disabled_reason"] is None
