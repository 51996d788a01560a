"""The async fetcher: one shared httpx client, polite and bounded.

Owns the HTTP exchange for feeds and article pages: conditional GET, manual
redirect following (so 301/308 can be told from 302/303/307 and loops caught),
status → ``FetchError`` kind, poll hints (``Retry-After``, ``Cache-Control:
max-age``), size and time limits, politeness (global and per-host limits, a
minimum delay between requests to one host) and the SSRF guard (``guard.py``).
It does not parse feeds or decide when to poll next (``pipeline/policy.py`` does).

Every failure is a ``FetchError`` (or ``BlockedURLError``) with a one-line
message that names the URL; nothing from httpx escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from newsfold.errors import BlockedURLError, FetchError
from newsfold.fetch.body import ACCEPT_ENCODING, BadEncoding, BodyTooLarge, read_capped
from newsfold.fetch.discover import DiscoveredFeed, discover_feeds, looks_like_html
from newsfold.fetch.guard import GuardedTransport, Resolver, check_url
from newsfold.fetch.headers import one_line, parse_max_age, parse_retry_after
from newsfold.types import ErrorKind, FeedSource, FetchResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

    from newsfold.config import FetchSettings

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})


class HTMLPageError(FetchError):
    """The URL serves a web page, not a feed; ``feeds`` lists what the page advertises."""

    def __init__(
        self, message: str, *, url: str, feeds: tuple[DiscoveredFeed, ...], size: int = 0
    ) -> None:
        super().__init__(message, url=url, kind=ErrorKind.PERMANENT, status=200, size=size)
        self.feeds = feeds


@dataclass(frozen=True, slots=True)
class _Hop:
    url: str
    status: int


def _kind_for_status(status: int) -> ErrorKind:
    if status == 410:
        return ErrorKind.GONE
    if status in (408, 425, 429) or status >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT  # 404, 401, 403, other 4xx: wrong URL or no access


def body_unchanged(feed: FeedSource, result: FetchResult) -> bool:
    """True when the body is byte-identical to the last one parsed: skip parsing."""
    return bool(feed.last_body_hash) and result.body_hash == feed.last_body_hash


class Fetcher:
    """Fetch feeds and pages concurrently and politely through one pooled client.

    Use one instance per event loop (``async with Fetcher(...) as f``). ``transport``
    replaces the guarded network transport (tests pass ``httpx.MockTransport``):
    scheme and literal-IP checks still apply, name resolution checks do not.
    ``resolver`` replaces system DNS for the guard (tests map names to 127.0.0.1).
    """

    def __init__(
        self,
        settings: FetchSettings,
        *,
        allow_private_networks: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self._allow_private = allow_private_networks
        limits = httpx.Limits(
            max_connections=settings.concurrency * 2,
            max_keepalive_connections=settings.concurrency,
            keepalive_expiry=30.0,
        )
        self._client = httpx.AsyncClient(
            transport=transport
            or GuardedTransport(
                allow_private_networks=allow_private_networks, limits=limits, resolver=resolver
            ),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.read_timeout_s,
                pool=settings.total_timeout_s,
            ),
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,
            # Environment proxies would connect on our behalf and bypass the guard.
            trust_env=False,
        )
        self._global = asyncio.Semaphore(settings.concurrency)
        self._host_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        self._host_next: dict[str, float] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, feed: FeedSource) -> FetchResult:
        """Conditional GET of a feed; a 304 is a result with ``not_modified=True``."""
        headers = {"Accept": FEED_ACCEPT}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        result = await self._get(feed.url, headers)
        try:
            return self._feed_result(feed, result)
        except FetchError as e:
            e.wait_s = result.wait_s
            raise

    def _feed_result(self, feed: FeedSource, result: FetchResult) -> FetchResult:
        """The result, unless the body is empty or a web page."""
        if result.not_modified:
            # A 304 may omit validators (RFC 9110 §15.4.5): keep the ones we sent.
            return _replace_validators(result, feed)
        if not result.content.strip():
            raise FetchError(
                f"empty response body (HTTP {result.status}): {result.url}",
                url=feed.url,
                kind=ErrorKind.TRANSIENT,
                status=result.status,
            )
        if looks_like_html(result.content, result.headers.get("content-type")):
            feeds = tuple(discover_feeds(result.content, result.url))
            if feeds:
                offer = "feeds it links to: " + ", ".join(f.url for f in feeds)
            else:
                offer = 'it links to no feed (no <link rel="alternate">)'
            raise HTMLPageError(
                f"this URL is an HTML page, not a feed: {result.url}; {offer}",
                url=feed.url,
                feeds=feeds,
                size=len(result.content),
            )
        return result

    async def fetch_page(self, url: str) -> FetchResult:
        """GET an article page (full-text mode) with the same limits and politeness."""
        return await self._get(url, {"Accept": PAGE_ACCEPT})

    # -- politeness -------------------------------------------------------

    @asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        """At most ``per_host`` requests in flight to a host, starts ``min_host_delay_s`` apart."""
        async with self._host_slots[host]:
            # No await between reading and booking the next start: asyncio
            # cannot interleave here, so no lock is needed.
            now = time.monotonic()
            start = max(now, self._host_next.get(host, now))
            self._host_next[host] = start + self.settings.min_host_delay_s
            if start > now:
                await asyncio.sleep(start - now)
            yield

    # -- one exchange, redirects followed by hand -------------------------

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        budget = self.settings.total_timeout_s
        started = time.monotonic()
        waited = [0.0]
        try:
            return await self._follow(url, headers, budget, started, waited)
        except FetchError as e:
            e.wait_s = waited[0]
            raise

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        budget: float,
        started: float,
        waited: list[float],
    ) -> FetchResult:
        """``_get``'s redirect loop; ``waited[0]`` adds up the time queued for slots."""
        hops: list[_Hop] = []
        seen = {url}
        current = url
        while True:
            parsed = check_url(current, allow_private_networks=self._allow_private)
            host = (parsed.host or "").lower()
            # Host slot first, global slot second: a feed queued behind a busy
            # host must not hold one of the global slots while it waits.
            queued = time.monotonic()
            async with self._host_slot(host), self._global:
                t0 = time.monotonic()
                waited[0] += t0 - queued
                response, content = await self._exchange(url, current, parsed, headers, budget)
                # Time spent queueing for slots does not count against the feed.
                budget -= time.monotonic() - t0
            status = response.status_code
            if status not in _REDIRECTS:
                break
            location = response.headers.get("location")
            if not location:
                raise FetchError(
                    f"HTTP {status} redirect without a Location header: {current}",
                    url=url,
                    kind=ErrorKind.PERMANENT,
                    status=status,
                )
            hops.append(_Hop(current, status))
            try:
                target = str(parsed.join(location.strip()))
            except (httpx.InvalidURL, ValueError) as e:
                raise FetchError(
                    f"redirect to an invalid URL {location!r}: {current}",
                    url=url,
                    kind=ErrorKind.PERMANENT,
                    status=status,
                ) from e
            if target in seen:
                chain = " → ".join([*(h.url for h in hops), target])
                raise FetchError(
                    f"redirect loop: {one_line(chain, 500)}",
                    url=url,
                    kind=ErrorKind.PERMANENT,
                    status=status,
                )
            if len(hops) > self.settings.max_redirects:
                raise FetchError(
                    f"too many redirects (more than {self.settings.max_redirects}): {url}",
                    url=url,
                    kind=ErrorKind.PERMANENT,
                    status=status,
                )
            seen.add(target)
            current = target
        duration = time.monotonic() - started
        result = self._result(
            url, final=current, hops=hops, response=response, content=content, duration=duration
        )
        return replace(result, wait_s=waited[0])

    async def _exchange(
        self,
        url: str,
        current: str,
        parsed: httpx.URL,
        headers: dict[str, str],
        budget: float,
    ) -> tuple[httpx.Response, bytes]:
        """One request; the body is read only for a 2xx. Maps every failure to FetchError."""
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                request = self._client.build_request("GET", parsed, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    content = b""
                    if 200 <= response.status_code < 300:
                        _check_length(response, self.settings.max_bytes, url)
                        content = await self._read(response)
                finally:
                    await response.aclose()
        except TimeoutError as e:
            raise FetchError(
                f"took longer than the {self.settings.total_timeout_s:g}s total timeout: {current}",
                url=url,
                kind=ErrorKind.TRANSIENT,
            ) from e
        except BlockedURLError as e:
            raise BlockedURLError(f"{e.message}: {current}", url=url) from e
        except BodyTooLarge as e:
            raise FetchError(f"{e}: {current}", url=url, kind=ErrorKind.PERMANENT) from e
        except BadEncoding as e:
            raise FetchError(f"{e}: {current}", url=url, kind=ErrorKind.PERMANENT) from e
        except httpx.TimeoutException as e:
            what = {
                httpx.ConnectTimeout: "connecting",
                httpx.ReadTimeout: "waiting for data",
                httpx.PoolTimeout: "waiting for a connection",
            }.get(type(e), "the request")
            raise FetchError(
                f"timed out {what}: {current}", url=url, kind=ErrorKind.TRANSIENT
            ) from e
        except httpx.HTTPError as e:
            detail = one_line(str(e)) or type(e).__name__
            kind = ErrorKind.PERMANENT if "CERTIFICATE" in detail.upper() else ErrorKind.TRANSIENT
            raise FetchError(f"{detail}: {current}", url=url, kind=kind) from e
        except (OSError, ValueError, UnicodeError) as e:
            raise FetchError(
                f"request failed ({type(e).__name__}: {one_line(str(e))}): {current}",
                url=url,
                kind=ErrorKind.TRANSIENT,
            ) from e
        return response, content

    async def _read(self, response: httpx.Response) -> bytes:
        if response.is_stream_consumed:
            # A transport that read the body already (e.g. a MockTransport reply
            # built from bytes) has decoded it too: only the decoded cap applies.
            content, _ = await read_capped(
                _once(response.content), content_encoding=None, max_bytes=self.settings.max_bytes
            )
            return content
        content, _ = await read_capped(
            response.aiter_raw(),
            content_encoding=response.headers.get("content-encoding"),
            max_bytes=self.settings.max_bytes,
        )
        return content

    def _result(
        self,
        url: str,
        *,
        final: str,
        hops: list[_Hop],
        response: httpx.Response,
        content: bytes,
        duration: float,
    ) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        now = datetime.now(UTC)
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
        if status == 304 or (200 <= status < 300):
            permanent = (
                final
                if hops and all(h.status in _PERMANENT_REDIRECTS for h in hops) and final != url
                else None
            )
            not_modified = status == 304
            return FetchResult(
                requested_url=url,
                url=final,
                status=status,
                content=b"" if not_modified else content,
                headers=headers,
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
                not_modified=not_modified,
                duration_s=duration,
                permanent_redirect=permanent,
                body_hash=None if not_modified else hashlib.sha256(content).hexdigest(),
                max_age_s=parse_max_age(headers.get("cache-control")),
                retry_after_s=retry_after,
            )
        reason = response.reason_phrase or ""
        raise FetchError(
            one_line(f"HTTP {status} {reason}: {final}"),
            url=url,
            kind=_kind_for_status(status),
            status=status,
            retry_after_s=retry_after if status in (429, 503) else None,
        )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _check_length(response: httpx.Response, max_bytes: int, url: str) -> None:
    """Refuse early when the server announces a body over the cap."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"response of {int(declared):,} bytes exceeds the {max_bytes:,}-byte cap: "
            f"{response.request.url}",
            url=url,
            kind=ErrorKind.PERMANENT,
            status=response.status_code,
        )


def _replace_validators(result: FetchResult, feed: FeedSource) -> FetchResult:
    return replace(
        result,
        etag=result.etag or feed.etag,
        last_modified=result.last_modified or feed.last_modified,
        body_hash=feed.last_body_hash,
    )


__all__ = ["FEED_ACCEPT", "PAGE_ACCEPT", "Fetcher", "HTMLPageError", "body_unchanged"]
