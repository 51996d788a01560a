"""Writes of one feed batch: articles, their cluster placements, and the feed's new state.

A ``Batch`` lives inside ``Storage.batch()`` — one transaction holding the
cluster-assignment lock — so a crash at any point leaves no half-placed article.
It takes and returns records (``storage.records``, ``types``): the caller decides
what changes, the batch writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

from newsfold.storage import state
from newsfold.storage.alerts import raise_alerts
from newsfold.storage.articles import delete_articles, forget_memberships
from newsfold.storage.feeds import feed_info, log_fetch, write_update
from newsfold.storage.history import story_id_free, version, write_consolidation
from newsfold.storage.retention import expired_ids
from newsfold.storage.search_index import index_articles
from newsfold.storage.tables import (
    ArticleRow,
    ClusterRow,
    FeedRow,
    MembershipRow,
    MergeRow,
    UTCDateTime,
)
from newsfold.types import Level, Tier

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from datetime import datetime

    from sqlalchemy import Dialect, Table, Update
    from sqlalchemy.orm import Session

    from newsfold.config import AlertRule
    from newsfold.dedup import Sketch, StoredDoc
    from newsfold.storage.records import Deleted, FeedInfo, FeedUpdate, FetchLogEntry
    from newsfold.types import Article, Placement


class Batch:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- reads inside the transaction ----------------------------------------------

    def feed(self, feed_id: int) -> FeedInfo | None:
        """The feed as stored now; ``None`` once it has been removed."""
        row = self.session.get(FeedRow, feed_id)
        return None if row is None else feed_info(row)

    def recent_published(self, feed_id: int, limit: int = 50) -> list[datetime]:
        """Publication times the feed itself gave its latest articles (for its cadence)."""
        return list(
            self.session.scalars(
                select(ArticleRow.published)
                .where(ArticleRow.feed_id == feed_id, ArticleRow.date_source == "feed")
                .order_by(ArticleRow.published.desc())
                .limit(limit)
            )
        )

    def log(self, feed_id: int, entry: FetchLogEntry, *, keep: int) -> None:
        """Append to the feed's fetch history (the oldest lines past ``keep`` go)."""
        log_fetch(self.session, feed_id, entry, keep=keep)

    def save_feed(self, feed_id: int, update: FeedUpdate) -> bool:
        """Write the feed's state after a poll; returns whether it moved to ``update.moved_to``.

        A permanent redirect is followed only when no other feed is subscribed there.
        """
        row = self.session.get(FeedRow, feed_id)
        if row is None:
            return False
        move = update.moved_to is not None and not self.url_taken(update.moved_to, feed_id)
        write_update(row, update, move=move)
        return move

    def merge_count(self) -> int:
        return merge_count(self.session)

    def story_id_free(self, article_id: int) -> bool:
        """Whether ``article_id`` may become a new story's id (it never was one)."""
        return story_id_free(self.session, article_id)

    def record_consolidation(
        self,
        moves: Mapping[int, int],
        merges: Sequence[tuple[int, int]],
        splits: Sequence[tuple[int, int]],
        *,
        now: datetime,
        evidence: Mapping[int, tuple[int, float]] | None = None,
    ) -> None:
        """Write what a story consolidation changed (see ``history.write_consolidation``)."""
        write_consolidation(self.session, moves, merges, splits, now=now, evidence=evidence)

    def signatures(self, ids: Sequence[int]) -> dict[int, bytes]:
        rows = self.session.execute(
            select(ArticleRow.id, ArticleRow.signature).where(ArticleRow.id.in_(list(ids)))
        )
        return {int(i): bytes(sig) for i, sig in rows}

    def founders(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` that founded a cluster (either level) which has other members."""
        rows = self.session.scalars(
            select(MembershipRow.article_id)
            .join(
                ClusterRow,
                (ClusterRow.level == MembershipRow.level)
                & (ClusterRow.id == MembershipRow.cluster_id),
            )
            .where(
                MembershipRow.article_id.in_(list(ids)),
                MembershipRow.cluster_id == MembershipRow.article_id,
                ClusterRow.size > 1,
            )
        )
        return {int(i) for i in rows}

    def raise_alerts(
        self, story_ids: Iterable[int], rules: Sequence[AlertRule], *, now: datetime
    ) -> int:
        """Queue the alerts the placed stories fire, in this transaction (``storage.alerts``)."""
        return raise_alerts(self.session, story_ids, rules, now=now)

    def unplace(self, article_id: int) -> None:
        forget_memberships(self.session, [article_id])

    def deletions(self) -> bytes:
        """The deletions token (``storage.state``): it moves when articles are deleted."""
        return state.deletions(self.session)

    def expired(self, *, cutoff: datetime, open_since: datetime, limit: int) -> list[int]:
        """The next ``limit`` articles retention removes (``retention.expired_select``)."""
        return expired_ids(self.session, cutoff=cutoff, open_since=open_since, limit=limit)

    def delete_articles(self, ids: Sequence[int]) -> Deleted:
        return delete_articles(self.session, ids)

    def url_taken(self, url: str, feed_id: int) -> bool:
        """Another feed is already subscribed at ``url`` (a redirect must not collide)."""
        other = self.session.scalar(select(FeedRow.id).where(FeedRow.url == url))
        return other is not None and other != feed_id

    def docs_after(self, article_id: int, *, since: datetime) -> list[StoredDoc]:
        """Articles written by other workers since this one last looked (catch-up)."""
        # Usually there are none: a primary-key probe answers that, where the full query
        # would walk every membership of the window (its plan starts from the level index).
        if article_id and not self.session.scalar(
            select(ArticleRow.id).where(ArticleRow.id > article_id).limit(1)
        ):
            return []
        return list(stored_docs(self.session, since=since, after_id=article_id))

    # --- writes ----------------------------------------------------------------------

    def insert_articles(
        self,
        feed_id: int,
        articles: Sequence[Article],
        sketches: Sequence[Sketch],
        stream_times: Sequence[datetime],
    ) -> list[int]:
        if not articles:
            return []
        rows = [
            _article_values(feed_id, a, k) | {"revision": 1, "stream_at": t}
            for a, k, t in zip(articles, sketches, stream_times, strict=True)
        ]
        conn = self.session.connection()
        # Core, not the ORM bulk path: one multi-row INSERT … RETURNING per batch. Ids are
        # matched back by entry key (unique per feed), so the order RETURNING gives them in
        # does not matter. Where a dialect can only keep parameter order by inserting row
        # by row (SQLite), that order is not asked for; rows are still numbered in order.
        ordered = _sorted_returning_is_batched(conn.dialect)
        result = conn.execute(
            insert(_ARTICLES).returning(
                _ARTICLES.c.id, _ARTICLES.c.entry_key, sort_by_parameter_order=ordered
            ),
            rows,
        )
        ids = {key: int(aid) for aid, key in result}
        out = [ids[a.entry_key] for a in articles]
        index_articles(self.session, list(zip(out, articles, strict=True)), fresh=True)
        return out

    def revise_article(self, article_id: int, article: Article, sketch: Sketch | None) -> None:
        """A changed entry: new text and metadata; first-seen time is kept.

        ``sketch`` is the new one when the change re-placed the article, else
        ``None``: the stored sketch stays the one the index holds.
        """
        values = _article_values(article.feed_id, article, sketch)
        del values["fetched_at"]
        self.session.execute(
            update(ArticleRow)
            .where(ArticleRow.id == article_id)
            .values(**values, revision=ArticleRow.revision + 1)
        )
        index_articles(self.session, [(article_id, article)], fresh=False)

    def record_placements(
        self, items: Sequence[tuple[Placement, Article]], *, now: datetime
    ) -> None:
        """Write memberships (with their evidence) and keep cluster rows in step, in bulk.

        Placements are applied in order; a story merge first writes what came
        before it, so every statement sees the clusters as the index saw them.
        """
        pending: list[tuple[Placement, Article]] = []
        for placement, article in items:
            if placement.merged_stories:
                self._write(pending, now=now)
                pending = []
                for absorbed in placement.merged_stories:
                    self._merge(absorbed, placement.story.cluster_id, placement.article_id, now=now)
            pending.append((placement, article))
        self._write(pending, now=now)

    def _write(self, items: Sequence[tuple[Placement, Article]], *, now: datetime) -> None:
        if not items:
            return
        memberships: list[dict[str, Any]] = []
        clusters: dict[tuple[str, int], _ClusterDelta] = {}
        for placement, article in items:
            levels = (
                (Level.COPIES, placement.copy, placement.story.cluster_id),
                (Level.STORIES, placement.story, None),
            )
            for level, join, parent in levels:
                memberships.append(
                    {
                        "article_id": placement.article_id,
                        "level": level,
                        "cluster_id": join.cluster_id,
                        "tier": str(join.tier),
                        "similarity": float(join.similarity),
                        "matched_article_id": join.matched_article_id,
                        "joined_at": now,
                    }
                )
                key = (level, join.cluster_id)
                delta = clusters.get(key)
                if delta is None:
                    # An article that founds its cluster has the cluster's id (see tables.py).
                    new = join.tier is Tier.NEW and join.cluster_id == placement.article_id
                    delta = clusters[key] = _ClusterDelta(new, article.title, article.published)
                delta.add(article.published, parent)
        # Core executemany with one key set per table: the ORM bulk path splits a batch
        # into runs of equal keys (None values left out), which here is one row per run.
        conn = self.session.connection()
        conn.execute(insert(_MEMBERSHIPS), memberships)
        created = [
            {
                "level": level,
                "id": cid,
                "parent_id": d.parent,
                "title": d.title,
                "size": d.size,
                "first_seen": d.first,
                "last_seen": d.last,
                "merged_into": None,
            }
            for (level, cid), d in clusters.items()
            if d.new
        ]
        if created:
            conn.execute(insert(_CLUSTERS), created)
        grown = [
            {
                "b_level": level,
                "b_id": cid,
                "b_n": d.size,
                "b_first": d.first,
                "b_last": d.last,
                "b_parent": d.parent,
            }
            for (level, cid), d in clusters.items()
            if not d.new
        ]
        if grown:
            conn.execute(_GROW, grown)

    def _merge(self, absorbed: int, survivor: int, article_id: int, *, now: datetime) -> None:
        """Fold story ``absorbed`` into ``survivor``; the absorbed id keeps resolving."""
        s = self.session
        gone = s.execute(
            select(ClusterRow.size, ClusterRow.first_seen, ClusterRow.last_seen).where(
                ClusterRow.level == Level.STORIES, ClusterRow.id == absorbed
            )
        ).first()
        if gone is None or absorbed == survivor:
            return
        s.execute(
            update(MembershipRow)
            .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id == absorbed)
            .values(cluster_id=survivor)
        )
        s.execute(
            update(ClusterRow)
            .where(ClusterRow.level == Level.COPIES, ClusterRow.parent_id == absorbed)
            .values(parent_id=survivor)
        )
        # Earlier merges into the absorbed story now resolve straight to the survivor.
        s.execute(
            update(MergeRow)
            .where(MergeRow.level == Level.STORIES, MergeRow.survivor_id == absorbed)
            .values(survivor_id=survivor)
        )
        s.execute(
            insert(MergeRow),
            [
                {
                    "level": Level.STORIES,
                    "absorbed_id": absorbed,
                    "survivor_id": survivor,
                    "article_id": article_id,
                    "merged_at": now,
                }
            ],
        )
        s.connection().execute(
            _GROW,
            [
                {
                    "b_level": Level.STORIES,
                    "b_id": survivor,
                    "b_n": gone.size,
                    "b_first": gone.first_seen,
                    "b_last": gone.last_seen,
                    "b_parent": None,
                }
            ],
        )
        s.execute(
            delete(ClusterRow).where(ClusterRow.level == Level.STORIES, ClusterRow.id == absorbed)
        )


class _ClusterDelta:
    """What one batch adds to one cluster."""

    __slots__ = ("first", "last", "new", "parent", "size", "title")

    def __init__(self, new: bool, title: str, at: datetime) -> None:
        self.new = new
        self.title = title
        self.size = 0
        self.first = at
        self.last = at
        self.parent: int | None = None

    def add(self, at: datetime, parent: int | None) -> None:
        self.size += 1
        self.first = min(self.first, at)
        self.last = max(self.last, at)
        if parent is not None:
            self.parent = parent


def _grow_statement() -> Update:
    """Grow an existing cluster by a batch's members (executemany over ``b_*`` parameters)."""
    table = cast("Table", ClusterRow.__table__)
    c = table.c
    first = bindparam("b_first", type_=UTCDateTime())
    last = bindparam("b_last", type_=UTCDateTime())
    return (
        update(table)
        .where(c.level == bindparam("b_level"), c.id == bindparam("b_id"))
        .values(
            size=c.size + bindparam("b_n"),
            first_seen=case((c.first_seen > first, first), else_=c.first_seen),
            last_seen=case((c.last_seen < last, last), else_=c.last_seen),
            parent_id=func.coalesce(bindparam("b_parent", type_=BigInteger()), c.parent_id),
        )
    )


_GROW = _grow_statement()
_ARTICLES = cast("Table", ArticleRow.__table__)
_MEMBERSHIPS = cast("Table", MembershipRow.__table__)
_CLUSTERS = cast("Table", ClusterRow.__table__)


def _sorted_returning_is_batched(dialect: Dialect) -> bool:
    """Whether ``sort_by_parameter_order`` still lets this dialect insert many rows at once."""
    return bool(
        dialect.insertmanyvalues_implicit_sentinel & InsertmanyvaluesSentinelOpts.ANY_AUTOINCREMENT
    )


def _article_values(feed_id: int, a: Article, k: Sketch | None) -> dict[str, Any]:
    values = {
        "feed_id": feed_id,
        "entry_key": a.entry_key,
        "guid": a.guid,
        "url": a.url,
        "title": a.title,
        "summary": a.summary,
        "text": a.text,
        "author": a.author,
        "language": a.language,
        "published": a.published,
        "date_source": str(a.date_source),
        "updated": a.updated,
        "fetched_at": a.fetched_at,
        "content_hash": a.content_hash,
    }
    if k is not None:
        values |= {"signature": k.signature, "story_sketch": k.story}
    return values


def stored_docs(s: Session, *, since: datetime, after_id: int = 0) -> Iterator[StoredDoc]:
    """Articles inside the clustering window with their sketches and cluster ids."""
    from newsfold.dedup import StoredDoc

    copy_m = (
        select(MembershipRow.article_id, MembershipRow.cluster_id)
        .where(MembershipRow.level == Level.COPIES)
        .subquery()
    )
    story_m = (
        select(MembershipRow.article_id, MembershipRow.cluster_id)
        .where(MembershipRow.level == Level.STORIES)
        .subquery()
    )
    stmt = (
        select(
            ArticleRow.id,
            ArticleRow.feed_id,
            ArticleRow.stream_at,
            ArticleRow.url,
            ArticleRow.content_hash,
            ArticleRow.language,
            ArticleRow.signature,
            ArticleRow.story_sketch,
            copy_m.c.cluster_id,
            story_m.c.cluster_id,
            ArticleRow.fetched_at,
            ArticleRow.title,
        )
        .join(copy_m, copy_m.c.article_id == ArticleRow.id)
        .join(story_m, story_m.c.article_id == ArticleRow.id)
        # What the index holds: published or first seen inside the window (see
        # ``Deduplicator.evict_before``), so a restart rebuilds exactly that.
        .where(
            or_(ArticleRow.stream_at >= since, ArticleRow.fetched_at >= since),
            ArticleRow.id > after_id,
        )
        .order_by(ArticleRow.id)
        .execution_options(yield_per=5000)
    )
    for row in s.execute(stmt):
        yield StoredDoc(
            article_id=int(row[0]),
            feed_id=int(row[1]),
            published=row[2],
            url=row[3],
            content_hash=row[4],
            language=row[5],
            signature=bytes(row[6]),
            story=bytes(row[7]),
            copy_id=int(row[8]),
            story_id=int(row[9]),
            seen=row[10],
            title=row[11] or "",
        )


def merge_count(s: Session) -> int:
    """The partition's version: changes with every story merge and every consolidation
    that moved an article (``history.version``), so another worker's index knows to rebuild."""
    merges, consolidations = version(s)
    return merges + (consolidations << 32)
