"""Read queries behind the CLI and the API: clusters, articles, statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from newsfold.errors import NotFoundError
from newsfold.representative import display_title
from newsfold.storage.history import StoryHistory, histories, history
from newsfold.storage.ingest import stored_docs
from newsfold.storage.records import (
    ArticleInfo,
    ClusterDetail,
    ClusterMember,
    ClusterSummary,
    Stats,
)
from newsfold.storage.tables import ArticleRow, ClusterRow, FeedRow, MembershipRow, MergeRow
from newsfold.types import Level, Tier

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

    from newsfold.dedup import StoredDoc


# Enough of an untitled report's text to derive a title from.
_TITLE_TEXT_CHARS = 300


def _feed_name(title: str | None, url: str) -> str:
    return title or url


class QueriesMixin:
    if TYPE_CHECKING:

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    # --- clusters ------------------------------------------------------------------------

    def list_clusters(
        self,
        *,
        level: Level = Level.STORIES,
        since: datetime | None = None,
        min_size: int = 1,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ClusterSummary]:
        """Clusters newest first (by last article seen)."""
        with self.session() as s:
            stmt = select(ClusterRow).where(ClusterRow.level == level, ClusterRow.size >= min_size)
            if since is not None:
                stmt = stmt.where(ClusterRow.last_seen >= since)
            stmt = stmt.order_by(ClusterRow.last_seen.desc(), ClusterRow.id.desc()).offset(offset)
            if limit:
                stmt = stmt.limit(limit)
            rows = list(s.scalars(stmt))
            sources, groups, titles = self._sources(s, level, [r.id for r in rows])
            return [
                _summary(r, sources.get(r.id, ()), groups.get(r.id, 1), titles.get(r.id))
                for r in rows
            ]

    def _sources(
        self, s: Session, level: Level, ids: list[int]
    ) -> tuple[dict[int, tuple[str, ...]], dict[int, int], dict[int, str]]:
        """Per cluster: its feeds in order of first appearance, its copy groups' count,
        and its representative's title."""
        names: dict[int, list[str]] = {}
        groups: dict[int, set[int]] = {}
        titles: dict[int, str] = {}
        copy_m = aliased(MembershipRow)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            stmt = (
                select(
                    MembershipRow.cluster_id,
                    FeedRow.title,
                    FeedRow.url,
                    copy_m.cluster_id,
                    ArticleRow.title,
                    func.substr(ArticleRow.text, 1, _TITLE_TEXT_CHARS),
                    ArticleRow.url,
                )
                .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
                .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
                .outerjoin(
                    copy_m, (copy_m.article_id == ArticleRow.id) & (copy_m.level == Level.COPIES)
                )
                .where(MembershipRow.level == level, MembershipRow.cluster_id.in_(chunk))
                # The representative's order: its first row per cluster is the representative.
                .order_by(MembershipRow.cluster_id, ArticleRow.published, ArticleRow.id)
            )
            for cid, title, url, copy_id, article_title, opening, link in s.execute(stmt):
                if int(cid) not in titles:
                    titles[int(cid)] = display_title(article_title, opening, link)
                found = names.setdefault(int(cid), [])
                name = _feed_name(title, url)
                if name not in found:
                    found.append(name)
                if copy_id is not None:
                    groups.setdefault(int(cid), set()).add(int(copy_id))
        return (
            {k: tuple(v) for k, v in names.items()},
            {k: len(v) for k, v in groups.items()},
            titles,
        )

    @staticmethod
    def _resolve(s: Session, cluster_id: int, level: Level) -> int:
        survivor = s.scalar(
            select(MergeRow.survivor_id).where(
                MergeRow.level == level, MergeRow.absorbed_id == cluster_id
            )
        )
        return int(survivor) if survivor is not None else cluster_id

    def story_histories(self, story_ids: Sequence[int]) -> dict[int, StoryHistory]:
        """The merges and splits of many stories (a listed page) at once; a story with
        none is left out."""
        with self.session() as s:
            return histories(s, story_ids)

    def cluster_detail(self, cluster_id: int, *, level: Level = Level.STORIES) -> ClusterDetail:
        with self.session() as s:
            cid = self._resolve(s, cluster_id, level)
            row = s.get(ClusterRow, (level, cid))
            if row is None:
                raise NotFoundError(f"no such cluster: {cluster_id} (level {level})")
            copy_m = aliased(MembershipRow)
            stmt = (
                select(
                    ArticleRow,
                    FeedRow.title,
                    FeedRow.url,
                    MembershipRow,
                    copy_m.cluster_id,
                    func.substr(ArticleRow.text, 1, _TITLE_TEXT_CHARS),
                )
                .join(MembershipRow, MembershipRow.article_id == ArticleRow.id)
                .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
                .outerjoin(
                    copy_m, (copy_m.article_id == ArticleRow.id) & (copy_m.level == Level.COPIES)
                )
                .where(MembershipRow.level == level, MembershipRow.cluster_id == cid)
                .order_by(ArticleRow.published, ArticleRow.id)
            )
            found = list(s.execute(stmt))
            members = tuple(
                ClusterMember(
                    id=a.id,
                    title=a.title,
                    url=a.url,
                    feed_id=a.feed_id,
                    feed=_feed_name(ftitle, furl),
                    published=a.published,
                    similarity=m.similarity,
                    tier=m.tier,
                    matched_article_id=m.matched_article_id,
                    copy_group=copy_id,
                )
                for a, ftitle, furl, m, copy_id, opening in found
            )
            if level is Level.STORIES:
                past = history(s, cid)
            else:
                merged = s.scalars(
                    select(MergeRow.absorbed_id)
                    .where(MergeRow.level == level, MergeRow.survivor_id == cid)
                    .order_by(MergeRow.absorbed_id)
                )
                past = StoryHistory(merged_from=tuple(int(x) for x in merged))
            sources = tuple(dict.fromkeys(m.feed for m in members))
            groups = len({m.copy_group for m in members if m.copy_group is not None}) or 1
            # Members come in the representative's order: the first one stands for the story.
            title = (
                display_title(found[0][0].title, found[0][5], found[0][0].url) if found else None
            )
            return ClusterDetail(
                summary=_summary(row, sources, groups, title),
                articles=members,
                merged_from=past.merged_from,
                requested_id=cluster_id,
                split_from=past.split_from,
                split_into=past.split_into,
            )

    # --- articles ------------------------------------------------------------------------

    def list_articles(
        self, *, feed_id: int | None = None, limit: int | None = 50, offset: int = 0
    ) -> list[ArticleInfo]:
        with self.session() as s:
            stmt = self._article_select()
            if feed_id is not None:
                stmt = stmt.where(ArticleRow.feed_id == feed_id)
            stmt = stmt.order_by(ArticleRow.published.desc(), ArticleRow.id.desc()).offset(offset)
            if limit:
                stmt = stmt.limit(limit)
            return [_article(*r, with_text=False) for r in s.execute(stmt)]

    def get_article(self, article_id: int) -> ArticleInfo:
        with self.session() as s:
            row = s.execute(self._article_select().where(ArticleRow.id == article_id)).first()
            if row is None:
                raise NotFoundError(f"no such article: {article_id}")
            return _article(*row, with_text=True)

    @staticmethod
    def _article_select() -> Any:  # Select's generics differ between SQLAlchemy 2.0 and 2.1
        story = aliased(MembershipRow)
        copy = aliased(MembershipRow)
        return (
            select(ArticleRow, FeedRow.title, FeedRow.url, story.cluster_id, copy.cluster_id)
            .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
            .outerjoin(story, (story.article_id == ArticleRow.id) & (story.level == Level.STORIES))
            .outerjoin(copy, (copy.article_id == ArticleRow.id) & (copy.level == Level.COPIES))
        )

    def merge_count(self) -> int:
        """Story merges recorded so far (a worker's index is stale when this moves)."""
        from newsfold.storage.ingest import merge_count

        with self.session() as s:
            return merge_count(s)

    def load_window(self, *, since: datetime) -> Iterator[StoredDoc]:
        """Stored sketches of articles inside the clustering window, for the index rebuild."""
        with self.session() as s:
            yield from stored_docs(s, since=since)

    # --- stats ---------------------------------------------------------------------------

    def stats(self) -> Stats:
        with self.session() as s:
            tiers = dict(
                s.execute(
                    select(MembershipRow.tier, func.count())
                    .where(MembershipRow.level == Level.COPIES)
                    .group_by(MembershipRow.tier)
                ).all()
            )
            story_joins = s.scalar(
                select(func.count()).where(
                    MembershipRow.level == Level.STORIES, MembershipRow.tier == str(Tier.STORY)
                )
            )
            by_level = dict(
                s.execute(select(ClusterRow.level, func.count()).group_by(ClusterRow.level)).all()
            )
            exact = int(tiers.get(str(Tier.EXACT), 0))
            near = int(tiers.get(str(Tier.NEAR), 0))
            return Stats(
                feeds=s.scalar(select(func.count()).select_from(FeedRow)) or 0,
                feeds_erroring=s.scalar(select(func.count()).where(FeedRow.error_count > 0)) or 0,
                feeds_disabled=s.scalar(
                    select(func.count()).where(FeedRow.disabled_reason.is_not(None))
                )
                or 0,
                articles=s.scalar(select(func.count()).select_from(ArticleRow)) or 0,
                clusters=int(by_level.get(Level.STORIES, 0)),
                copy_groups=int(by_level.get(Level.COPIES, 0)),
                multi_article_clusters=s.scalar(
                    select(func.count()).where(
                        ClusterRow.level == Level.STORIES, ClusterRow.size > 1
                    )
                )
                or 0,
                duplicates=exact + near,
                exact_duplicates=exact,
                near_duplicates=near,
                story_joins=int(story_joins or 0),
                errors=s.scalar(select(func.coalesce(func.sum(FeedRow.error_count), 0))) or 0,
            )


def _summary(
    row: ClusterRow, sources: tuple[str, ...], copy_groups: int = 1, title: str | None = None
) -> ClusterSummary:
    return ClusterSummary(
        copy_groups=copy_groups if row.level == Level.STORIES else 1,
        story=row.parent_id if row.level == Level.COPIES else None,
        id=row.id,
        level=Level(row.level),
        title=title or row.title,
        size=row.size,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        sources=sources,
    )


def _article(
    a: ArticleRow,
    feed_title: str | None,
    feed_url: str,
    story_id: int | None,
    copy_id: int | None,
    *,
    with_text: bool,
) -> ArticleInfo:
    return ArticleInfo(
        id=a.id,
        feed_id=a.feed_id,
        feed=_feed_name(feed_title, feed_url),
        title=a.title,
        url=a.url,
        published=a.published,
        date_source=a.date_source,
        fetched_at=a.fetched_at,
        language=a.language,
        cluster=story_id,
        copy_group=copy_id,
        author=a.author,
        summary=a.summary if with_text else "",
        text=a.text if with_text else "",
        entry_key=a.entry_key,
        revision=a.revision,
    )
