"""Fetch edge cases through ``httpx.MockTransport``: statuses, redirects, bodies, URL checks."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import socket
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsfold.config import FetchSettings
from newsfold.errors import BlockedURLError, FetchError
from newsfold.fetch import (
    Fetcher,
    HTMLPageError,
    blocked_reason,
    body_unchanged,
    check_url,
    parse_max_age,
    parse_retry_after,
)
from newsfold.types import ErrorKind, FeedSource, FetchResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
URL = "https://news.example.com/feed.xml"
FAST = FetchSettings(min_host_delay_s=0, total_timeout_s=5)


class _Stream(httpx.AsyncByteStream):
    """A body httpx has not read yet, as from the network (``content=`` is pre-read)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 4096):
            yield self.data[i : i + 4096]


def reply(
    status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=_Stream(body))


def fetch(
    handler: object,
    url: str = URL,
    *,
    settings_: FetchSettings = FAST,
    page: bool = False,
    **feed: object,
) -> FetchResult:
    async def go() -> FetchResult:
        transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
        async with Fetcher(settings_, transport=transport) as f:
            if page:
                return await f.fetch_page(url)
            return await f.fetch(FeedSource(id=1, url=url, **feed))  # type: ignore[arg-type]

    return asyncio.run(go())


def ok(request: httpx.Request) -> httpx.Response:
    return reply(200, FEED, {"Content-Type": "application/rss+xml"})


# --- statuses --------------------------------------------------------------------------------

IN_AN_HOUR = "<an HTTP-date one hour from the request>"


def _resolve_dates(headers: dict[str, str]) -> dict[str, str]:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    return {k: soon if v == IN_AN_HOUR else v for k, v in headers.items()}


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (404, {}, ErrorKind.PERMANENT, None),
        (401, {}, ErrorKind.PERMANENT, None),
        (403, {}, ErrorKind.PERMANENT, None),
        (410, {}, ErrorKind.GONE, None),
        (500, {}, ErrorKind.TRANSIENT, None),
        (502, {}, ErrorKind.TRANSIENT, None),
        (429, {"Retry-After": "120"}, ErrorKind.TRANSIENT, 120.0),
        (503, {"Retry-After": "7"}, ErrorKind.TRANSIENT, 7.0),
        (429, {"Retry-After": IN_AN_HOUR}, ErrorKind.TRANSIENT, 3600.0),
        (429, {"Retry-After": "soon"}, ErrorKind.TRANSIENT, None),  # unreadable: ignored
        (500, {"Retry-After": "60"}, ErrorKind.TRANSIENT, None),  # only 429/503 carry it
        (300, {}, ErrorKind.PERMANENT, None),  # a 3xx that is not a redirect we follow
    ],
)
def test_status_becomes_error_kind(
    status: int, headers: dict[str, str], kind: ErrorKind, retry_after: float | None
) -> None:
    with pytest.raises(FetchError) as info:
        fetch(lambda r: reply(status, headers=_resolve_dates(headers)))
    err = info.value
    assert err.kind is kind and err.status == status and err.url == URL
    if retry_after is None:
        assert err.retry_after_s is None
    else:
        assert err.retry_after_s == pytest.approx(retry_after, abs=5)
    assert f"HTTP {status}" in err.message and URL in err.message and "\n" not in err.message


def test_success_carries_validators_hash_and_hints() -> None:
    headers = {
        "ETag": '"v1"',
        "Last-Modified": "Sat, 01 Jun 2024 10:00:00 GMT",
        "Cache-Control": "public, max-age=900",
        "Content-Type": "application/rss+xml",
    }
    result = fetch(lambda r: reply(200, FEED, headers))
    assert (result.status, result.etag, result.last_modified) == (
        200,
        '"v1"',
        headers["Last-Modified"],
    )
    assert result.max_age_s == 900.0 and result.content == FEED
    assert result.body_hash is not None and len(result.body_hash) == 64
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.permanent_redirect is None and not result.not_modified


def test_conditional_get_sends_validators_and_keeps_them_on_304() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(304)

    result = fetch(
        handler, etag='"abc"', last_modified="Sat, 01 Jun 2024 10:00:00 GMT", last_body_hash="h1"
    )
    sent = seen[0].headers
    assert sent["if-none-match"] == '"abc"'
    assert sent["if-modified-since"] == "Sat, 01 Jun 2024 10:00:00 GMT"
    assert sent["user-agent"] == FAST.user_agent and "+https://" in sent["user-agent"]
    assert sent["accept-encoding"] == "gzip, deflate"
    assert result.not_modified and result.content == b""
    assert (result.etag, result.body_hash) == ('"abc"', "h1")  # a bare 304 keeps what we had


def test_no_conditional_headers_without_validators() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    fetch(handler)
    assert "if-none-match" not in seen[0].headers and "if-modified-since" not in seen[0].headers


def test_body_unchanged() -> None:
    result = fetch(ok)
    assert body_unchanged(FeedSource(1, URL, last_body_hash=result.body_hash), result)
    assert not body_unchanged(FeedSource(1, URL, last_body_hash="other"), result)
    assert not body_unchanged(FeedSource(1, URL), result)


# --- redirects -------------------------------------------------------------------------------


def chain(statuses: list[int], final: httpx.Response | None = None) -> object:
    """/0 → /1 → … → /n, each hop answering with the given status."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.strip("/") or "0"
        i = int(path) if path.isdigit() else 0
        if i < len(statuses):
            return reply(statuses[i], headers={"Location": f"/{i + 1}"})
        return final or ok(request)

    return handler


@pytest.mark.parametrize(
    ("statuses", "permanent"),
    [
        ([301], "https://news.example.com/1"),
        ([308], "https://news.example.com/1"),
        ([301, 308, 301], "https://news.example.com/3"),
        ([302], None),
        ([307], None),
        ([303], None),
        ([301, 302], None),  # one temporary hop: the subscription must not move
        ([302, 301], None),
        ([], None),
    ],
)
def test_permanent_redirect_only_when_every_hop_is_permanent(
    statuses: list[int], permanent: str | None
) -> None:
    result = fetch(chain(statuses), "https://news.example.com/0")
    assert result.permanent_redirect == permanent
    assert result.url == f"https://news.example.com/{len(statuses)}" if statuses else True
    assert result.requested_url == "https://news.example.com/0"


def test_permanent_redirect_then_304() -> None:
    result = fetch(chain([301], reply(304)), "https://news.example.com/0", etag='"e"')
    assert result.not_modified and result.permanent_redirect == "https://news.example.com/1"


@pytest.mark.parametrize(
    ("handler", "kind", "words"),
    [
        (
            lambda r: reply(301, headers={"Location": r.url.path}),
            ErrorKind.PERMANENT,
            "redirect loop",
        ),
        (
            lambda r: httpx.Response(
                302, headers={"Location": "/b" if r.url.path == "/a" else "/a"}
            ),
            ErrorKind.PERMANENT,
            "redirect loop",
        ),
        (chain([302] * 6), ErrorKind.PERMANENT, "too many redirects"),
        (lambda r: reply(301), ErrorKind.PERMANENT, "without a Location"),
    ],
)
def test_bad_redirects_are_errors(handler: object, kind: ErrorKind, words: str) -> None:
    with pytest.raises(FetchError) as info:
        fetch(handler, "https://news.example.com/a")
    assert info.value.kind is kind and words in info.value.message


def test_redirect_limit_is_configurable() -> None:
    assert fetch(chain([302] * 5), "https://news.example.com/0").url.endswith("/5")
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(
            chain([302] * 2), "https://news.example.com/0", settings_=FetchSettings(max_redirects=1)
        )


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/passwd",
        "gopher://news.example.com/",
        "http://127.0.0.1/admin",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata endpoint
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_every_redirect_hop_is_checked(location: str) -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return reply(302, headers={"Location": location})

    with pytest.raises(BlockedURLError) as info:
        fetch(handler)
    assert requested == [URL]  # the refused target was never requested
    assert info.value.kind is ErrorKind.PERMANENT


# --- bodies ----------------------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(FEED)),
        ("x-gzip", gzip.compress(FEED)),
        ("deflate", zlib.compress(FEED)),  # RFC: zlib-wrapped
        ("deflate", raw_deflate(FEED)),  # what many servers send
        ("gzip", gzip.compress(FEED[:20]) + gzip.compress(FEED[20:])),  # two gzip members
        ("gzip, gzip", gzip.compress(gzip.compress(FEED))),  # codings applied in order
        ("identity", FEED),
    ],
)
def test_content_encodings_are_decoded(encoding: str, body: bytes) -> None:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/rss+xml"}
    assert fetch(lambda r: reply(200, body, headers)).content == FEED


@pytest.mark.parametrize(
    ("encoding", "body", "words"),
    [
        ("br", b"\x1b\x00", "unsupported Content-Encoding 'br'"),
        ("gzip", b"definitely not gzip", "invalid gzip data"),
    ],
)
def test_bad_encodings_are_errors(encoding: str, body: bytes, words: str) -> None:
    headers = {"Content-Encoding": encoding}
    with pytest.raises(FetchError) as info:
        fetch(lambda r: reply(200, body, headers))
    assert words in info.value.message and info.value.kind is ErrorKind.PERMANENT


SMALL = FetchSettings(min_host_delay_s=0, max_bytes=10_000)


@pytest.mark.parametrize(
    ("body", "headers", "words"),
    [
        (b"<rss>" + b"x" * 20_000, {}, "response body exceeds the 10,000-byte cap"),
        (
            gzip.compress(b"<rss>" + b"\0" * 50_000),
            {"Content-Encoding": "gzip"},
            "decompressed body exceeds",
        ),
        (
            gzip.compress(bytes(range(256)) * 200, compresslevel=0),
            {"Content-Encoding": "gzip"},
            "compressed body exceeds",
        ),
    ],
)
def test_size_cap(body: bytes, headers: dict[str, str], words: str) -> None:
    with pytest.raises(FetchError) as info:
        fetch(lambda r: reply(200, body, headers), settings_=SMALL)
    assert words in info.value.message and info.value.kind is ErrorKind.PERMANENT


def test_declared_length_over_cap_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, b"", {"Content-Length": "999999999"})

    with pytest.raises(FetchError, match="999,999,999 bytes exceeds the 10,000-byte cap"):
        fetch(handler, settings_=SMALL)


def test_exactly_at_cap_is_accepted() -> None:
    body = b"<rss>" + b"x" * (10_000 - 5)
    assert len(fetch(lambda r: reply(200, body), settings_=SMALL).content) == 10_000


def test_empty_body_is_an_error() -> None:
    with pytest.raises(FetchError, match="empty response body"):
        fetch(lambda r: reply(200, b"  \n"))


PAGE = b"""<!doctype html><html><head>
<link rel="alternate" type="application/rss+xml" href="/rss">
<link rel="alternate" type="application/atom+xml" href="https://news.example.com/atom.xml">
</head><body>news</body></html>"""


def test_html_page_is_reported_with_discovered_feeds() -> None:
    with pytest.raises(HTMLPageError) as info:
        fetch(lambda r: reply(200, PAGE, {"Content-Type": "text/html"}))
    err = info.value
    assert [f.url for f in err.feeds] == [
        "https://news.example.com/rss",
        "https://news.example.com/atom.xml",
    ]
    assert err.message.startswith("this URL is an HTML page")
    assert "https://news.example.com/rss" in err.message and err.kind is ErrorKind.PERMANENT


def test_html_page_without_feeds_says_so() -> None:
    with pytest.raises(HTMLPageError, match="links to no feed"):
        fetch(lambda r: reply(200, b"<html><body>hi</body></html>"))


def test_mislabelled_feed_is_accepted() -> None:
    result = fetch(lambda r: reply(200, FEED, {"Content-Type": "text/html"}))
    assert result.content == FEED


def test_fetch_page_returns_html() -> None:
    result = fetch(lambda r: reply(200, PAGE), page=True)
    assert result.content == PAGE


# --- header readers --------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sat, 01 Jun 2024 12:30:00 GMT", 1800.0),
        ("Sat, 01 Jun 2024 11:00:00 GMT", 0.0),  # in the past: now
        ("Saturday, 01-Jun-24 12:01:00 GMT", 60.0),  # obsolete RFC 850 form (RFC 9110 §5.6.7)
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
        ("tomorrow", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=300", 300.0),
        ("public, max-age=600, must-revalidate", 600.0),
        ('max-age="60"', 60.0),
        ("s-maxage=100", None),
        ("no-cache", None),
        ("private, s-maxage=100, max-age=5", 5.0),
        (None, None),
    ],
)
def test_parse_max_age(value: str | None, expected: float | None) -> None:
    assert parse_max_age(value) == expected


# --- SSRF guard and garbage URLs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address".replace("an ", "a ")),
        ("100.64.0.1", "a non-public address"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1 embedded in IPv6)"),
        ("::ffff:10.0.0.1", "a private address (10.0.0.1 embedded in IPv6)"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1 embedded in IPv6)"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "a link-local address (169.254.169.254 embedded in IPv6)"),  # NAT64
        ("::ffff:8.8.8.8", None),
        ("not-an-ip", "not an IP address"),
    ],
)
def test_blocked_reason(ip: str, reason: str | None) -> None:
    assert blocked_reason(ip) == reason


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/feed", "refused ftp: URL"),
        ("file:///etc/passwd", "refused file: URL"),
        ("javascript:alert(1)", "refused javascript: URL"),
        ("example.com/feed", "not an http(s) URL"),
        ("", "not an http(s) URL"),
        ("http://", "URL has no host"),
        ("http://exa mple.com/", "invalid URL"),
        ("http://exa%20mple.com/", "invalid URL"),
        ("http://[::1/", "invalid URL"),
        ("http://127.0.0.1:8080/", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("https://10.0.0.5/feed", "10.0.0.5 is a private address"),
    ],
)
def test_check_url_refuses(url: str, words: str) -> None:
    with pytest.raises(BlockedURLError) as info:
        check_url(url, allow_private_networks=False)
    assert words in info.value.message and info.value.url == url


def test_private_literals_allowed_when_configured() -> None:
    assert check_url("http://127.0.0.1:8080/x", allow_private_networks=True).port == 8080
    with pytest.raises(BlockedURLError):  # the scheme check always applies
        check_url("file:///etc/passwd", allow_private_networks=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda s: "http://" + s, st.text(max_size=40)),
        st.builds(lambda s: "https://news.example.com/" + s, st.text(max_size=40)),
    )
)
def test_garbage_urls_raise_fetch_error_never_crash(url: str) -> None:
    try:
        fetch(ok, url)
    except FetchError as e:
        assert "\n" not in e.message or "\n" in url


async def _guarded_fetch(url: str, resolver: object) -> FetchResult:
    async with Fetcher(FAST, resolver=resolver) as f:  # type: ignore[arg-type]
        return await f.fetch(FeedSource(1, url))


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.0.0.7"],  # one private address among public ones is enough
        ["2606:2800:220:1:248:1893:25c8:1946", "::ffff:192.168.0.1"],
    ],
)
def test_resolved_addresses_are_all_checked_before_connecting(addresses: list[str]) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return addresses

    with pytest.raises(BlockedURLError) as info:
        asyncio.run(_guarded_fetch("https://innocent.example.com/feed", resolver))
    assert "refused host innocent.example.com: it resolves to" in info.value.message
    assert info.value.url == "https://innocent.example.com/feed"


@pytest.mark.parametrize(
    ("exc", "words"),
    [(socket.gaierror(-2, "Name or service not known"), "cannot resolve host nxdomain.example")],
)
def test_dns_failure_is_a_transient_error(exc: Exception, words: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise exc

    with pytest.raises(FetchError) as info:
        asyncio.run(_guarded_fetch("https://nxdomain.example/feed", resolver))
    assert words in info.value.message and info.value.kind is ErrorKind.TRANSIENT
