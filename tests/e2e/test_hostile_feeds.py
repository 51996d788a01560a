"""Hostile and broken feeds through the whole pipeline, over the real local server.

fetch (127.0.0.1) → parse → normalise → dedup → store, on SQLite and PostgreSQL.
For every input: no crash, no hang past the (short) timeouts, bounded memory,
a clear error on the feed when the document is unusable, and the good entries
of a partly broken feed still stored. XXE never reads the secret file nor
reaches the second server; stored text carries no script.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import MetaData, select

from newsfold.normalise import normalise_entry
from newsfold.pipeline.service import Service
from newsfold.types import FeedSource, RawEntry
from tests.conftest import SHARED
from tests.support import hostile as h
from tests.support.server import Endless, FeedServer, Handler, Stall, Static, Trickle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from newsfold.config import Settings

FETCH = {
    "connect_timeout_s": 5.0,  # the test server has a small listen backlog
    "read_timeout_s": 1.0,
    "total_timeout_s": 3.0,
    "max_bytes": 8 * 1024 * 1024,
    "min_host_delay_s": 0.0,
    "per_host": 8,
    "concurrency": 8,
}
SECRET = "TOP-SECRET-7f3a9c"
# Peak RSS growth allowed for one hostile feed through the whole pipeline.
PEAK_LIMIT_MB = 128


def _settings(make_settings: Callable[..., Settings], url: str, **fetch: Any) -> Settings:
    return make_settings(url, fetch={**FETCH, **fetch})


def dump(service: Service) -> str:
    """Every stored value of every table, as one string (for needle searches)."""
    meta = MetaData()
    meta.reflect(service.storage.engine)
    parts: list[str] = []
    with service.storage.engine.connect() as conn:
        for table in meta.sorted_tables:
            parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    return "\n".join(parts)


def guids(service: Service, feed_id: int) -> set[str]:
    articles = service.storage.list_articles(feed_id=feed_id, limit=0)
    return {a.entry_key.removeprefix("guid:") for a in articles}


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture
def attacker() -> Iterator[FeedServer]:
    """A second server that XXE payloads point at: it must never see a request."""
    with FeedServer() as server:
        server.route("/x", Static(f'<!ENTITY leak "{SECRET}">'.encode(), content_type="text/plain"))
        yield server


def hostile_routes(server: FeedServer, secret: Path, attacker: FeedServer) -> dict[str, bool]:
    """Mount every hostile input; returns path → whether the feed as a whole must fail."""
    expect: dict[str, bool] = {}
    for name, (factory, fails) in h.DOCUMENTS.items():
        if name == "huge_entry":  # costs seconds; measured alone in test_bomb_memory_is_bounded
            continue
        server.route(f"/{name}", Static(factory(), content_type="application/xml"))  # type: ignore[operator]
        expect[f"/{name}"] = fails
    docs = {
        "/xxe_file": h.xxe_local_file(str(secret)),
        "/xxe_net": h.xxe_network(attacker.url("/x")),
        "/xinclude": h.xinclude(str(secret)),
        "/sql_titles": h.sql_titles(),
    }
    for path, body in docs.items():
        server.route(path, Static(body, content_type="application/rss+xml"))
        expect[path] = False
    server.route(
        "/gzip_bomb",
        Static(
            h.gzip_bomb(), content_type="application/rss+xml", headers={"Content-Encoding": "gzip"}
        ),
    )
    server.route("/endless", Endless())
    server.route("/slowloris", Trickle(b"<", every_s=0.05, count=2000))
    server.route("/stall", Stall(30.0))
    server.route(
        "/not_a_feed", Static(b"<html><body>hello</body></html>", content_type="text/html")
    )
    server.route("/binary", Static(bytes(range(256)) * 64, content_type="application/octet-stream"))
    expect.update(
        dict.fromkeys(
            ["/gzip_bomb", "/endless", "/slowloris", "/stall", "/not_a_feed", "/binary"], True
        )
    )
    return expect


# Partly broken documents whose two good entries must be stored.
PARTLY_BROKEN = [
    "/billion_laughs",
    "/invalid_utf8",
    "/nul_bytes",
    "/nested_html",
    "/script_links",
    "/absurd_dates",
    "/json_feed_mixed",
    "/xxe_file",
    "/xxe_net",
]


def test_hostile_inputs_whole_pipeline(
    feed_server: FeedServer,
    attacker: FeedServer,
    secret_file: Path,
    database_url: str,
    make_settings: Callable[..., Settings],
) -> None:
    expect = hostile_routes(feed_server, secret_file, attacker)
    service = Service.open(_settings(make_settings, database_url))
    ids = {path: service.add_feed(feed_server.url(path)).id for path in expect}
    t0 = time.perf_counter()
    summary = service.poll()
    elapsed = time.perf_counter() - t0
    # Everything in one concurrent poll: the slowest input is bounded by total_timeout_s.
    assert elapsed < 45, elapsed
    by_id = {f.feed_id: f for f in summary.feeds}
    feeds = {f.id: f for f in service.storage.list_feeds()}
    for path, fails in expect.items():
        result, info = by_id[ids[path]], feeds[ids[path]]
        assert "internal error" not in (result.error or ""), (path, result.error)
        if fails:
            assert result.status == "error", (path, result)
            assert info.last_error and info.error_count == 1, (path, info)
        else:
            assert result.status == "ok", (path, result.error)
    for path in PARTLY_BROKEN:
        assert {"good-0", "good-1"} <= guids(service, ids[path]), path

    # Bombs and endless bodies are cut at max_bytes with a message naming the limit.
    for path in ("/gzip_bomb", "/endless"):
        assert "byte" in (feeds[ids[path]].last_error or "").lower(), feeds[ids[path]].last_error

    # XXE: neither the secret file nor the attacker's server was read.
    stored = dump(service)
    assert SECRET not in stored
    assert attacker.requests == []
    # Stored text is data: scripts, handlers and script URLs never survive.
    for article in service.storage.list_articles(feed_id=ids["/script_links"], limit=0):
        full = service.storage.get_article(article.id)
        for value in (full.title, full.summary, full.text, full.url or ""):
            assert not any(m in value.lower() for m in h.SCRIPT_MARKERS), value
        assert full.url is None or full.url.startswith(("http://", "https://"))
    # SQL-looking titles are stored and read back unchanged; nothing was dropped.
    titles = {a.title for a in service.storage.list_articles(feed_id=ids["/sql_titles"], limit=0)}
    assert titles == set(h.SQL_TITLES)
    assert service.storage.stats().feeds == len(expect)
    service.close()


BOMBS: dict[str, tuple[Callable[[], Handler], str]] = {
    "gzip_bomb": (lambda: Static(h.gzip_bomb(), headers={"Content-Encoding": "gzip"}), "error"),
    "endless": (Endless, "error"),
    "billion_laughs": (lambda: Static(h.billion_laughs()), "ok"),
    "quadratic_blowup": (lambda: Static(h.quadratic_blowup()), "ok"),
    "huge_entry": (lambda: Static(h.huge_entry()), "ok"),
    "many_entries": (lambda: Static(h.many_entries()), "ok"),
}


def _poll_in_child(service: Service) -> tuple[str, int, float, float, str]:
    """Poll in a forked child; return its outcome, new articles, seconds and peak RSS growth.

    The child resets its high-water mark (``/proc/self/clear_refs``), so growth of
    VmHWM over VmRSS at the start is the pipeline's own peak, C allocations (expat,
    lexbor) included.
    """
    _warm_up(service)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: poll, report, and leave without running pytest's teardown
        try:
            with Path("/proc/self/clear_refs").open("w") as fh:
                fh.write("5")
            base_kb = _status_kb("VmRSS")
            t0 = time.perf_counter()
            f = service.poll().feeds[0]
            grown = _status_kb("VmHWM") - base_kb
            line = f"{f.status}|{f.new_articles}|{time.perf_counter() - t0}|{grown}|{f.error}"
            os.write(write, line.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        status, new, seconds, grown_kb, error = fh.read().split("|", 4)
    os.waitpid(pid, 0)
    return status, int(new), float(seconds), int(grown_kb) / 1024, error


def _warm_up(service: Service) -> None:
    """Load the language model (~100 MiB, once per process) before measuring."""
    entry = RawEntry(
        guid="w", link=None, title="Warm up", summary_html="<p>" + "The news today. " * 20
    )
    normalise_entry(
        entry,
        FeedSource(0, "https://example.org/"),
        fetched_at=datetime.now(UTC),
        settings=service.settings.normalise,
    )


def _status_kb(key: str) -> int:
    with Path("/proc/self/status").open() as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":"))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_memory_is_bounded(
    name: str,
    feed_server: FeedServer,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    handler, outcome = BOMBS[name]
    feed_server.route("/bomb", handler())
    service = Service.open(_settings(make_settings, f"sqlite:///{tmp_path / 'bomb.db'}"))
    feed = service.add_feed(feed_server.url("/bomb"))
    service.storage.close()  # the child opens its own connections
    status, new, seconds, peak_mb, error = _poll_in_child(service)
    record_property("peak_rss_mb", round(peak_mb, 1))
    print(f"\nBOMB {name}: peak RSS +{peak_mb:.1f} MiB in {seconds:.2f}s -> {status}, {new} new")
    assert status == outcome, error
    assert peak_mb < PEAK_LIMIT_MB
    assert seconds < 30
    info = service.storage.get_feed(feed.id)
    if outcome == "error":
        assert info.last_error and "byte" in info.last_error.lower(), info.last_error
    elif name == "many_entries":
        assert new == 500  # capped at fetch.max_entries, not hung, not dropped
    else:
        assert {"good-0", "good-1"} <= guids(service, feed.id) or name == "quadratic_blowup"
    service.close()


# --- the shared corpus of real-world malformed and edge-case feeds -----------------------

FEEDS_DIR = SHARED / "data" / "feeds"


def corpus() -> list[dict[str, str]]:
    lines = (FEEDS_DIR / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:] if line]


def test_corpus_whole_pipeline(
    feed_server: FeedServer, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    rows = corpus()
    assert len(rows) == 304
    paths = {}
    for i, row in enumerate(rows):
        body = (FEEDS_DIR / row["file"]).read_bytes()
        ctype = "application/json" if row["format"] == "jsonfeed" else "application/xml"
        paths[row["file"]] = f"/corpus/{i}"
        feed_server.route(f"/corpus/{i}", Static(body, content_type=ctype))
    service = Service.open(_settings(make_settings, database_url))
    ids = {name: service.add_feed(feed_server.url(path)).id for name, path in paths.items()}
    t0 = time.perf_counter()
    summary = service.poll()
    elapsed = time.perf_counter() - t0
    by_id = {f.feed_id: f for f in summary.feeds}
    feeds = {f.id: f for f in service.storage.list_feeds()}
    outcomes = {"ok": 0, "error": 0}
    for row in rows:
        result, info = by_id[ids[row["file"]]], feeds[ids[row["file"]]]
        assert "internal error" not in (result.error or ""), (row["file"], result.error)
        assert result.status in outcomes, (row["file"], result)
        outcomes[result.status] += 1
        if result.status == "error":
            # A clear, recorded reason, and the feed is retried later rather than dropped.
            assert info.last_error and info.error_count == 1 and not info.disabled_reason, row
        elif row["malformed"] == "no" and row["format"] in ("rss2.0", "atom1.0", "jsonfeed"):
            assert info.error_count == 0, row
    stats = service.storage.stats()
    print(
        f"\nCORPUS {database_url.split(':', maxsplit=1)[0]}: {len(rows)} files in {elapsed:.1f}s: "
        f"{outcomes['ok']} ok, {outcomes['error']} refused with a recorded error, "
        f"{stats.articles} articles stored"
    )
    assert elapsed < 60
    assert stats.articles > 0
    service.close()
