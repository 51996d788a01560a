"""Database outages during a poll: PostgreSQL going away (a TCP proxy that drops every
connection and refuses new ones, or ``pg_terminate_backend`` from an admin connection)
and SQLite ``database is locked``.

Each outage starts from the feed server's handler, i.e. in the middle of a poll,
after the feed list was read and while the document is being fetched. Then: the
feed's failure is a value and is logged (never an exception out of ``poll``),
nothing stored is lost, and the next poll after the database returns stores
what the failed one could not.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text

from newsfold.errors import StorageError
from newsfold.pipeline.service import Service
from tests.conftest import POSTGRES_URL
from tests.support.hostile import item, rss
from tests.support.server import Reply, Request

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from newsfold.config import Settings
    from tests.support.server import FeedServer


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (drop all, refuse new) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()  # the database is "down": refuse at once
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


class Growing:
    """A feed that gains two items per request; ``on_request`` runs before it answers."""

    def __init__(self) -> None:
        self.count = 0
        self.on_request: Callable[[], None] | None = None

    def __call__(self, request: Request) -> Reply:
        if self.on_request is not None:
            hook, self.on_request = self.on_request, None
            hook()
        self.count += 2
        items = [
            item(
                f"g{i}",
                f"Story number {i} about topic {i * 7}",
                f"<p>Distinct paragraph {i}: " + f"word{i} " * 40 + "</p>",
            )
            for i in range(self.count)
        ]
        return Reply(200, rss(items, title="Growing"), {"Content-Type": "application/rss+xml"})


@pytest.fixture
def proxied_pg(postgres_url: str) -> Iterator[tuple[str, Proxy]]:
    parts = urlsplit(postgres_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    yield urlunsplit(parts._replace(netloc=netloc)), proxy
    proxy.close()


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM articles")).scalar_one())
    finally:
        engine.dispose()


def _settings(make_settings: Callable[..., Settings], url: str) -> Settings:
    return make_settings(url, fetch={"min_host_delay_s": 0.0, "read_timeout_s": 5.0})


def test_postgres_unreachable_during_poll(
    feed_server: FeedServer,
    proxied_pg: tuple[str, Proxy],
    postgres_url: str,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, proxy = proxied_pg
    feed = Growing()
    feed_server.route("/g.xml", feed)
    service = Service.open(_settings(make_settings, url))
    service.add_feed(feed_server.url("/g.xml"))
    assert service.poll().new_articles == 2

    feed.on_request = proxy.cut  # the database goes away mid-poll
    caplog.set_level(logging.WARNING)
    t0 = time.perf_counter()
    summary = service.poll()
    assert time.perf_counter() - t0 < 30
    (result,) = summary.feeds
    assert result.status == "error" and result.new_articles == 0
    assert result.error and "database" in result.error.lower(), result.error
    logged = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "/g.xml" in r.getMessage()
    ]
    assert logged, "the failure is logged with the feed"
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"
    with pytest.raises(StorageError):  # what /readyz reports while the database is away
        service.storage.check()
    assert _count(postgres_url) == 2  # nothing stored was lost

    proxy.restore()
    service.storage.check()
    again = service.poll()
    assert again.feeds[0].status == "ok", again.feeds[0].error
    assert _count(postgres_url) == 6  # the 2 stored + 2 missed + 2 new: caught up
    service.close()


def test_postgres_backends_terminated_during_poll(
    feed_server: FeedServer,
    postgres_url: str,
    make_settings: Callable[..., Settings],
) -> None:
    app = f"nf_outage_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={app}"
    feed = Growing()
    feed_server.route("/g.xml", feed)
    service = Service.open(_settings(make_settings, url))
    service.add_feed(feed_server.url("/g.xml"))
    assert service.poll().new_articles == 2
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    def terminate() -> None:
        with admin.connect() as conn:
            killed.extend(
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"
                    ),
                    {"a": app},
                )
            )

    feed.on_request = terminate
    summary = service.poll()
    admin.dispose()
    assert killed, "the service's connections were terminated"
    # The pool's pre-ping replaces dead connections: the poll either succeeds or records
    # a database error; either way nothing is lost and the next poll catches up.
    assert summary.feeds[0].status in ("ok", "error"), summary.feeds[0]
    service.poll()
    assert _count(postgres_url) == 6
    service.close()


def test_sqlite_locked_is_waited_out(
    feed_server: FeedServer, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = tmp_path / "locked.db"
    feed = Growing()
    feed_server.route("/g.xml", feed)
    service = Service.open(_settings(make_settings, f"sqlite:///{path}"))
    service.add_feed(feed_server.url("/g.xml"))
    assert service.poll().new_articles == 2
    held = threading.Event()
    hold_s = 1.5

    def hold_write_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # another writer holds the database
        held.set()
        time.sleep(hold_s)
        conn.execute("COMMIT")
        conn.close()

    def start() -> None:
        threading.Thread(target=hold_write_lock, daemon=True).start()
        held.wait(5)

    feed.on_request = start
    t0 = time.perf_counter()
    summary = service.poll()
    assert summary.feeds[0].status == "ok", summary.feeds[0].error
    assert summary.new_articles == 2
    assert time.perf_counter() - t0 >= hold_s * 0.5  # it did wait for the other writer
    assert _count(f"sqlite:///{path}") == 4
    service.close()
