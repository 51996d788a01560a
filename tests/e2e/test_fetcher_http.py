"""The fetcher against a real HTTP server on 127.0.0.1 with misbehaving endpoints.

Each test drives the fetch and then the pure health functions with an injected
clock, and asserts the feed's state afterwards: errors counted, next poll in
range, URL changed only for permanent redirects. Nothing sleeps for back-off.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import random
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from newsfold.config import FetchSettings, ScheduleSettings
from newsfold.errors import BlockedURLError, FetchError
from newsfold.fetch import Fetcher, HTMLPageError, fetch_sync
from newsfold.fetch.guard import GuardedTransport
from newsfold.pipeline.policy import (
    after_error,
    after_not_modified,
    after_success,
    new_health,
    permanent_redirect_target,
    status_of,
)
from newsfold.types import ErrorKind, FeedHealth, FeedSource, FetchResult
from tests.support.server import (
    Endless,
    FeedServer,
    Gated,
    Redirect,
    Reply,
    Sequence,
    Stall,
    Static,
    Trickle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Local</title>'
    b"<item><title>One</title><link>http://example.com/1</link></item></channel></rss>"
)
FAST = FetchSettings(min_host_delay_s=0, total_timeout_s=5, connect_timeout_s=2, read_timeout_s=2)
SCHED = ScheduleSettings()
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        s.route("/feed.xml", Static(FEED))
        yield s


def run_fetch(
    feeds: list[FeedSource],
    settings: FetchSettings = FAST,
    **kw: object,
) -> list[FetchResult | FetchError]:
    """Fetch all feeds concurrently in one run; errors come back as values."""

    async def go() -> list[FetchResult | FetchError]:
        async with Fetcher(settings, allow_private_networks=True, **kw) as f:  # type: ignore[arg-type]
            out = await asyncio.gather(*(f.fetch(feed) for feed in feeds), return_exceptions=True)
        for item in out:
            if not isinstance(item, FetchResult | FetchError):
                raise item  # anything else is a bug
        return out  # type: ignore[return-value]

    return asyncio.run(go())


def one(
    server: FeedServer, path: str, settings: FetchSettings = FAST, **feed: object
) -> FetchResult | FetchError:
    return run_fetch([FeedSource(1, server.url(path), **feed)], settings)[0]  # type: ignore[arg-type]


def health() -> FeedHealth:
    return new_health(now=NOW, settings=SCHED)


def succeed(h: FeedHealth, result: FetchResult, now: datetime = NOW) -> FeedHealth:
    return after_success(
        h,
        now=now,
        settings=SCHED,
        result=result,
        ttl_minutes=None,
        update_period_minutes=None,
        entry_times=[now - timedelta(hours=i) for i in range(10)],
        configured_interval_s=None,
        rng=random.Random(7),
    )


# --- conditional GET -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "validator"),
    [
        (Static(FEED, last_modified=None), "etag"),
        (Static(FEED, etag=False), "last_modified"),
        (Static(FEED), "etag"),
    ],
)
def test_conditional_get_then_304(server: FeedServer, handler: Static, validator: str) -> None:
    path = f"/cond-{validator}-{id(handler)}"
    server.route(path, handler)
    first = one(server, path)
    assert isinstance(first, FetchResult) and first.content == FEED and first.status == 200
    second = one(server, path, etag=first.etag, last_modified=first.last_modified)
    assert isinstance(second, FetchResult)
    assert second.not_modified and second.status == 304 and second.content == b""
    assert getattr(second, validator) == getattr(first, validator)
    sent = server.requests[-1].headers
    if validator == "etag":
        assert sent["if-none-match"] == first.etag
    else:
        assert sent["if-modified-since"] == first.last_modified and "if-none-match" not in sent
    # The feed state after a 304: healthy, next poll one interval (± jitter) away.
    h = after_not_modified(
        succeed(health(), first), now=NOW, settings=SCHED, result=second, rng=random.Random(1)
    )
    assert h.consecutive_errors == 0
    assert 1800 * 0.9 <= (h.next_fetch_at - NOW).total_seconds() <= 1800 * 1.1


def test_identical_body_has_identical_hash(server: FeedServer) -> None:
    server.route("/nocache", Static(FEED, etag=False, last_modified=None))
    a, b = one(server, "/nocache"), one(server, "/nocache")
    assert isinstance(a, FetchResult) and isinstance(b, FetchResult)
    assert not b.not_modified and a.body_hash == b.body_hash  # → the service skips parsing


# --- redirects -------------------------------------------------------------------------------


def test_only_consistent_permanent_redirects_move_the_subscription(server: FeedServer) -> None:
    server.route("/perm-a", Redirect("/perm-b", 301))
    server.route("/perm-b", Redirect("/feed.xml", 308))
    server.route("/temp-a", Redirect("/perm-b", 302))
    server.route("/temp-b", Redirect("/feed.xml", 307))
    states = {"/perm-a": health(), "/temp-a": health(), "/temp-b": health()}
    urls = {p: server.url(p) for p in states}
    for _ in range(2):  # two polls
        for path in list(states):
            result = one(server, path)
            assert isinstance(result, FetchResult) and result.content == FEED
            assert result.url == server.url("/feed.xml")
            states[path], new_url = permanent_redirect_target(states[path], result)
            if new_url:
                urls[path] = new_url
    assert urls["/perm-a"] == server.url("/feed.xml")  # 301 → 308 twice: moved
    assert urls["/temp-a"] == server.url("/temp-a")  # 302 then 308: kept
    assert urls["/temp-b"] == server.url("/temp-b")  # 307: kept


def test_redirect_loop_is_an_error(server: FeedServer) -> None:
    server.route("/loop-a", Redirect("/loop-b", 302))
    server.route("/loop-b", Redirect("/loop-a", 301))
    err = one(server, "/loop-a")
    assert isinstance(err, FetchError) and "redirect loop" in err.message
    h = after_error(health(), err, now=NOW, settings=SCHED, rng=random.Random(0))
    assert h.consecutive_errors == 1 and h.last_error_kind is ErrorKind.PERMANENT
    assert h.disabled_reason is None
    assert server.hits("/loop-a") == 1 and server.hits("/loop-b") == 1  # stopped at once


# --- statuses --------------------------------------------------------------------------------


def test_gone_disables_the_feed(server: FeedServer) -> None:
    server.route("/gone", lambda r: Reply(410, b"gone"))
    err = one(server, "/gone")
    assert isinstance(err, FetchError) and err.kind is ErrorKind.GONE and err.status == 410
    h = after_error(health(), err, now=NOW, settings=SCHED, rng=random.Random(0))
    assert status_of(h, now=NOW, settings=SCHED).startswith("disabled: gone since 2024-06-01")
    assert "HTTP 410" in (h.disabled_reason or "")


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_s"),
    [(429, "3600", 3600.0), (503, "120", 300.0)],  # a short Retry-After never beats back-off
)
def test_retry_after_sets_next_poll(
    server: FeedServer, status: int, retry_after: str, expected_s: float
) -> None:
    path = f"/busy-{status}"
    server.route(path, lambda r: Reply(status, b"slow down", {"Retry-After": retry_after}))
    err = one(server, path)
    assert isinstance(err, FetchError) and err.retry_after_s == float(retry_after)
    h = after_error(health(), err, now=NOW, settings=SCHED, rng=random.Random(0))
    delay = (h.next_fetch_at - NOW).total_seconds()
    assert expected_s * 0.9 <= delay <= expected_s * 1.1
    assert h.consecutive_errors == 1 and h.last_error_kind is ErrorKind.TRANSIENT


def test_500_storm_then_recovery(server: FeedServer) -> None:
    storm = Sequence(*[Reply(500, b"oops")] * 4, Static(FEED))
    server.route("/storm", storm)
    h, now, delays = health(), NOW, []
    for _ in range(4):
        err = one(server, "/storm")
        assert isinstance(err, FetchError) and err.status == 500 and err.kind is ErrorKind.TRANSIENT
        h = after_error(h, err, now=now, settings=SCHED, rng=random.Random(len(delays)))
        delays.append((h.next_fetch_at - now).total_seconds())
        now = h.next_fetch_at  # simulated clock
    assert h.consecutive_errors == 4 and h.error_since == NOW
    assert status_of(h, now=now, settings=SCHED).startswith("erroring since 2024-06-01 12:00")
    assert all(b > a for a, b in itertools.pairwise(delays))  # growing back-off
    assert 300 * 0.9 <= delays[0] <= 330 and 2400 * 0.9 <= delays[3] <= 2640
    ok = one(server, "/storm")
    assert isinstance(ok, FetchResult) and ok.content == FEED
    h = succeed(h, ok, now)
    assert h.consecutive_errors == 0 and status_of(h, now=now, settings=SCHED) == "ok"
    assert storm.calls == 5


def test_404_is_a_soft_error_with_backoff(server: FeedServer) -> None:
    err = one(server, "/no-such-feed")
    assert isinstance(err, FetchError) and err.status == 404 and err.kind is ErrorKind.PERMANENT
    h = after_error(health(), err, now=NOW, settings=SCHED, rng=random.Random(0))
    assert h.disabled_reason is None and h.consecutive_errors == 1
    assert 1200 * 0.9 <= (h.next_fetch_at - NOW).total_seconds() <= 1200 * 1.1


# --- time limits -----------------------------------------------------------------------------


def test_slowloris_hits_the_total_timeout(server: FeedServer) -> None:
    # One byte every 50 ms never trips the 0.5 s read timeout; only the total limit stops it.
    server.route("/slowloris", Trickle(b"<", every_s=0.05, count=400))
    settings = FetchSettings(min_host_delay_s=0, total_timeout_s=1.0, read_timeout_s=0.5)
    t0 = time.monotonic()
    err = one(server, "/slowloris", settings)
    elapsed = time.monotonic() - t0
    assert isinstance(err, FetchError) and err.kind is ErrorKind.TRANSIENT
    assert "total timeout" in err.message and server.url("/slowloris") in err.message
    assert 0.9 <= elapsed < 4


def test_stalled_body_hits_the_read_timeout(server: FeedServer) -> None:
    server.route("/stall", Stall(3.0))
    settings = FetchSettings(min_host_delay_s=0, total_timeout_s=10, read_timeout_s=0.3)
    t0 = time.monotonic()
    err = one(server, "/stall", settings)
    assert isinstance(err, FetchError) and "timed out waiting for data" in err.message
    assert time.monotonic() - t0 < 2


def test_connection_refused_is_transient() -> None:
    with FeedServer() as dead:
        url = dead.url("/feed.xml")
    err = run_fetch([FeedSource(1, url)])[0]
    assert isinstance(err, FetchError) and err.kind is ErrorKind.TRANSIENT and url in err.message


# --- size limits -----------------------------------------------------------------------------

CAP = 1024 * 1024


def gzip_bomb(decompressed: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    parts = [c.compress(b"<rss>")]
    parts += [c.compress(zeros) for _ in range(decompressed >> 20)]
    return b"".join([*parts, c.flush()])


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(256 << 20)  # 256 MiB of zeros in ~250 KiB


def test_endless_body_stops_at_the_cap(server: FeedServer) -> None:
    server.route("/endless", Endless())
    err = one(server, "/endless", FetchSettings(min_host_delay_s=0, max_bytes=CAP))
    assert isinstance(err, FetchError) and err.kind is ErrorKind.PERMANENT
    assert "exceeds the 1,048,576-byte cap" in err.message


def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(server: FeedServer, bomb: bytes) -> None:
    assert len(bomb) < 300_000
    server.route("/bomb", lambda r: Reply(200, bomb, {"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        err = one(server, "/bomb", FetchSettings(min_host_delay_s=0, max_bytes=CAP))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(err, FetchError) and "decompressed body exceeds" in err.message
    # The body buffer is bounded by the cap; inflating whole chunks would reach ~64 MiB.
    assert peak < 4 * CAP, f"peak traced memory {peak:,} bytes"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_gzip_bomb_peak_rss_in_a_fresh_process(bomb: bytes, tmp_path: Path) -> None:
    """Peak RSS growth of a whole fetch of a 256 MiB bomb, default 10 MiB cap."""
    (tmp_path / "bomb.gz").write_bytes(bomb)
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from newsfold.config import FetchSettings
        from newsfold.fetch import Fetcher
        from newsfold.errors import FetchError
        from newsfold.types import FeedSource
        from tests.support.server import FeedServer, Reply
        bomb = Path({str(tmp_path / "bomb.gz")!r}).read_bytes()

        def peak_mib():
            # VmHWM is this process's own peak; ru_maxrss can carry the parent's across exec.
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024

        async def main(url):
            async with Fetcher(FetchSettings(min_host_delay_s=0), allow_private_networks=True) as f:
                try:
                    await f.fetch(FeedSource(1, url))
                except FetchError as e:
                    return e.message
            return "no error"

        with FeedServer() as s:
            s.route("/bomb", lambda r: Reply(200, bomb, {{"Content-Encoding": "gzip"}}))
            asyncio.run(main(s.url("/warm")))  # imports and first-use allocations
            before = peak_mib()
            message = asyncio.run(main(s.url("/bomb")))
            after = peak_mib()
        print(after - before, message)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split(maxsplit=1)
    growth_mib, message = int(out[0]), out[1]
    assert "decompressed body exceeds the 10,485,760-byte cap" in message
    # The 10 MiB body buffer plus slack; inflating whole network chunks grows by 100+ MiB.
    assert growth_mib < 32, f"peak RSS grew {growth_mib} MiB"


def test_declared_oversize_is_refused_without_reading(server: FeedServer) -> None:
    big = b"<rss>" + b"x" * (2 * CAP)
    server.route("/big", Static(big))
    err = one(server, "/big", FetchSettings(min_host_delay_s=0, max_bytes=CAP))
    assert isinstance(err, FetchError) and "2,097,157 bytes exceeds" in err.message


def test_gzip_feed_within_cap(server: FeedServer) -> None:
    server.route("/gz", lambda r: Reply(200, gzip.compress(FEED), {"Content-Encoding": "gzip"}))
    result = one(server, "/gz")
    assert isinstance(result, FetchResult) and result.content == FEED


# --- HTML pages ------------------------------------------------------------------------------


def test_html_page_offers_discovered_feeds(server: FeedServer) -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Blog</title>"
        b'<link rel="alternate" type="application/rss+xml" title="Posts" href="/feed.xml">'
        b'<link rel="alternate" type="application/atom+xml" href="atom.xml">'
        b"</head><body>Hello</body></html>"
    )
    server.route("/blog/", Static(page, content_type="text/html; charset=utf-8"))
    err = one(server, "/blog/")
    assert isinstance(err, HTMLPageError)
    assert [f.url for f in err.feeds] == [server.url("/feed.xml"), server.url("/blog/atom.xml")]
    assert err.message.startswith("this URL is an HTML page")
    # ``feeds add`` path: the sync helper returns the page so the CLI can offer the feeds.
    page_result = fetch_sync(server.url("/blog/"), FAST, allow_private_networks=True)
    assert page_result.content == page
    with pytest.raises(HTMLPageError):
        fetch_sync(server.url("/blog/"), FAST, allow_private_networks=True, as_feed=True)


# --- SSRF guard ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433"])
def test_private_addresses_refused_by_default(server: FeedServer, host: str) -> None:
    url = server.url("/feed.xml").replace("127.0.0.1", host)
    before = server.hits("/feed.xml")

    async def go() -> None:
        async with Fetcher(FAST) as f:  # allow_private_networks defaults to False
            await f.fetch(FeedSource(1, url))

    with pytest.raises(BlockedURLError) as info:
        asyncio.run(go())
    assert "loopback" in info.value.message and url in info.value.message
    assert server.hits("/feed.xml") == before  # refused before any connection
    with pytest.raises(BlockedURLError):
        fetch_sync(url, FAST)


def test_connects_to_the_address_it_checked(server: FeedServer) -> None:
    """The resolver's answer is what gets connected to; the name is never resolved again."""
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    port = server.url("/").split(":")[-1].rstrip("/")
    url = f"http://feed.invalid:{port}/feed.xml"  # .invalid never resolves through DNS
    result = run_fetch([FeedSource(1, url)], resolver=resolver)[0]
    assert isinstance(result, FetchResult) and result.content == FEED
    assert resolved == ["feed.invalid"]
    assert server.requests[-1].headers["host"] == f"feed.invalid:{port}"


def test_redirect_to_a_refused_address_is_checked_at_the_hop(server: FeedServer) -> None:
    """Every hop is resolved and checked: a redirect to an internal name is refused."""
    port = server.url("/").split(":")[-1].rstrip("/")
    server.route("/to-internal", Redirect(f"http://internal.invalid:{port}/feed.xml", 302))
    names = {"public.invalid": "127.0.0.1", "internal.invalid": "127.0.0.2"}

    async def resolver(host: str, port: int) -> list[str]:
        return [names[host]]

    def policy(address: str) -> str | None:  # pretend only 127.0.0.1 is public
        return None if address == "127.0.0.1" else "a private address"

    transport = GuardedTransport(
        allow_private_networks=False, limits=httpx.Limits(), resolver=resolver, policy=policy
    )
    err = run_fetch(
        [FeedSource(1, f"http://public.invalid:{port}/to-internal")], transport=transport
    )[0]
    assert isinstance(err, BlockedURLError)
    assert "refused host internal.invalid: it resolves to 127.0.0.2" in err.message


# --- politeness and isolation ----------------------------------------------------------------


def test_healthy_feeds_are_unaffected_by_bad_ones_in_the_same_run(
    server: FeedServer, bomb: bytes
) -> None:
    server.route("/b-500", lambda r: Reply(500, b"x"))
    server.route("/b-gone", lambda r: Reply(410, b"x"))
    server.route("/b-slow", Trickle(b"<", every_s=0.05, count=100))
    server.route("/b-bomb", lambda r: Reply(200, bomb, {"Content-Encoding": "gzip"}))
    server.route("/b-loop", Redirect("/b-loop", 301))
    bad = ["/b-500", "/b-gone", "/b-slow", "/b-bomb", "/b-loop", "/b-missing"]
    good = [f"/good-{i}" for i in range(6)]
    for path in good:
        server.route(path, Static(FEED + path.encode()))
    paths = [p for pair in zip(bad, good, strict=True) for p in pair]
    settings = FetchSettings(min_host_delay_s=0, total_timeout_s=1.5, max_bytes=CAP, per_host=4)
    results = run_fetch([FeedSource(i, server.url(p)) for i, p in enumerate(paths)], settings)
    by_path = dict(zip(paths, results, strict=True))
    for path in good:
        r = by_path[path]
        assert isinstance(r, FetchResult) and r.content == FEED + path.encode()
    assert all(isinstance(by_path[p], FetchError) for p in bad)


def test_per_host_limit_and_global_limit(server: FeedServer) -> None:
    gate = Gated(Static(FEED), hold_s=0.3)
    server.route("/gated", gate)
    feeds = [FeedSource(i, server.url("/gated")) for i in range(6)]
    results = run_fetch(feeds, FetchSettings(min_host_delay_s=0, per_host=2, concurrency=16))
    assert all(isinstance(r, FetchResult) for r in results)
    assert gate.max_in_flight == 2  # per-host limit (default 2) reached, never exceeded

    # Several host names (all 127.0.0.1 here): the global limit caps the total.
    gate2 = Gated(Static(FEED), hold_s=0.3)
    server.route("/gated2", gate2)
    port = server.url("/").split(":")[-1].rstrip("/")

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    feeds = [FeedSource(i, f"http://h{i % 4}.invalid:{port}/gated2") for i in range(8)]
    settings = FetchSettings(min_host_delay_s=0, per_host=2, concurrency=3)
    results = run_fetch(feeds, settings, resolver=resolver)
    assert all(isinstance(r, FetchResult) for r in results)
    assert gate2.max_in_flight == 3


def test_min_delay_between_requests_to_one_host(server: FeedServer) -> None:
    server.route("/polite", Static(FEED))
    feeds = [FeedSource(i, server.url("/polite")) for i in range(4)]
    results = run_fetch(feeds, FetchSettings(min_host_delay_s=0.3, per_host=4))
    assert all(isinstance(r, FetchResult) for r in results)
    starts = sorted(r.at for r in server.requests if r.path == "/polite")
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Measured on arrival, so allow for scheduling noise on a busy machine;
    # without the delay all four arrive within a few milliseconds.
    assert len(gaps) == 3 and min(gaps) >= 0.15 and starts[-1] - starts[0] >= 0.7, gaps


def test_keep_alive_reuses_one_connection(server: FeedServer) -> None:
    server.route("/ka", Static(FEED))

    async def go() -> None:
        async with Fetcher(FAST, allow_private_networks=True) as f:
            for i in range(3):
                await f.fetch(FeedSource(i, server.url("/ka")))

    asyncio.run(go())
    ports = {r.client_port for r in server.requests if r.path == "/ka"}
    assert len(ports) == 1


def test_user_agent_is_descriptive_and_configurable(server: FeedServer) -> None:
    server.route("/ua", Static(FEED))
    one(server, "/ua")
    assert server.requests[-1].headers["user-agent"] == FAST.user_agent
    custom = FetchSettings(
        min_host_delay_s=0, user_agent="example-bot/2 (+https://example.org/bot)"
    )
    one(server, "/ua", custom)
    assert server.requests[-1].headers["user-agent"] == "example-bot/2 (+https://example.org/bot)"


def test_environment_proxies_are_ignored(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would connect on our behalf, past the address checks: never use one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    result = one(server, "/feed.xml")
    assert isinstance(result, FetchResult) and result.content == FEED
