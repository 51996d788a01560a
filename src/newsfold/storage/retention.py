"""What retention removes, found and counted in SQL (the deleting is ``articles.delete_articles``).

An article expires when its story time (``stream_at``) is before the cutoff and
its story is closed: no member of the story has a story time inside the story
window. So a story that still takes reports keeps all of them, and one that has
closed loses its old members together, growing no holes while it can still change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import case, delete, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from newsfold.errors import StorageError
from newsfold.storage import state
from newsfold.storage.articles import CHUNK
from newsfold.storage.records import Deleted
from newsfold.storage.tables import ArticleRow, FetchLogRow, MembershipRow
from newsfold.types import Level

if TYPE_CHECKING:
    import contextlib
    from datetime import datetime

    from sqlalchemy import Engine, Select
    from sqlalchemy.orm import Session

# The tables a prune deletes from, and ``feeds``, whose rows every poll rewrites (with
# the learned boilerplate model, stored out of line): on PostgreSQL a plain VACUUM makes
# their dead rows' space reusable, locking out neither reads nor writes. With autovacuum
# off or behind, the space of every day's deletions and rewrites would stay allocated.
VACUUMED = (
    "articles",
    "memberships",
    "clusters",
    "cluster_merges",
    "story_splits",
    "fetch_log",
    "state",
    "feeds",
    "article_search",
    "alert_outbox",
)


def expired_select(*, cutoff: datetime, open_since: datetime) -> Select[int]:
    """Ids of articles before ``cutoff`` whose story has no member since ``open_since``."""
    member = aliased(MembershipRow)
    newer = aliased(ArticleRow)
    open_stories = (
        select(member.cluster_id)
        .join(newer, newer.id == member.article_id)
        .where(member.level == Level.STORIES, newer.stream_at >= open_since)
    )
    story = aliased(MembershipRow)
    return (
        select(ArticleRow.id)
        .outerjoin(story, (story.article_id == ArticleRow.id) & (story.level == Level.STORIES))
        .where(
            ArticleRow.stream_at < cutoff,
            or_(story.cluster_id.is_(None), story.cluster_id.not_in(open_stories)),
        )
    )


def expired_ids(
    s: Session, *, cutoff: datetime, open_since: datetime, limit: int, after_id: int = 0
) -> list[int]:
    """The next ``limit`` expired articles (lowest ids first) past ``after_id``."""
    stmt = (
        expired_select(cutoff=cutoff, open_since=open_since)
        .where(ArticleRow.id > after_id)
        .order_by(ArticleRow.id)
        .limit(limit)
    )
    return [int(i) for i in s.scalars(stmt)]


def count_expired(s: Session, *, cutoff: datetime, open_since: datetime) -> Deleted:
    """What deleting every expired article would take, deleting nothing."""
    expired = expired_select(cutoff=cutoff, open_since=open_since).subquery()
    gone = select(expired.c.id)
    articles = int(s.scalar(select(func.count()).select_from(expired)) or 0)
    if not articles:
        return Deleted()
    touched = (
        select(MembershipRow.level, MembershipRow.cluster_id)
        .where(MembershipRow.article_id.in_(gone))
        .distinct()
        .subquery()
    )
    # A cluster empties when every member it has is among the expired.
    per_cluster = (
        select(
            MembershipRow.level,
            func.count().label("n"),
            func.sum(case((MembershipRow.article_id.in_(gone), 1), else_=0)).label("gone"),
        )
        .join(
            touched,
            (touched.c.level == MembershipRow.level)
            & (touched.c.cluster_id == MembershipRow.cluster_id),
        )
        .group_by(MembershipRow.level, MembershipRow.cluster_id)
        .subquery()
    )
    emptied: dict[str, int] = dict(
        s.execute(
            select(per_cluster.c.level, func.count())
            .where(per_cluster.c.n == per_cluster.c.gone)
            .group_by(per_cluster.c.level)
        ).all()
    )
    return Deleted(
        articles=articles,
        copies=int(emptied.get(Level.COPIES, 0)),
        stories=int(emptied.get(Level.STORIES, 0)),
    )


def _over_limit(s: Session, keep: int) -> dict[int, int]:
    """Feeds with more than ``keep`` fetch-log rows, and how many too many."""
    return {
        int(feed_id): int(n) - keep
        for feed_id, n in s.execute(
            select(FetchLogRow.feed_id, func.count())
            .group_by(FetchLogRow.feed_id)
            .having(func.count() > keep)
        )
    }


def fetch_log_excess(s: Session, keep: int) -> int:
    """Fetch-log rows past the newest ``keep`` of each feed."""
    return sum(_over_limit(s, keep).values())


def trim_fetch_log(s: Session, feed_id: int, keep: int, *, limit: int | None = None) -> int:
    """Delete the feed's fetch-log rows past its newest ``keep`` (at most ``limit``)."""
    stmt = (
        select(FetchLogRow.id)
        .where(FetchLogRow.feed_id == feed_id)
        .order_by(FetchLogRow.started_at.desc(), FetchLogRow.id.desc())
        .offset(keep)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    ids = [int(i) for i in s.scalars(stmt)]
    for start in range(0, len(ids), CHUNK):
        s.execute(delete(FetchLogRow).where(FetchLogRow.id.in_(ids[start : start + CHUNK])))
    return len(ids)


class RetentionMixin:
    """Storage's reads and short writes for ``newsfold prune`` (one transaction each)."""

    if TYPE_CHECKING:
        engine: Engine
        dialect: str

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    def reclaim(self) -> None:
        """Make the space of deleted rows reusable (PostgreSQL: plain ``VACUUM (ANALYZE)``).

        SQLite reuses a deleted row's pages by itself (the file does not shrink, nor grow).
        """
        if self.dialect != "postgresql":
            return
        try:
            # VACUUM cannot run inside a transaction.
            engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f"VACUUM (ANALYZE) {', '.join(VACUUMED)}"))
        except SQLAlchemyError as e:
            raise StorageError(f"database error: VACUUM after a prune failed: {e}") from e

    def count_expired(self, *, cutoff: datetime, open_since: datetime) -> Deleted:
        with self.session() as s:
            return count_expired(s, cutoff=cutoff, open_since=open_since)

    def fetch_log_excess(self, keep: int) -> int:
        with self.session() as s:
            return fetch_log_excess(s, keep)

    def feeds_over_log_limit(self, keep: int) -> list[int]:
        with self.session() as s:
            return sorted(_over_limit(s, keep))

    def trim_fetch_log(self, feed_id: int, keep: int, *, limit: int) -> int:
        with self.session(write=True) as s:
            return trim_fetch_log(s, feed_id, keep, limit=limit)

    def last_prune(self) -> datetime | None:
        with self.session() as s:
            return state.last_prune(s)

    def set_last_prune(self, at: datetime) -> None:
        with self.session(write=True) as s:
            state.set_last_prune(s, at)

    def deletions(self) -> bytes:
        with self.session() as s:
            return state.deletions(s)
