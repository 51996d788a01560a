"""The daemon as a real subprocess (``python -m newsfold run``) against the local feed server.

Schedule, graceful stop within the grace period (finishing or abandoning the
fetch in flight), a second signal, restart without loss or duplicates, the
SQLite single-daemon lock, JSON logs and the health/metrics endpoint.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.support.server import Reply, Request, Static, Trickle

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from tests.support.server import FeedServer

pytestmark = pytest.mark.timeout(120)

# Every series the issue asks /metrics to carry (family names, as the parser reports them).
EXPECTED_METRICS = {
    "newsfold_fetches": "counter",  # by outcome
    "newsfold_fetch_duration_seconds": "histogram",
    "newsfold_articles_ingested": "counter",
    "newsfold_duplicates": "counter",  # by tier
    "newsfold_clusters": "counter",  # created / extended
    "newsfold_feeds_erroring": "gauge",
    "newsfold_poll_lag_seconds": "gauge",
}


# --- helpers shared with test_daemon_pg.py ---------------------------------------------------


def rss(name: str, items: Sequence[tuple[str, str, str]], *, when: datetime | None = None) -> bytes:
    """An RSS document; items are (guid, title, text), newest first, an hour apart."""
    when = when or datetime.now(UTC) - timedelta(minutes=5)
    body = "".join(
        f'<item><title>{escape(title)}</title><guid isPermaLink="false">{escape(guid)}</guid>'
        f"<link>https://{name}.example/{escape(guid)}</link>"
        f"<pubDate>{format_datetime(when - timedelta(hours=i))}</pubDate>"
        f"<description>{escape(''.join(f'<p>{p}</p>' for p in txt.split(chr(10))))}</description>"
        "</item>"
        for i, (guid, title, txt) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{name}</title><link>https://{name}.example/</link><description>news</description>"
        f"{body}</channel></rss>"
    ).encode()


def words(seed: int, n: int = 120) -> str:
    """Distinct filler prose per seed: unrelated seeds share no shingles."""
    rng = random.Random(seed)
    syllables = ("lo", "ka", "mir", "sen", "tu", "vel", "dor", "pa", "rin", "gos", "eth", "bu")
    out = ["".join(rng.choice(syllables) for _ in range(3)) for _ in range(n)]
    return " ".join(w + ("." if i % 12 == 11 else "") for i, w in enumerate(out))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(check: Callable[[], object], timeout: float = 20.0, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {check}")


@dataclass
class Daemon:
    """A ``newsfold run`` subprocess; stderr goes to a file so it never blocks on a pipe."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    http: str | None = None
    started: float = field(default_factory=time.monotonic)

    def lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def events(self, name: str | None = None) -> list[dict[str, object]]:
        out = []
        for line in self.lines():
            if line.startswith("{"):
                record = json.loads(line)
                if name is None or record.get("event") == name:
                    out.append(record)
        return out

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def daemon_env(database_url: str, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    env.update(
        NEWSFOLD_DATABASE_URL=database_url,
        NEWSFOLD_ALLOW_PRIVATE_NETWORKS="1",
        NEWSFOLD_FETCH__MIN_HOST_DELAY_S="0",
        NEWSFOLD_DAEMON__TICK_S="0.2",
        NEWSFOLD_SCHEDULE__JITTER="0",
    )
    env.update({f"NEWSFOLD_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_daemon(
    tmp_path: Path,
    env: dict[str, str],
    *,
    feeds: Sequence[tuple[str, int]] = (),
    http: bool = False,
    extra: Sequence[str] = (),
    name: str = "daemon",
) -> Daemon:
    """Start ``python -m newsfold run``; ``feeds`` are (url, interval_s) for the settings file."""
    config = tmp_path / f"{name}.toml"
    config.write_text(
        "".join(
            f'[[feeds]]\nurl = "{url}"\ninterval_s = {interval}\n\n' for url, interval in feeds
        ),
        encoding="utf-8",
    )
    listen = f"127.0.0.1:{free_port()}" if http else None
    args = [sys.executable, "-m", "newsfold", "run", "--config", str(config), *extra]
    if listen:
        args += ["--http", listen]
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as err:
        proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    return Daemon(proc, log_path, f"http://{listen}" if listen else None)


def sql(database_url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


# --- tests -------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'daemon.db'}"


def test_polls_on_schedule_with_json_fetch_events(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    items = [(f"s{i}", f"Story {i}", words(i)) for i in range(3)]
    feed_server.route("/a.xml", Static(rss("alpha", items)))
    env = daemon_env(sqlite_url, schedule__min_interval_s=1)
    daemon = start_daemon(tmp_path, env, feeds=[(feed_server.url("/a.xml"), 1)])
    try:
        wait_for(lambda: feed_server.hits("/a.xml") >= 3, timeout=30)
    finally:
        assert daemon.stop() == 0
    times = [r.at for r in feed_server.requests if r.path == "/a.xml"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Polled again when due (1 s), never hammered at the 0.2 s tick.
    assert all(gap >= 0.8 for gap in gaps), gaps
    # Structured logs: every stderr line is one JSON object; one event per fetch.
    records = [json.loads(line) for line in daemon.lines()]
    fetches = [r for r in records if r.get("event") == "fetch"]
    assert len(fetches) >= 3
    first = fetches[0]
    assert {"feed_id", "status", "duration_ms", "bytes", "new_items", "ts", "level"} <= set(first)
    assert (first["status"], first["new_items"], first["bytes"]) == (
        200,
        3,
        len(rss("alpha", items)),
    )
    assert [f["new_items"] for f in fetches[1:]] == [0] * (len(fetches) - 1)
    assert sql(sqlite_url, "SELECT count(*) FROM articles") == [(3,)]


@pytest.mark.parametrize(
    ("grace_s", "body_s", "finished"),
    [
        (1.0, 30.0, False),  # fetch outlives the grace period: abandoned, polled again later
        (15.0, 1.5, True),  # fetch ends inside the grace period: completed and committed
    ],
)
def test_sigterm_during_slow_fetch_then_restart(
    feed_server: FeedServer,
    tmp_path: Path,
    sqlite_url: str,
    grace_s: float,
    body_s: float,
    finished: bool,
) -> None:
    fast = [(f"f{i}", f"Fast story {i}", words(10 + i)) for i in range(4)]
    slow = [(f"w{i}", f"Slow story {i}", words(20 + i)) for i in range(3)]
    slow_doc = rss("slow", slow)
    feed_server.route("/fast.xml", Static(rss("fast", fast)))

    def trickled(request: Request) -> Reply:
        # The whole document, spread over body_s seconds: a slow but honest server.
        chunks = [slow_doc[i : i + 64] for i in range(0, len(slow_doc), 64)]
        return Reply(
            200, chunks, {"Content-Type": "application/rss+xml"}, delay_s=body_s / len(chunks)
        )

    feed_server.route("/slow.xml", trickled)
    env = daemon_env(sqlite_url, daemon__grace_s=grace_s)
    feeds = [(feed_server.url("/fast.xml"), 3600), (feed_server.url("/slow.xml"), 3600)]
    daemon = start_daemon(tmp_path, env, feeds=feeds)
    try:
        wait_for(lambda: daemon.events("fetch") and feed_server.hits("/slow.xml"))
        t0 = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.proc.wait(grace_s + 10)
        took = time.monotonic() - t0
    finally:
        daemon.kill()
    assert code == 0
    assert took < (grace_s + 5 if not finished else body_s + 5)
    stored = sql(sqlite_url, "SELECT entry_key FROM articles ORDER BY entry_key")
    assert len(stored) == len(fast) + (len(slow) if finished else 0)
    # Nothing half-written: an abandoned feed has no articles and no lease left behind.
    assert sql(sqlite_url, "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL") == [(0,)]

    # Restart: the slow feed is polled again at once (no stale lease), nothing is lost or doubled.
    feed_server.route("/slow.xml", Static(slow_doc))
    again = start_daemon(tmp_path, env, feeds=feeds, name="again")
    try:
        if not finished:
            wait_for(lambda: again.events("fetch"), timeout=20)
        else:
            wait_for(lambda: again.events("start"))
            time.sleep(0.6)  # a few ticks: nothing is due, nothing may be fetched
    finally:
        assert again.stop() == 0
    keys = [k for (k,) in sql(sqlite_url, "SELECT entry_key FROM articles")]
    assert len(keys) == len(set(keys)) == len(fast) + len(slow)
    assert feed_server.hits("/fast.xml") == 1
    assert feed_server.hits("/slow.xml") == (1 if finished else 2)


def test_second_signal_exits_at_once(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    feed_server.route("/stuck.xml", Trickle(every_s=0.1, count=600))
    env = daemon_env(sqlite_url, daemon__grace_s=60)
    daemon = start_daemon(tmp_path, env, feeds=[(feed_server.url("/stuck.xml"), 3600)])
    try:
        wait_for(lambda: feed_server.hits("/stuck.xml"))
        daemon.signal(signal.SIGTERM)
        wait_for(lambda: daemon.events("stopping"))
        assert daemon.proc.poll() is None  # still inside its 60 s grace period
        t0 = time.monotonic()
        daemon.signal(signal.SIGINT)
        code = daemon.proc.wait(5)
    finally:
        daemon.kill()
    assert time.monotonic() - t0 < 2
    assert code == 128 + signal.SIGINT
    assert sql(sqlite_url, "SELECT count(*) FROM articles") == [(0,)]


def test_second_daemon_on_one_sqlite_file_refuses(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    env = daemon_env(sqlite_url)
    first = start_daemon(tmp_path, env, name="first")
    try:
        wait_for(lambda: first.events("start"))
        second = start_daemon(tmp_path, env, name="second")
        code = second.proc.wait(30)
        err = second.log_path.read_text().strip().splitlines()
        assert first.proc.poll() is None  # the first one is unaffected
    finally:
        assert first.stop() == 0
    assert code != 0
    assert len(err) == 1, err
    assert err[0].startswith("error: another newsfold daemon is already running on ")
    assert "SQLite allows one writer" in err[0]


def test_health_ready_and_metrics(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    base = [(f"m{i}", f"Market story {i}", words(40 + i)) for i in range(3)]
    feed_server.route("/one.xml", Static(rss("one", base)))
    # The second outlet carries the same first story word for word: an exact copy.
    feed_server.route("/two.xml", Static(rss("two", [base[0], ("x1", "Other", words(77))])))
    feed_server.route("/gone.xml", lambda request: Reply(500, b"down"))
    env = daemon_env(sqlite_url, schedule__min_interval_s=1)
    urls = [feed_server.url(p) for p in ("/one.xml", "/two.xml", "/gone.xml")]
    daemon = start_daemon(tmp_path, env, feeds=[(u, 3600) for u in urls], http=True)
    try:
        assert daemon.http
        wait_for(lambda: _answers(f"{daemon.http}/healthz"))
        wait_for(lambda: get(f"{daemon.http}/readyz")[0] == 200)
        wait_for(lambda: len(daemon.events("fetch")) >= 3)
        status, body = get(f"{daemon.http}/readyz")
        assert (status, json.loads(body)["database"]) == (200, "ok")
        status, body = get(f"{daemon.http}/metrics")
        assert get(f"{daemon.http}/nope")[0] == 404
    finally:
        assert daemon.stop() == 0
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, kind in EXPECTED_METRICS.items():
        assert families[name].type == kind, name
    value = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert value[("newsfold_fetches_total", (("outcome", "ok"),))] == 2
    assert value[("newsfold_fetches_total", (("outcome", "error"),))] >= 1
    assert value[("newsfold_articles_ingested_total", ())] == 5
    assert value[("newsfold_duplicates_total", (("tier", "exact"),))] == 1
    assert value[("newsfold_clusters_total", (("event", "created"), ("level", "copies")))] == 4
    assert value[("newsfold_clusters_total", (("event", "extended"), ("level", "copies")))] == 1
    assert value[("newsfold_feeds_erroring", ())] == 1
    assert value[("newsfold_fetch_duration_seconds_count", ())] >= 3
    assert ("newsfold_poll_lag_seconds", ()) in value


def _answers(url: str) -> bool:
    try:
        return get(url, timeout=1)[0] == 200
    except OSError:
        return False


def test_once_with_nothing_due_says_when_the_next_feed_is(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    """``run --once`` polls what is due; when nothing is, it says so in one line, exit 0."""
    env = daemon_env(database_url)
    feed_server.route("/a.xml", Static(rss("alpha", [("a1", "One", words(1))])))
    feeds = [(feed_server.url("/a.xml"), 3600)]

    def once(name: str, *, with_feeds: bool = True) -> list[dict[str, object]]:
        daemon = start_daemon(
            tmp_path, env, feeds=feeds if with_feeds else [], extra=["--once"], name=name
        )
        assert daemon.proc.wait(60) == 0, daemon.lines()
        return daemon.events()

    assert [r["msg"] for r in once("empty", with_feeds=False) if r.get("event") == "idle"] == [
        "nothing to poll: no feed is enabled"
    ]
    first = once("first")
    assert [r for r in first if r.get("event") == "fetch"] and not [
        r for r in first if r.get("event") == "idle"
    ]
    (due,) = sql(database_url, "SELECT next_fetch_at FROM feeds")[0]
    due = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))  # SQLite: text
    when = due.replace(tzinfo=UTC) if due.tzinfo is None else due.astimezone(UTC)
    second = once("second")
    assert not [r for r in second if r.get("event") == "fetch"]
    (idle,) = [r for r in second if r.get("event") == "idle"]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")  # to the second: a line for people
    assert idle["next_due"] == stamp, idle
    assert re.fullmatch(
        rf"nothing was due; the next feed is due at {stamp} \(in (59m|1h)\)", str(idle["msg"])
    ), idle
    assert feed_server.hits("/a.xml") == 1
