"""`feeds add` subscribes only what its own check accepts: a feed that cannot be fetched
is refused with one line and exit 1, and nothing is subscribed (``--no-check`` subscribes)."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

import pytest

from newsfold.cli import main
from tests.support.feeds import rss
from tests.support.server import Reply, Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'f.db'}")
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")


def _feeds(capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["feeds", "list", "--json"]) == 0
    return [f["url"] for f in json.loads(capsys.readouterr().out)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("case", ["404", "dns", "refused"])
def test_unfetchable_feed_is_not_subscribed(
    case: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/gone.xml", lambda _r: Reply(404, b"no"))
    url = {
        "404": feed_server.url("/gone.xml"),
        "dns": "http://no-such-host.invalid/feed.xml",
        "refused": f"http://127.0.0.1:{_closed_port()}/feed.xml",
    }[case]
    assert main(["feeds", "add", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "not subscribed" in err and "warning" not in err, err
    assert _feeds(capsys) == []
    # --no-check subscribes anyway.
    assert main(["feeds", "add", url, "--no-check"]) == 0
    assert len(_feeds(capsys)) == 1


def test_ssrf_blocked_feed_is_not_subscribed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'f.db'}")
    assert main(["feeds", "add", "http://127.0.0.1:9/feed.xml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not subscribed" in err, err
    assert _feeds(capsys) == []


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("url", ["ftp://example.org/feed", "javascript:alert(1)", "example.org"])
def test_non_http_url_is_one_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feeds", "add", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: not an http(s) URL") and err.count("\n") == 1, err
    assert _feeds(capsys) == []


@pytest.mark.usefixtures("env")
def test_good_feed_is_subscribed(
    feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/ok.xml", Static(rss("T", "https://t.example/", [])))
    assert main(["feeds", "add", feed_server.url("/ok.xml")]) == 0
    assert _feeds(capsys) == [feed_server.url("/ok.xml")]


@pytest.mark.parametrize(
    ("options", "title"),
    [([], "Harbour Gazette — World"), (["--title", "My name for it"], "My name for it")],
)
def test_added_feed_is_named_by_what_its_check_parsed(
    options: list[str],
    title: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``feeds list`` names a feed from the moment it is added, before any poll."""
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "true")
    body = rss("Harbour Gazette — World", "https://gazette.example/world", [])
    feed_server.route("/world.xml", Static(body))
    assert main(["feeds", "add", feed_server.url("/world.xml"), *options]) == 0
    capsys.readouterr()
    assert main(["feeds", "list", "--json"]) == 0
    (feed,) = json.loads(capsys.readouterr().out)
    assert (feed["title"], feed["site_url"]) == (title, "https://gazette.example/world")
    assert feed["last_fetch"] is None  # named by the check, not by a poll
    assert main(["feeds", "list"]) == 0
    table = capsys.readouterr().out
    assert all(word in table for word in title.split()), table  # the table wraps at words
    # --no-check parses nothing: the first poll names the feed, as before.
    feed_server.route("/other.xml", Static(rss("Other", "https://other.example/", [])))
    assert main(["feeds", "add", "--no-check", feed_server.url("/other.xml")]) == 0
    capsys.readouterr()
    assert main(["feeds", "list", "--json"]) == 0
    assert [f["title"] for f in json.loads(capsys.readouterr().out)] == [title, None]
