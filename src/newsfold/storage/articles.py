"""Article rows shared by the feed and ingest sides: which entries exist, and deletion
that keeps cluster sizes equal to their memberships."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from newsfold.storage.search_index import unindex_articles
from newsfold.storage.tables import ArticleRow, ClusterRow, MembershipRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy.orm import Session


def existing_entries(s: Session, feed_id: int, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(keys), 500):  # keep IN lists short for SQLite
        chunk = keys[start : start + 500]
        for key, aid, chash in s.execute(
            select(ArticleRow.entry_key, ArticleRow.id, ArticleRow.content_hash).where(
                ArticleRow.feed_id == feed_id, ArticleRow.entry_key.in_(chunk)
            )
        ):
            found[key] = (int(aid), chash)
    return found


def forget_articles(s: Session, ids: Iterable[int]) -> None:
    """Delete articles (and their search index entries) and keep cluster sizes equal to
    their memberships."""
    ids = list(ids)
    forget_memberships(s, ids)
    unindex_articles(s, ids)
    for start in range(0, len(ids), 500):
        s.execute(delete(ArticleRow).where(ArticleRow.id.in_(ids[start : start + 500])))


def forget_memberships(s: Session, ids: Sequence[int]) -> None:
    """Take articles out of their clusters; sizes follow, empty clusters go."""
    touched: set[tuple[str, int]] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        touched.update(
            (lvl, int(cid))
            for lvl, cid in s.execute(
                select(MembershipRow.level, MembershipRow.cluster_id).where(
                    MembershipRow.article_id.in_(chunk)
                )
            )
        )
        s.execute(delete(MembershipRow).where(MembershipRow.article_id.in_(chunk)))
    for level, cid in touched:
        size = s.scalar(
            select(func.count()).where(
                MembershipRow.level == level, MembershipRow.cluster_id == cid
            )
        )
        if not size:
            s.execute(delete(ClusterRow).where(ClusterRow.level == level, ClusterRow.id == cid))
        else:
            s.execute(
                update(ClusterRow)
                .where(ClusterRow.level == level, ClusterRow.id == cid)
                .values(size=size)
            )
