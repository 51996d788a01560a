"""Read queries behind the published outputs (output feeds, JSON API, web page).

A published story is a story cluster together with its member articles, read
in two statements whatever the page size: the page of clusters, then all their
members. Filters: time window, minimum size, minimum number of sources and feed
tag (``feeds.tags`` is comma-separated; a story matches when any member's feed
carries the tag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - a field type of a dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import distinct, func, literal, select

from newsfold.errors import NotFoundError
from newsfold.storage.history import StoryHistory, changed_at, histories, history, resolve
from newsfold.storage.tables import ArticleRow, ClusterRow, FeedRow, MembershipRow
from newsfold.types import Level

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

    from sqlalchemy import ScalarSelect, Select
    from sqlalchemy.orm import Session

_T = TypeVar("_T")

# Enough of an article's text to stand in for a missing summary (~300 chars shown).
SNIPPET_CHARS = 400


@dataclass(frozen=True, slots=True)
class PublishedMember:
    id: int
    title: str
    url: str | None
    feed_id: int
    feed: str  # feed title, or its URL when untitled
    feed_site_url: str | None
    author: str | None
    published: datetime
    summary: str
    snippet: str  # the first SNIPPET_CHARS characters of the text
    tier: str
    similarity: float
    matched_article_id: int | None


@dataclass(frozen=True, slots=True)
class PublishedStory:
    id: int
    size: int
    first_seen: datetime
    last_seen: datetime
    members: tuple[PublishedMember, ...]  # earliest published first
    # When its content last changed (``history.changed_at``); None: unknown, last_seen stands.
    changed_at: datetime | None = None
    # Merges and splits: filled for one story (``published_story``), and for a list that
    # asks (``published_stories(with_history=True)``: the JSON API's).
    history: StoryHistory = field(default_factory=StoryHistory)

    @property
    def updated(self) -> datetime:
        """An output feed entry's updated time: moves when articles join or leave (never
        before the latest publication), not when re-clustering rewrites the same story."""
        if self.changed_at is None or self.changed_at < self.last_seen:
            return self.last_seen
        return self.changed_at

    @property
    def sources(self) -> tuple[str, ...]:
        """Feed names, distinct, in order of first appearance."""
        return tuple(dict.fromkeys(m.feed for m in self.members))


@dataclass(frozen=True, slots=True)
class StoryFilter:
    since: datetime | None = None  # seen at or after (last_seen)
    until: datetime | None = None  # first seen at or before (first_seen)
    min_size: int = 1
    tags: tuple[str, ...] = ()  # any of these
    min_sources: int = 1  # distinct outlets, named as ``PublishedStory.sources`` names them


class PublishedMixin:
    if TYPE_CHECKING:

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    def published_stories(
        self,
        flt: StoryFilter | None = None,
        *,
        limit: int | None = 50,
        offset: int = 0,
        with_history: bool = False,
    ) -> list[PublishedStory]:
        """Stories newest first (by last article seen), each with all its members (and,
        ``with_history``, its merges and splits: one more statement for the page)."""
        flt = flt or StoryFilter()
        with self.session() as s:
            stmt = _filtered(select(ClusterRow), flt)
            stmt = stmt.order_by(ClusterRow.last_seen.desc(), ClusterRow.id.desc()).offset(offset)
            if limit:
                stmt = stmt.limit(limit)
            rows = list(s.scalars(stmt))
            ids = [r.id for r in rows]
            members = _members(s, ids)
            changed = changed_at(s, ids)
            past = histories(s, ids) if with_history else {}
            return [
                PublishedStory(
                    r.id,
                    r.size,
                    r.first_seen,
                    r.last_seen,
                    members.get(r.id, ()),
                    changed_at=changed.get(r.id),
                    history=past.get(r.id, StoryHistory()),
                )
                for r in rows
            ]

    def count_published_stories(self, flt: StoryFilter | None = None) -> int:
        with self.session() as s:
            stmt = _filtered(select(func.count()).select_from(ClusterRow), flt or StoryFilter())
            return int(s.scalar(stmt) or 0)

    def published_story(self, story_id: int) -> PublishedStory:
        """One story (a merged-away id resolves to its survivor) with its members."""
        with self.session() as s:
            cid = resolve(s, story_id)
            row = s.get(ClusterRow, (Level.STORIES, cid))
            if row is None:
                raise NotFoundError(f"no such story: {story_id}")
            members = _members(s, [cid]).get(cid, ())
            return PublishedStory(
                row.id,
                row.size,
                row.first_seen,
                row.last_seen,
                members,
                changed_at=changed_at(s, [cid]).get(cid),
                history=history(s, cid),
            )


def _filtered(stmt: Select[_T], flt: StoryFilter) -> Select[_T]:
    stmt = stmt.where(
        ClusterRow.level == Level.STORIES,
        ClusterRow.merged_into.is_(None),
        ClusterRow.size >= flt.min_size,
    )
    if flt.since is not None:
        stmt = stmt.where(ClusterRow.last_seen >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(ClusterRow.first_seen <= flt.until)
    if flt.tags:
        stmt = stmt.where(ClusterRow.id.in_(_tagged(flt.tags)))
    if flt.min_sources > 1:
        # A story needs an article per source: the size test lets the index skip small ones
        # before the (correlated, per-story) count runs.
        stmt = stmt.where(ClusterRow.size >= flt.min_sources, _source_count() >= flt.min_sources)
    return stmt


def _source_count() -> ScalarSelect[int]:
    """Distinct source names of the story in the enclosing query (``PublishedStory.sources``)."""
    name = func.coalesce(func.nullif(FeedRow.title, ""), FeedRow.url)
    return (
        select(func.count(distinct(name)))
        .select_from(MembershipRow)
        .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
        .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
        .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id == ClusterRow.id)
        .scalar_subquery()
    )


def _tagged(tags: Sequence[str]) -> Select[int]:
    # Wrap the list in commas so "world" never matches "worldcup".
    wrapped = literal(",") + FeedRow.tags + literal(",")
    cond = wrapped.contains(f",{tags[0]},", autoescape=True)
    for tag in tags[1:]:
        cond = cond | wrapped.contains(f",{tag},", autoescape=True)
    return (
        select(MembershipRow.cluster_id)
        .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
        .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
        .where(MembershipRow.level == Level.STORIES, cond)
    )


def _members(s: Session, ids: list[int]) -> dict[int, tuple[PublishedMember, ...]]:
    out: dict[int, list[PublishedMember]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        stmt = (
            select(
                MembershipRow.cluster_id,
                MembershipRow.tier,
                MembershipRow.similarity,
                MembershipRow.matched_article_id,
                ArticleRow.id,
                ArticleRow.title,
                ArticleRow.url,
                ArticleRow.feed_id,
                ArticleRow.author,
                ArticleRow.published,
                ArticleRow.summary,
                func.substr(ArticleRow.text, 1, SNIPPET_CHARS),
                FeedRow.title,
                FeedRow.url,
                FeedRow.site_url,
            )
            .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
            .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
            .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id.in_(chunk))
            .order_by(MembershipRow.cluster_id, ArticleRow.published, ArticleRow.id)
        )
        for row in s.execute(stmt):
            (cid, tier, sim, matched, aid, title, url, feed_id, author, published) = row[:10]
            summary, snippet, ftitle, furl, fsite = row[10:]
            out.setdefault(int(cid), []).append(
                PublishedMember(
                    id=int(aid),
                    title=title,
                    url=url,
                    feed_id=int(feed_id),
                    feed=ftitle or furl,
                    feed_site_url=fsite,
                    author=author,
                    published=published,
                    summary=summary or "",
                    snippet=snippet or "",
                    tier=tier,
                    similarity=float(sim),
                    matched_article_id=None if matched is None else int(matched),
                )
            )
    return {k: tuple(v) for k, v in out.items()}
