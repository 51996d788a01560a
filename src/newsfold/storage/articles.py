"""Article rows shared by the feed, ingest and retention sides: which entries exist, and
the one way articles are deleted (``delete_articles``).

Deleting keeps the clusters what the remaining articles make them: a cluster
shrinks (size, first and last seen), keeps its id (a founder's id stays the
cluster's id, as in ``Deduplicator.remove``), and goes once it is empty, with the
merge records that resolved to it and the split records that name it. Every
deletion moves the deletions token (``storage.state``), so other workers rebuild
their in-memory indexes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, delete, func, select, update

from newsfold.storage import state
from newsfold.storage.records import Deleted
from newsfold.storage.search_index import unindex_articles
from newsfold.storage.tables import (
    ArticleRow,
    ClusterRow,
    MembershipRow,
    MergeRow,
    SplitRow,
    UTCDateTime,
)
from newsfold.types import Level

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.orm import Session

CHUNK = 500  # ids per IN list: SQLite allows few bound parameters per statement


def existing_entries(s: Session, feed_id: int, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        for key, aid, chash in s.execute(
            select(ArticleRow.entry_key, ArticleRow.id, ArticleRow.content_hash).where(
                ArticleRow.feed_id == feed_id, ArticleRow.entry_key.in_(chunk)
            )
        ):
            found[key] = (int(aid), chash)
    return found


def delete_articles(s: Session, ids: Iterable[int]) -> Deleted:
    """Delete articles and their search index entries: every deletion of articles goes through here.

    Returns what went: the articles, and the copy groups and stories they emptied.
    """
    ids = sorted(set(ids))
    if not ids:
        return Deleted()
    emptied = forget_memberships(s, ids)
    unindex_articles(s, ids)
    gone = 0
    for start in range(0, len(ids), CHUNK):
        result = s.execute(delete(ArticleRow).where(ArticleRow.id.in_(ids[start : start + CHUNK])))
        gone += int(cast("Any", result).rowcount or 0)
    state.note_deletion(s)
    return Deleted(
        articles=gone,
        copies=len(emptied.get(Level.COPIES, ())),
        stories=len(emptied.get(Level.STORIES, ())),
    )


def forget_memberships(s: Session, ids: Sequence[int]) -> dict[str, list[int]]:
    """Take articles out of their clusters; the clusters shrink, empty ones go.

    Returns the emptied clusters' ids by level.
    """
    touched: dict[str, set[int]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for level, cid in s.execute(
            select(MembershipRow.level, MembershipRow.cluster_id).where(
                MembershipRow.article_id.in_(chunk)
            )
        ):
            touched.setdefault(level, set()).add(int(cid))
        s.execute(delete(MembershipRow).where(MembershipRow.article_id.in_(chunk)))
    return {level: _shrink(s, level, sorted(cids)) for level, cids in touched.items()}


def _shrink(s: Session, level: str, cids: Sequence[int]) -> list[int]:
    """Set the clusters' size and span from their remaining members; delete the empty ones."""
    # min/max keep the column's type, so the times come back as aware UTC datetimes.
    left: dict[int, tuple[int, datetime, datetime]] = {}
    for start in range(0, len(cids), CHUNK):
        chunk = cids[start : start + CHUNK]
        for cid, n, first, last in s.execute(
            select(
                MembershipRow.cluster_id,
                func.count(),
                func.min(ArticleRow.published),
                func.max(ArticleRow.published),
            )
            .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
            .where(MembershipRow.level == level, MembershipRow.cluster_id.in_(chunk))
            .group_by(MembershipRow.cluster_id)
        ):
            left[int(cid)] = (int(n), first, last)
    if left:
        s.connection().execute(
            _SHRINK,
            [
                {"b_level": level, "b_id": cid, "b_n": n, "b_first": f, "b_last": t}
                for cid, (n, f, t) in left.items()
            ],
        )
    empty = [cid for cid in cids if cid not in left]
    for start in range(0, len(empty), CHUNK):
        chunk = empty[start : start + CHUNK]
        s.execute(delete(ClusterRow).where(ClusterRow.level == level, ClusterRow.id.in_(chunk)))
        if level == Level.STORIES:
            _forget_splits(s, chunk)
        # Ids once merged into a story that is gone resolve to nothing now.
        s.execute(delete(MergeRow).where(MergeRow.level == level, MergeRow.survivor_id.in_(chunk)))
    return empty


def _forget_splits(s: Session, story_ids: Sequence[int]) -> None:
    """Delete the split records of stories that are gone, on either side of the split, with
    those of the ids merged into them (which resolve to nothing once the merges go)."""
    absorbed = s.scalars(
        select(MergeRow.absorbed_id).where(
            MergeRow.level == Level.STORIES, MergeRow.survivor_id.in_(story_ids)
        )
    )
    gone = sorted({*story_ids, *(int(i) for i in absorbed)})
    step = CHUNK // 2  # each id is bound twice
    for start in range(0, len(gone), step):
        chunk = gone[start : start + step]
        s.execute(
            delete(SplitRow).where(SplitRow.story_id.in_(chunk) | SplitRow.from_id.in_(chunk))
        )


def _shrink_statement() -> Any:
    table = cast("Table", ClusterRow.__table__)
    c = table.c
    return (
        update(table)
        .where(c.level == bindparam("b_level"), c.id == bindparam("b_id"))
        .values(
            size=bindparam("b_n"),
            first_seen=bindparam("b_first", type_=UTCDateTime()),
            last_seen=bindparam("b_last", type_=UTCDateTime()),
        )
    )


_SHRINK = _shrink_statement()
