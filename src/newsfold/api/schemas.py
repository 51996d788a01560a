"""Response models of the JSON API (they are the published OpenAPI schema) and their builders."""

from __future__ import annotations

import dataclasses
from datetime import datetime  # noqa: TC003 - pydantic resolves field types at runtime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from newsfold.api.feeds_out import representative, story_summary, story_title
from newsfold.search_query import snippet_html
from newsfold.types import FeedStatus  # noqa: TC001 - pydantic resolves field types at runtime

if TYPE_CHECKING:
    from newsfold.storage.published import PublishedStory
    from newsfold.storage.records import ArticleInfo, ClusterDetail, FeedInfo
    from newsfold.storage.search import SearchHit


class SearchHitOut(BaseModel):
    """A search result. ``snippet`` is HTML: escaped text with each match in ``<mark>``.
    Articles carry ``url`` and ``feed``; stories ``size``, ``sources`` and ``matches``."""

    id: int
    title: str
    snippet: str
    published: datetime
    score: float
    url: str | None = None
    feed: str | None = None
    size: int | None = None
    sources: list[str] | None = None
    matches: int | None = None
    article_id: int | None = None


class MemberBrief(BaseModel):
    id: int
    title: str
    url: str | None
    source: str
    published: datetime


class SplitOut(BaseModel):
    """The other side of a split: a story's id (as it resolves now) and when it split."""

    id: int
    split_at: datetime


class ClusterOut(BaseModel):
    id: int
    title: str  # the representative (earliest-published) member's title
    summary: str
    size: int
    first_seen: datetime
    last_seen: datetime
    # The story's time span: its members' story times (publication time when credible).
    first_published: datetime
    last_published: datetime
    span_days: float
    sources: list[str]
    members: list[MemberBrief]
    merged_from: list[int]  # story ids that now resolve to this one
    split_from: list[SplitOut]  # the stories this one split from
    split_into: list[SplitOut]  # the stories that split from this one


class ClusterPage(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None  # None on the last page
    items: list[ClusterOut]


class Evidence(BaseModel):
    """Why an article sits in the story: the tier of the join and what it matched."""

    id: int
    title: str
    url: str | None
    feed_id: int
    source: str
    published: datetime
    tier: str
    similarity: float
    matched_article_id: int | None
    copy_group: int | None


class ClusterDetailOut(BaseModel):
    id: int
    requested_id: int  # differs from id when the requested story was merged into this one
    merged_from: list[int]
    split_from: list[SplitOut]  # the stories this one split from
    split_into: list[SplitOut]  # the stories that split from this one
    title: str
    size: int
    first_seen: datetime
    last_seen: datetime
    # The story's time span: its members' story times (publication time when credible).
    first_published: datetime
    last_published: datetime
    span_days: float
    sources: list[str]
    members: list[Evidence]


class ArticleOut(BaseModel):
    id: int
    feed_id: int
    source: str
    title: str
    url: str | None
    author: str | None
    published: datetime
    date_source: str
    fetched_at: datetime
    language: str | None
    story_id: int | None
    copy_group: int | None
    revision: int
    summary: str
    text: str


class FeedOut(BaseModel):
    """A feed and its health: ``FeedInfo``'s fields of these names, and its status."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    tags: list[str]
    article_count: int
    status: FeedStatus
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    next_fetch_at: datetime
    interval_s: int
    error_count: int
    error_since: datetime | None
    last_error_kind: str | None
    last_error: str | None
    disabled_reason: str | None


def search_hit_out(hit: SearchHit, *, stories: bool) -> SearchHitOut:
    common = {
        "id": hit.id,
        "title": hit.title,
        "snippet": snippet_html(hit.snippet),
        "published": hit.published,
        "score": round(hit.score, 6),
    }
    if stories:
        return SearchHitOut(
            **common,
            size=hit.size,
            sources=list(hit.sources),
            matches=hit.matches,
            article_id=hit.article_id,
        )
    return SearchHitOut(**common, url=hit.url, feed=hit.feed)


def span_days(first: datetime, last: datetime) -> float:
    """Days between a story's first and last report (cluster rows keep both)."""
    return round((last - first).total_seconds() / 86400, 2)


def cluster_out(story: PublishedStory) -> ClusterOut:
    rep = representative(story)
    return ClusterOut(
        id=story.id,
        title=story_title(story),
        summary=story_summary(rep),
        size=story.size,
        first_seen=story.first_seen,
        last_seen=story.last_seen,
        first_published=story.first_seen,
        last_published=story.last_seen,
        span_days=span_days(story.first_seen, story.last_seen),
        sources=list(story.sources),
        members=[
            MemberBrief(id=m.id, title=m.title, url=m.url, source=m.feed, published=m.published)
            for m in story.members
        ],
        merged_from=list(story.history.merged_from),
        split_from=[SplitOut(id=i, split_at=at) for i, at in story.history.split_from],
        split_into=[SplitOut(id=i, split_at=at) for i, at in story.history.split_into],
    )


def cluster_detail_out(detail: ClusterDetail) -> ClusterDetailOut:
    s = detail.summary
    return ClusterDetailOut(
        id=s.id,
        requested_id=detail.requested_id,
        merged_from=list(detail.merged_from),
        split_from=[SplitOut(id=i, split_at=at) for i, at in detail.split_from],
        split_into=[SplitOut(id=i, split_at=at) for i, at in detail.split_into],
        title=s.title,  # the representative's (storage applies the one rule)
        size=s.size,
        first_seen=s.first_seen,
        last_seen=s.last_seen,
        first_published=s.first_seen,
        last_published=s.last_seen,
        span_days=span_days(s.first_seen, s.last_seen),
        sources=list(s.sources),
        members=[
            Evidence(
                id=m.id,
                title=m.title,
                url=m.url,
                feed_id=m.feed_id,
                source=m.feed,
                published=m.published,
                tier=m.tier,
                similarity=m.similarity,
                matched_article_id=m.matched_article_id,
                copy_group=m.copy_group,
            )
            for m in detail.articles
        ],
    )


def article_out(a: ArticleInfo) -> ArticleOut:
    return ArticleOut(
        id=a.id,
        feed_id=a.feed_id,
        source=a.feed,
        title=a.title,
        url=a.url,
        author=a.author,
        published=a.published,
        date_source=a.date_source,
        fetched_at=a.fetched_at,
        language=a.language,
        story_id=a.cluster,
        copy_group=a.copy_group,
        revision=a.revision,
        summary=a.summary,
        text=a.text,
    )


def feed_out(f: FeedInfo, *, flag_after_errors: int) -> FeedOut:
    return FeedOut.model_validate(
        {**dataclasses.asdict(f), "status": f.status(flag_after_errors=flag_after_errors)}
    )
