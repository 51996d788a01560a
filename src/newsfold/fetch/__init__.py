"""Fetch stage: polite, bounded, SSRF-guarded HTTP for feeds and article pages.

    Fetcher          one shared httpx client (client.py)
    guard.py         scheme / resolved-address checks, connect to the checked address
    body.py          size cap on wire and decoded bytes (gzip bombs stop at the cap)
    headers.py       Retry-After / Cache-Control readers
    discover.py      HTML page or feed? the feeds a page links to

``fetch_sync`` is for CLI commands that fetch one URL outside the service loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from newsfold.fetch.client import FEED_ACCEPT, PAGE_ACCEPT, Fetcher, HTMLPageError, body_unchanged
from newsfold.fetch.guard import Resolver, blocked_reason, check_url
from newsfold.fetch.headers import parse_max_age, parse_retry_after
from newsfold.types import FeedSource

if TYPE_CHECKING:
    from newsfold.config import FetchSettings
    from newsfold.types import FetchResult


def fetch_sync(
    url: str,
    settings: FetchSettings,
    *,
    allow_private_networks: bool = False,
    as_feed: bool = False,
) -> FetchResult:
    """Fetch one URL from synchronous code (``feeds add``, ``extract URL``).

    By default the body is returned whatever it is, so the caller can run
    ``discover.looks_like_html``/``discover_feeds`` on it. ``as_feed=True`` applies
    the feed checks of ``Fetcher.fetch`` (an HTML page raises ``HTMLPageError``
    carrying the discovered feeds). Must not be called from a running event loop.
    """

    async def run() -> FetchResult:
        async with Fetcher(settings, allow_private_networks=allow_private_networks) as fetcher:
            if as_feed:
                return await fetcher.fetch(FeedSource(id=0, url=url))
            return await fetcher.fetch_page(url)

    return asyncio.run(run())


__all__ = [
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "Fetcher",
    "HTMLPageError",
    "Resolver",
    "blocked_reason",
    "body_unchanged",
    "check_url",
    "fetch_sync",
    "parse_max_age",
    "parse_retry_after",
]
