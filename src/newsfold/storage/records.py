"""Records that cross the storage boundary: plain data, never ORM rows.

What ``Storage`` returns (``FeedInfo``, ``ArticleInfo``, …) and the intents it
writes (``FeedUpdate``, ``FetchLogEntry``): callers decide, storage persists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsfold.types import FeedStatus

if TYPE_CHECKING:
    from datetime import datetime

    from newsfold.types import ErrorKind, FeedHealth, FetchOutcome, Level


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """A subscribed feed: the one record of it that storage, the API and the CLI share.

    The API (``api.schemas.FeedOut``) and ``feeds … --json`` show these fields
    (the CLI under a few older names) with ``status`` added.
    """

    id: int
    url: str
    title: str | None
    site_url: str | None
    tags: tuple[str, ...]
    full_text: bool
    configured_interval_s: int | None
    origin: str
    created_at: datetime
    etag: str | None
    last_modified: str | None
    last_body_hash: str | None
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    next_fetch_at: datetime
    interval_s: int
    error_count: int
    error_since: datetime | None
    last_error_kind: ErrorKind | None
    last_error: str | None
    disabled_reason: str | None
    redirect_candidate: str | None
    redirect_seen: int
    article_count: int = 0

    def status(self, *, flag_after_errors: int) -> FeedStatus:
        if self.disabled_reason:
            return FeedStatus.DISABLED
        if self.error_count >= flag_after_errors:
            return FeedStatus.FAILING
        return FeedStatus.ERRORING if self.error_count else FeedStatus.OK


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server said identifies this version of the document (for the next poll)."""

    etag: str | None
    last_modified: str | None
    body_hash: str | None


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """A feed's new state after one poll; ``None`` fields keep what is stored.

    Writing it also ends the poll's lease on the feed.
    """

    health: FeedHealth
    last_fetch_at: datetime
    last_success_at: datetime | None = None
    validators: Validators | None = None  # None: a 304 or an error, the stored ones stand
    title: str | None = None
    site_url: str | None = None
    boilerplate: str | None = None  # the learned model, as JSON
    moved_to: str | None = None  # a permanent redirect's target, taken unless another feed has it


@dataclass(frozen=True, slots=True)
class FetchLogEntry:
    """One line of a feed's fetch history."""

    started_at: datetime
    outcome: FetchOutcome
    http_status: int | None
    bytes: int
    duration_ms: int  # the feed's fetch, parse and normalise, ``wait_ms`` included; not the write
    new_items: int
    error: str | None
    wait_ms: int = 0  # queued for the host's turn (per-host politeness) before the request


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    id: int
    feed_id: int
    feed: str  # feed title, or its URL when untitled
    title: str
    url: str | None
    published: datetime
    date_source: str
    fetched_at: datetime
    language: str | None
    cluster: int | None  # story id
    copy_group: int | None
    author: str | None = None
    summary: str = ""
    text: str = ""
    entry_key: str = ""
    revision: int = 1


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    id: int
    level: Level
    title: str
    size: int
    first_seen: datetime
    last_seen: datetime
    sources: tuple[str, ...]  # feed titles (or domains), distinct, in order of first appearance
    copy_groups: int = 1  # stories: how many near-duplicate copy groups it holds
    story: int | None = None  # copy groups: the story they belong to


@dataclass(frozen=True, slots=True)
class ClusterMember:
    id: int
    title: str
    url: str | None
    feed_id: int
    feed: str
    published: datetime
    similarity: float
    tier: str
    matched_article_id: int | None
    copy_group: int | None


@dataclass(frozen=True, slots=True)
class ClusterDetail:
    summary: ClusterSummary
    articles: tuple[ClusterMember, ...]
    merged_from: tuple[int, ...]  # ids that now resolve to this cluster
    requested_id: int  # the id asked for (differs from summary.id after a merge)
    split_from: tuple[tuple[int, datetime], ...] = ()  # (story, when) this one split from
    split_into: tuple[tuple[int, datetime], ...] = ()  # (story, when) that split from this one


@dataclass(frozen=True, slots=True)
class Stats:
    feeds: int
    feeds_erroring: int
    feeds_disabled: int
    articles: int
    clusters: int  # stories
    copy_groups: int
    multi_article_clusters: int
    duplicates: int  # articles that joined an existing cluster (exact or near)
    exact_duplicates: int
    near_duplicates: int
    story_joins: int
    errors: int  # consecutive errors summed over feeds


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a deletion of articles took: the articles, and the clusters they emptied."""

    articles: int = 0
    copies: int = 0
    stories: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(
            self.articles + other.articles,
            self.copies + other.copies,
            self.stories + other.stories,
        )
