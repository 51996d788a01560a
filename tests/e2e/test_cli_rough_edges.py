"""Rough edges a new user hits: what ``feeds add`` accepts, databases in missing places,
a restart after ``kill -9``, errors that name their source, and counts in plain English."""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import main
from tests.e2e.test_daemon import daemon_env, rss, sql, start_daemon, wait_for, words
from tests.support.server import Gated, Reply, Stall, Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

pytestmark = pytest.mark.timeout(120)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
NOT_FEEDS = {
    "png": (PNG, "image/png"),
    "json": (b'{"name": "inventory", "items": [{"id": 1}]}', "application/json"),
    "tsv": (b"id\ttitle\tprice\n1\tlamp\t12.50\n2\tchair\t40\n", "text/tab-separated-values"),
}
JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Wire",
        "items": [{"id": "1", "url": "https://wire.example/1", "content_text": words(1)}],
    }
).encode()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def feeds(capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, *options, "feeds", "list", "--json")
    assert code == 0, err
    return list(json.loads(out))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    return database_url


# --- feeds add checks what it fetched ---------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NOT_FEEDS))
def test_feeds_add_refuses_what_is_not_a_feed(
    kind: str, env: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    body, media = NOT_FEEDS[kind]
    feed_server.route(f"/file.{kind}", Static(body, content_type=media))
    url = feed_server.url(f"/file.{kind}")
    code, out, err = run(capsys, "feeds", "add", url)
    assert code == 1, out
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: not subscribed: {url} is not a feed (HTTP 200"), err
    assert feeds(capsys) == []
    # --no-check still forces the subscription; the poll then says what the check said.
    code, out, err = run(capsys, "feeds", "add", "--no-check", url)
    assert code == 0 and out.startswith("added feed"), err
    assert [f["url"] for f in feeds(capsys)] == [url]


def test_feeds_add_gives_the_reason_before_an_encoding_warning(
    env: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route(
        "/prices.csv",
        Static("<p>caf\xe9</p>".encode("latin-1"), content_type="text/csv; charset=utf-8"),
    )
    url = feed_server.url("/prices.csv")
    code, out, err = run(capsys, "feeds", "add", url)
    assert code == 1, out
    why = err.split(", text/csv): ", 1)[1]
    assert why.startswith("no RSS, Atom or JSON Feed content found; CharacterEncodingOverride"), err


@pytest.mark.parametrize(
    ("body", "media"),
    [(JSON_FEED, "application/feed+json"), (rss("plain", []), "application/rss+xml")],
)
def test_feeds_add_takes_feeds_even_empty_ones(
    body: bytes,
    media: str,
    env: str,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed_server.route("/feed", Static(body, content_type=media))
    code, out, err = run(capsys, "feeds", "add", feed_server.url("/feed"))
    assert code == 0 and out.startswith("added feed 1:"), err


def test_feeds_add_refused_leaves_no_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    feed_server.route("/x.png", Static(PNG, content_type="image/png"))
    assert run(capsys, "feeds", "add", feed_server.url("/x.png"))[0] == 1
    assert not (tmp_path / "fresh.db").exists()


# --- a non-feed answer in fetch --json; counts in English --------------------------------------


def test_fetch_reports_the_status_and_size_of_an_answer_that_is_not_a_feed(
    env: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    body, media = NOT_FEEDS["tsv"]
    feed_server.route("/data.tsv", Static(body, content_type=media))
    assert run(capsys, "feeds", "add", "--no-check", feed_server.url("/data.tsv"))[0] == 0
    code, out, err = run(capsys, "fetch", "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert (result["status"], result["http_status"], result["bytes"]) == ("error", 200, len(body))
    assert result["error"].startswith("not a feed")
    # The fetch history says the same.
    code, out, err = run(capsys, "feeds", "show", "1", "--json")
    (entry,) = json.loads(out)["history"]
    assert (entry["http_status"], entry["bytes"]) == (200, len(body))


@pytest.mark.parametrize(
    ("served", "summary"),
    [
        (1, "1 feed, 1 new article, 0 duplicates, 1 cluster touched, 0 errors in "),
        (0, "1 feed, 0 new articles, 0 duplicates, 0 clusters touched, 1 error in "),
    ],
)
def test_fetch_summary_counts_in_english(
    served: int,
    summary: str,
    env: str,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if served:
        feed_server.route("/f.xml", Static(rss("one", [("g1", "Only story", words(5))])))
    else:
        feed_server.route("/f.xml", lambda request: Reply(500, b"down"))
    assert run(capsys, "feeds", "add", "--no-check", feed_server.url("/f.xml"))[0] == 0
    code, out, err = run(capsys, "fetch")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith(summary), out


def test_fetch_times_each_feed_without_the_batch_it_waits_for(
    env: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A poll writes its feeds together once the slowest has answered: a quick feed's
    duration is its own fetch and preparing, not that wait nor the write."""
    hold_s = 2.0
    feed_server.route("/quick.xml", Static(rss("quick", [("q1", "Quick story", words(1))])))
    feed_server.route(
        "/slow.xml", Gated(Static(rss("slow", [("s1", "Slow story", words(2))])), hold_s=hold_s)
    )
    for path in ("/quick.xml", "/slow.xml"):
        assert run(capsys, "feeds", "add", "--no-check", feed_server.url(path))[0] == 0
    code, out, err = run(capsys, "fetch", "--json")
    assert code == 0, err
    poll = json.loads(out)
    quick, slow = sorted(poll["results"], key=lambda r: r["url"])
    assert quick["url"].endswith("/quick.xml") and quick["new_articles"] == 1
    assert quick["duration_s"] < hold_s / 2, poll
    assert slow["duration_s"] >= hold_s, poll
    # The write is reported apart: shared by the poll's feeds, inside the poll's time.
    assert 0 < quick["write_s"] == slow["write_s"] <= poll["write_s"] < poll["duration_s"]
    assert poll["duration_s"] >= slow["duration_s"] + poll["write_s"]
    # The fetch log keeps the same figure.
    code, out, err = run(capsys, "feeds", "show", "1", "--json")
    (entry,) = json.loads(out)["history"]
    assert entry["duration_ms"] < hold_s * 1000 / 2, entry


# --- SQLite databases in places that do not exist ----------------------------------------------

READ_ONLY = [
    (["stats", "--json"], lambda out: all(v == 0 for v in json.loads(out).values())),
    (["feeds", "list", "--json"], lambda out: json.loads(out) == []),
    (["clusters", "list", "--json"], lambda out: json.loads(out) == []),
    (["articles", "list", "--json"], lambda out: json.loads(out) == []),
    (["feeds", "export"], lambda out: "<body" in out and "<outline" not in out),
    (["search", "flood", "--json"], lambda out: json.loads(out) == []),
    (["search", "--level", "stories", "--json", "flood"], lambda out: json.loads(out) == []),
    (["alerts", "list", "--json"], lambda out: json.loads(out)["deliveries"] == []),
    (["prune", "--dry-run", "--json"], lambda out: json.loads(out)["articles"] == 0),
]
WRITING = [["fetch"], ["db", "upgrade"], ["feeds", "add", "--no-check", "https://a.example/f"]]


@pytest.mark.parametrize("where", ["missing/dir/x.db", "x.db"])
@pytest.mark.parametrize(("args", "empty"), READ_ONLY, ids=[" ".join(a[:2]) for a, _ in READ_ONLY])
def test_read_only_commands_show_an_empty_database_and_create_nothing(
    where: str,
    args: list[str],
    empty: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / where}")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert empty(out), out
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", WRITING, ids=[" ".join(a[:2]) for a in WRITING])
def test_writing_commands_refuse_a_missing_directory_in_one_line(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    db = tmp_path / "missing" / "dir" / "x.db"
    env = daemon_env(f"sqlite:///{db}")
    for cmd in (args, ["run", "--once"]):
        proc = subprocess.run(
            [sys.executable, "-m", "newsfold", *cmd],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (
            f"error: cannot create the SQLite database {db}: directory {db.parent} does not exist\n"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_writing_commands_create_the_file_in_an_existing_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    code, out, err = run(capsys, "fetch")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("0 feeds, 0 new articles")
    assert (tmp_path / "new.db").is_file()


# --- a bad value from the environment is blamed on the environment ----------------------------


def test_bad_database_url_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "newsfold.toml").write_text('log_level = "INFO"\n', encoding="utf-8")
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", "mysql://root@localhost/news")
    code, _, err = run(capsys, "stats")
    assert code == 1 and err.count("\n") == 1, err
    assert "NEWSFOLD_DATABASE_URL" in err and "newsfold.toml" not in err, err
    # The same value in the file is blamed on the file.
    monkeypatch.delenv("NEWSFOLD_DATABASE_URL")
    (tmp_path / "config" / "newsfold.toml").write_text(
        'database_url = "mysql://root@localhost/news"\n', encoding="utf-8"
    )
    code, _, err = run(capsys, "stats")
    assert code == 1 and "newsfold.toml" in err and "NEWSFOLD_" not in err, err


# --- restart after kill -9 ---------------------------------------------------------------------


def test_restart_after_kill_reclaims_the_dead_daemons_leases_at_once(
    database_url: str,
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = [(f"k{i}", f"Kill story {i}", words(300 + i)) for i in range(2)]
    feed_server.route("/stuck.xml", Stall(seconds=30))
    env = daemon_env(database_url)  # default 60 s lease
    feed = [(feed_server.url("/stuck.xml"), 3600)]
    first = start_daemon(tmp_path, env, feeds=feed, name="first")
    try:
        wait_for(lambda: feed_server.hits("/stuck.xml") == 1, timeout=30)
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    (owner,) = sql(database_url, "SELECT lease_owner FROM feeds")[0]
    assert str(first.proc.pid) in str(owner)  # the lease names its holder's PID

    # Meanwhile: never fetched, so pending, not "ok".
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    config = ("--config", str(tmp_path / "first.toml"))
    assert [f["status"] for f in feeds(capsys, *config)] == ["pending"]

    feed_server.route("/stuck.xml", Static(rss("stuck", items)))
    t0 = time.monotonic()
    again = start_daemon(tmp_path, env, feeds=feed, name="again")
    try:
        wait_for(lambda: again.events("fetch"), timeout=30)
        took = time.monotonic() - t0
    finally:
        assert again.stop() == 0
    assert took < 20, took  # not the 60 s lease
    (reclaimed,) = again.events("leases_reclaimed")
    assert reclaimed["feeds"] == 1
    assert sql(database_url, "SELECT count(*) FROM articles") == [(2,)]
    assert [f["status"] for f in feeds(capsys, *config)] == ["ok"]


def test_a_live_daemons_leases_are_not_reclaimed(
    postgres_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """On PostgreSQL several daemons run at once: one starting never takes a live one's feed."""
    feed_server.route("/stuck.xml", Stall(seconds=15))
    env = daemon_env(postgres_url)
    feed = [(feed_server.url("/stuck.xml"), 3600)]
    first = start_daemon(tmp_path, env, feeds=feed, name="first")
    second = None
    try:
        wait_for(lambda: feed_server.hits("/stuck.xml") == 1, timeout=30)
        second = start_daemon(tmp_path, env, feeds=feed, name="second")
        wait_for(lambda: second.events("start"), timeout=30)
        time.sleep(1.0)  # five ticks
        assert feed_server.hits("/stuck.xml") == 1
        assert second.events("leases_reclaimed") == []
    finally:
        first.kill()
        if second is not None:
            second.kill()


# --- the SQLite daemon lock file -------------------------------------------------------------


def test_lock_file_is_removed_on_clean_stop_and_a_stale_one_never_blocks(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    db = tmp_path / "d.db"
    lock = tmp_path / "d.db.daemon.lock"
    env = daemon_env(f"sqlite:///{db}")
    daemon = start_daemon(tmp_path, env, name="one")
    try:
        wait_for(lambda: daemon.events("start"))
        assert lock.is_file()
        assert lock.read_text(encoding="utf-8").split(":")[1] == str(daemon.proc.pid)
    finally:
        assert daemon.stop() == 0
    assert not lock.exists()
    # A daemon killed outright leaves the file; the next one starts all the same.
    killed = start_daemon(tmp_path, env, name="killed")
    wait_for(lambda: killed.events("start"))
    killed.kill()
    assert lock.is_file()
    again = start_daemon(tmp_path, env, name="again")
    try:
        wait_for(lambda: again.events("start"))
    finally:
        assert again.stop() == 0
    assert not lock.exists()
