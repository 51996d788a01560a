"""Plain records passed between pipeline stages.

Each record is named for the hop it makes, as in lemon24/reader's ``_types``:

    FeedSource ──fetch──▶ FetchResult ──parse──▶ ParsedFeed(RawEntry…)
        ──normalise──▶ Article ──dedup──▶ Placement ──store──▶ rows

Datetimes are always timezone-aware UTC. Records are frozen: a stage that
changes one returns a copy (``dataclasses.replace``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime


class ErrorKind(StrEnum):
    """How a failure should drive back-off (see ``errors.FetchError``)."""

    TRANSIENT = "transient"  # timeouts, 5xx, 429, connection resets: retry with back-off
    PERMANENT = "permanent"  # 404, not a feed, refused URL: retry rarely, show loudly
    GONE = "gone"  # 410: the feed is disabled until a person re-enables it


@dataclass(frozen=True, slots=True)
class FeedSource:
    """What the fetcher and the normaliser need to know about a stored feed."""

    id: int
    url: str
    title: str | None = None
    site_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_body_hash: str | None = None
    full_text: bool = False


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Everything newsfold needs from one HTTP exchange for a feed.

    A 304 is a normal result (``not_modified``), not an error.
    """

    requested_url: str
    url: str  # final URL after redirects
    status: int
    content: bytes  # empty for 304
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    duration_s: float = 0.0
    # New address when every hop was a 301/308; ``None`` otherwise (302/303/307
    # must not rewrite a subscription).
    permanent_redirect: str | None = None
    body_hash: str | None = None
    # Poll-time hints from the server (Cache-Control max-age / Retry-After), seconds.
    max_age_s: float | None = None
    retry_after_s: float | None = None
    # Of ``duration_s``, the seconds queued for a turn at the host (politeness) or a slot.
    wait_s: float = 0.0


def declared_language(tag: object) -> str | None:
    """The ISO 639-1 code of a declared language tag (RSS ``<language>en-us``, Atom
    ``xml:lang="de"``, JSON Feed ``"language": "fr-FR"``, HTML ``lang``; BCP 47 or the RSS
    codes), else None."""
    primary = re.split(r"[-_]", str(tag).strip(), maxsplit=1)[0].lower() if tag else ""
    return primary if len(primary) == 2 and primary.isascii() and primary.isalpha() else None


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One entry as the feed said it, before any cleaning."""

    guid: str | None
    link: str | None
    title: str | None
    summary_html: str | None = None
    content_html: str | None = None
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None  # ISO 639-1, as the entry or its feed declares it


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed document: feed-level metadata plus its entries."""

    format: str  # "rss20", "atom10", "json11", ... as reported by the parser
    title: str | None
    link: str | None  # the site's home page
    entries: tuple[RawEntry, ...]
    ttl_minutes: int | None = None  # RSS <ttl>
    update_period_minutes: int | None = None  # sy:updatePeriod / sy:updateFrequency
    warning: str | None = None  # recoverable problem (feedparser "bozo") worth showing
    total_entries: int = 0  # entries in the document before any per-fetch cap
    language: str | None = None  # ISO 639-1, as the feed declares it


class DateSource(StrEnum):
    FEED = "feed"  # the feed (or page) said so
    FIRST_SEEN = "first_seen"  # no usable date: first time we saw it
    CLAMPED = "clamped"  # too far in the future: clamped to first-seen time


@dataclass(frozen=True, slots=True)
class Article:
    """A normalised entry: what is stored and what dedup compares."""

    feed_id: int
    entry_key: str  # stable per feed: GUID → canonical link → content hash
    url: str | None  # canonical URL
    title: str
    summary: str  # plain-text deck / description
    text: str  # cleaned plain text, one paragraph per line
    comparison_text: str  # text MinHash sees (cleaned body, credits and prefixes removed)
    content_hash: str  # hash of the normalised comparison text
    published: datetime
    fetched_at: datetime
    date_source: DateSource = DateSource.FEED
    updated: datetime | None = None
    author: str | None = None
    guid: str | None = None
    language: str | None = None
    rules_fired: tuple[str, ...] = ()


class Level(StrEnum):
    """The two levels of clustering: near-duplicate copies of one text, and stories."""

    COPIES = "copies"  # copy groups: the same text, syndicated or lightly edited
    STORIES = "stories"  # stories: the same event, in other words


class SearchLevel(StrEnum):
    """What a search returns: matching articles, or the stories they belong to."""

    ARTICLES = "articles"
    STORIES = "stories"


class FetchOutcome(StrEnum):
    """What one poll of one feed came to (the fetch log's ``outcome``, a summary's ``status``)."""

    OK = "ok"  # fetched and parsed
    NOT_MODIFIED = "not_modified"  # HTTP 304
    UNCHANGED = "unchanged"  # 200, but the very same bytes as last time
    ERROR = "error"  # fetch or parse failed; recorded on the feed
    SKIPPED = "skipped"  # the feed was removed while it was being polled: nothing written


class FeedStatus(StrEnum):
    """A feed's state at a glance (the API's ``status``)."""

    OK = "ok"
    ERRORING = "erroring"  # errors in a row, fewer than ``flag_after_errors``
    FAILING = "failing"  # at least ``flag_after_errors`` in a row
    DISABLED = "disabled"  # gone (410), taken out of the settings file, or by hand


class Tier(StrEnum):
    """Why an article sits where it sits (the evidence kept for every join)."""

    NEW = "new"  # founded its cluster
    EXACT = "exact"  # same normalised body as an earlier article
    NEAR = "near"  # MinHash near-duplicate (copies level)
    STORY = "story"  # same event, different wording (stories level)


@dataclass(frozen=True, slots=True)
class Join:
    """Where an article was placed at one level, and why."""

    cluster_id: int
    tier: Tier
    similarity: float  # 1.0 for NEW and EXACT
    matched_article_id: int | None  # the article that justified the join


@dataclass(frozen=True, slots=True)
class Placement:
    """The dedup decision for one article at both levels."""

    article_id: int
    copy: Join  # near-duplicate copy group
    story: Join  # story (event) cluster
    merged_stories: tuple[int, ...] = ()  # story ids folded into ``story.cluster_id``


@dataclass(frozen=True, slots=True)
class FeedUpdateSummary:
    """Outcome of polling one feed: a value, never an exception (one feed never stops a batch)."""

    feed_id: int
    url: str
    status: FetchOutcome
    http_status: int | None = None
    new_articles: int = 0
    updated_articles: int = 0
    duplicates: int = 0  # exact repeats of stored entries/bodies
    near_duplicates: int = 0
    clusters_touched: int = 0
    error_kind: ErrorKind | None = None
    error: str | None = None
    duration_s: float = 0.0  # its own fetch, parse and normalise, not the database write
    write_s: float = 0.0  # the write that stored it (a ``fetch`` poll's feeds share one)
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class PollSummary:
    feeds: tuple[FeedUpdateSummary, ...]
    duration_s: float
    write_s: float = 0.0  # of ``duration_s``, the database write of the poll's feeds

    @property
    def new_articles(self) -> int:
        return sum(f.new_articles for f in self.feeds)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates + f.near_duplicates for f in self.feeds)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.feeds if f.status is FetchOutcome.ERROR)

    @property
    def clusters_touched(self) -> int:
        return sum(f.clusters_touched for f in self.feeds)


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """Polling state of one feed; storage maps each field to a column."""

    next_fetch_at: datetime
    interval_s: int  # the un-jittered success interval, kept through error spells
    consecutive_errors: int = 0
    error_since: datetime | None = None
    last_error_kind: ErrorKind | None = None
    last_error: str | None = None
    disabled_reason: str | None = None
    redirect_candidate: str | None = None  # 301/308 target seen, not yet adopted
    redirect_seen: int = 0


__all__ = [
    "Article",
    "DateSource",
    "ErrorKind",
    "FeedHealth",
    "FeedSource",
    "FeedStatus",
    "FeedUpdateSummary",
    "FetchOutcome",
    "FetchResult",
    "Join",
    "Level",
    "ParsedFeed",
    "Placement",
    "PollSummary",
    "RawEntry",
    "Tier",
]
