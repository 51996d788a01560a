"""Daemons against the real PostgreSQL: scale-out safety, lease expiry, readiness on a lost database.

Two ``newsfold run`` subprocesses share 40 local feeds: each feed must be fetched
once (counted at the server), no article stored twice, and the copy/story
clusters must be exactly those one daemon builds from the same feeds.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from newsfold.storage import Storage
from tests.conftest import SHARED, _postgres_schema_url
from tests.e2e.test_daemon import (
    daemon_env,
    free_port,
    get,
    rss,
    sql,
    start_daemon,
    wait_for,
)
from tests.support.server import Gated, Stall, Static

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.server import FeedServer

pytestmark = pytest.mark.timeout(180)

N_FEEDS = 40


def _stories() -> list[tuple[str, str]]:
    """One real article per ECB+ topic (distinct events): (title, text)."""
    seen: set[str] = set()
    out = []
    with (SHARED / "data" / "dedup-dev.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["topic"] not in seen and len(doc["text"]) > 600:
                seen.add(doc["topic"])
                out.append((doc["title"], doc["text"]))
    return out


def _serve_feeds(server: FeedServer) -> list[str]:
    """40 outlets, three stories each; odd outlets add a dateline (near copies)."""
    stories = _stories()
    n = len(stories)
    when = datetime.now(UTC) - timedelta(minutes=10)
    urls = []
    for i in range(N_FEEDS):
        picks = sorted({i % n, (i * 7 + 3) % n, (i * 11 + 5) % n})
        items = []
        for k in picks:
            title, text = stories[k]
            body = text if i % 2 == 0 else f"GENEVA (Wire {i}) — {text}"
            items.append((f"o{i}-s{k}", title, body))
        # Every outlet dates story k alike, so the story windows agree across outlets.
        doc = rss(f"outlet{i}", items, when=when)
        path = f"/outlet{i}.xml"
        server.route(path, Gated(Static(doc), hold_s=0.1))
        urls.append(server.url(path))
    return urls


def _add_feeds(database_url: str, urls: list[str]) -> None:
    storage = Storage(database_url)
    try:
        storage.upgrade()
        for url in urls:
            storage.add_feed(url, now=datetime.now(UTC), interval_s=3600)
    finally:
        storage.close()


def _partition(database_url: str, level: str) -> set[frozenset[str]]:
    """Clusters as sets of 'outlet path#entry key' (ids differ between databases)."""
    rows = sql(
        database_url,
        "SELECT m.cluster_id, f.url, a.entry_key FROM memberships m "
        "JOIN articles a ON a.id = m.article_id JOIN feeds f ON f.id = a.feed_id "
        f"WHERE m.level = '{level}'",
    )
    groups: dict[object, set[str]] = {}
    for cluster, url, key in rows:
        groups.setdefault(cluster, set()).add(f"{str(url).rsplit('/', 1)[-1]}#{key}")
    return {frozenset(g) for g in groups.values()}


@pytest.fixture
def reference_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def test_two_daemons_share_feeds_without_duplicates(
    feed_server: FeedServer, tmp_path: Path, postgres_url: str, reference_url: str
) -> None:
    urls = _serve_feeds(feed_server)
    settings = {"fetch__concurrency": 4}  # claims of 16 feeds: both workers get a share

    # Reference: one daemon, one cycle over all feeds.
    _add_feeds(reference_url, urls)
    single = start_daemon(tmp_path, daemon_env(reference_url), extra=["--once"], name="single")
    assert single.proc.wait(120) == 0
    hits_before = {p: feed_server.hits(p) for p in (f"/outlet{i}.xml" for i in range(N_FEEDS))}
    assert set(hits_before.values()) == {1}

    env = daemon_env(postgres_url, **settings)
    _add_feeds(postgres_url, [])  # schema first, so both daemons start on a migrated database
    a = start_daemon(tmp_path, env, name="a")
    b = start_daemon(tmp_path, env, name="b")
    try:
        wait_for(lambda: a.events("start") and b.events("start"), timeout=60)
        _add_feeds(postgres_url, urls)  # feeds appear while both run: picked up at the next tick
        done = "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL"
        wait_for(lambda: sql(postgres_url, done) == [(N_FEEDS,)], timeout=120, every=0.2)
        time.sleep(1.0)  # several more ticks of both workers: nothing may be fetched again
    finally:
        codes = (a.stop(), b.stop())
    assert codes == (0, 0)

    hits = {p: feed_server.hits(p) - n for p, n in hits_before.items()}
    assert hits == dict.fromkeys(hits_before, 1)
    per_worker = [len(d.events("fetch")) for d in (a, b)]
    assert sum(per_worker) == N_FEEDS
    assert min(per_worker) > 0, per_worker  # the work really was shared

    total, distinct = sql(
        postgres_url,
        "SELECT count(*), count(DISTINCT (feed_id, entry_key)) FROM articles",
    )[0]
    expected = sql(reference_url, "SELECT count(*) FROM articles")[0][0]
    assert total == distinct == expected
    for level in ("copies", "stories"):
        assert _partition(postgres_url, level) == _partition(reference_url, level), level
    assert sql(postgres_url, "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL") == [(0,)]


def test_crashed_worker_lease_expires_and_feed_is_reclaimed(
    feed_server: FeedServer, tmp_path: Path, postgres_url: str
) -> None:
    doc = rss("lease", [("l1", "Lease story", "Some text about the harbour. " * 20)])
    feed_server.route("/lease.xml", Stall(30))
    _add_feeds(postgres_url, [feed_server.url("/lease.xml")])
    env = daemon_env(postgres_url, daemon__lease_s=2)
    crashed = start_daemon(tmp_path, env, name="crashed")
    try:
        wait_for(lambda: feed_server.hits("/lease.xml"), timeout=60)
        crashed.proc.send_signal(signal.SIGKILL)  # no chance to release its lease
        crashed.proc.wait(10)
    finally:
        crashed.kill()
    owner = sql(postgres_url, "SELECT lease_owner FROM feeds")[0][0]
    assert owner is not None and f":{crashed.proc.pid}:" in str(owner)

    feed_server.route("/lease.xml", Static(doc))
    survivor = start_daemon(tmp_path, env, name="survivor")
    try:
        wait_for(lambda: survivor.events("fetch"), timeout=60)
    finally:
        assert survivor.stop() == 0
    assert feed_server.hits("/lease.xml") == 2
    assert sql(postgres_url, "SELECT count(*) FROM articles") == [(1,)]


class TcpProxy:
    """Forward a local port to PostgreSQL; ``stop()`` makes the database unreachable for real."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target, self.port = target, port
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._socks += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the kernel would go on accepting connections for it.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._socks.clear()


def test_readyz_follows_database_reachability(
    feed_server: FeedServer, tmp_path: Path, postgres_url: str
) -> None:
    _add_feeds(postgres_url, [])
    proxy = TcpProxy(("127.0.0.1", 5432), free_port()).start()
    via_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert via_proxy != postgres_url
    daemon = start_daemon(tmp_path, daemon_env(via_proxy), http=True)
    try:
        ready = f"{daemon.http}/readyz"
        wait_for(lambda: _status(ready) == 200, timeout=60)
        proxy.stop()
        status, body = get(ready, timeout=30)
        assert status == 503
        assert json.loads(body)["database"].startswith("unreachable")
        assert get(f"{daemon.http}/healthz")[0] == 200  # alive, just not ready
        proxy.start()
        wait_for(lambda: _status(ready) == 200, timeout=30)
    finally:
        proxy.stop()
        code = daemon.stop()
    assert code == 0


def _status(url: str) -> int:
    try:
        return get(url, timeout=5)[0]
    except OSError:
        return 0
