"""Writes of a story consolidation: moved memberships, story rows, merges and splits.

A consolidation (``dedup.stories.partition``) re-clusters the stories a batch
touched; this writes what it changed, inside the batch's transaction and
under the cluster-assignment lock, and bumps the partition's version (kept
in the ``state`` table) so that other workers rebuild their index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - a field type of a dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, union_all, update
from sqlalchemy.orm import aliased

from newsfold.storage.tables import (
    ArticleRow,
    ClusterRow,
    MembershipRow,
    MergeRow,
    SplitRow,
    StateRow,
)
from newsfold.types import Level, Tier

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy import CompoundSelect, Table
    from sqlalchemy.orm import Session

_VERSION = "partition_version"
_MEMBERSHIPS = cast("Table", MembershipRow.__table__)
_CLUSTERS = cast("Table", ClusterRow.__table__)


def story_id_free(s: Session, article_id: int) -> bool:
    """Whether ``article_id`` never was a story's id (live, or merged away)."""
    live = s.scalar(
        select(ClusterRow.id).where(ClusterRow.level == Level.STORIES, ClusterRow.id == article_id)
    )
    gone = s.scalar(
        select(MergeRow.absorbed_id).where(
            MergeRow.level == Level.STORIES, MergeRow.absorbed_id == article_id
        )
    )
    return live is None and gone is None


def version(s: Session) -> tuple[int, int]:
    """(story merges, consolidations that changed something): changes when any id moves."""
    raw = s.scalar(select(StateRow.value).where(StateRow.key == _VERSION))
    merges = int(s.scalar(select(func.count()).select_from(MergeRow)) or 0)
    return merges, int(raw.decode()) if raw else 0


def write_consolidation(
    s: Session,
    moves: Mapping[int, int],
    merges: Sequence[tuple[int, int]],
    splits: Sequence[tuple[int, int]],
    *,
    now: datetime,
    evidence: Mapping[int, tuple[int, float]] | None = None,
) -> None:
    """Apply one consolidation: ``moves`` (article → story), merges (absorbed, survivor),
    splits (new story, the story it split from), and each moved article's ``evidence``
    (its closest member in its new story and their score; absent: alone there)."""
    if not moves and not merges and not splits:
        return
    conn = s.connection()
    ids = sorted(moves)
    before = {
        int(a): int(c)
        for a, c in s.execute(
            select(MembershipRow.article_id, MembershipRow.cluster_id).where(
                MembershipRow.level == Level.STORIES, MembershipRow.article_id.in_(ids)
            )
        )
    }
    c = _MEMBERSHIPS.c
    # A moved article joins its new story now: the story's content changed (``changed_at``).
    # Its evidence is the member it is closest to there: the join clustering made.
    found = evidence or {}
    conn.execute(
        update(_MEMBERSHIPS)
        .where(c.level == Level.STORIES, c.article_id == bindparam("b_a"))
        .values(
            cluster_id=bindparam("b_s"),
            joined_at=now,
            tier=bindparam("b_t"),
            similarity=bindparam("b_m"),
            matched_article_id=bindparam("b_w"),
        ),
        [
            {
                "b_a": a,
                "b_s": moves[a],
                "b_t": Tier.STORY if a in found else Tier.NEW,
                "b_m": float(found[a][1]) if a in found else 1.0,
                "b_w": found[a][0] if a in found else None,
            }
            for a in ids
        ],
    )
    k = _CLUSTERS.c
    # A copy group's story is its founder's.
    conn.execute(
        update(_CLUSTERS)
        .where(k.level == Level.COPIES, k.id == bindparam("b_a"))
        .values(parent_id=bindparam("b_s")),
        [{"b_a": a, "b_s": moves[a]} for a in ids],
    )
    touched = sorted({*moves.values(), *before.values(), *(x for m in merges for x in m)})
    _recount(s, touched, now=now)
    for absorbed, survivor in merges:
        s.execute(
            update(MergeRow)
            .where(MergeRow.level == Level.STORIES, MergeRow.survivor_id == absorbed)
            .values(survivor_id=survivor)
        )
        s.execute(
            delete(MergeRow).where(
                MergeRow.level == Level.STORIES, MergeRow.absorbed_id == absorbed
            )
        )
        s.execute(
            insert(MergeRow),
            [
                {
                    "level": Level.STORIES,
                    "absorbed_id": absorbed,
                    "survivor_id": survivor,
                    "article_id": None,
                    "merged_at": now,
                }
            ],
        )
    for story_id, from_id in splits:
        s.execute(
            delete(SplitRow).where(SplitRow.story_id == story_id, SplitRow.from_id == from_id)
        )
        s.execute(insert(SplitRow), [{"story_id": story_id, "from_id": from_id, "split_at": now}])
    _bump(s, now)


def _recount(s: Session, story_ids: Sequence[int], *, now: datetime) -> None:
    """Story rows of ``story_ids`` recomputed from their memberships: created, resized, or
    deleted when empty (a story now living on under another id, or split apart)."""
    counted = {
        int(cid): (int(n), first, last)
        for cid, n, first, last in s.execute(
            select(
                MembershipRow.cluster_id,
                func.count(),
                func.min(ArticleRow.published),
                func.max(ArticleRow.published),
            )
            .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
            .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id.in_(story_ids))
            .group_by(MembershipRow.cluster_id)
        )
    }
    for story_id in story_ids:
        row = s.get(ClusterRow, (str(Level.STORIES), story_id))
        found = counted.get(story_id)
        if found is None:
            if row is not None:
                s.delete(row)
            continue
        n, first, last = found
        if row is None:
            title = s.scalar(
                select(ArticleRow.title)
                .join(MembershipRow, MembershipRow.article_id == ArticleRow.id)
                .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id == story_id)
                .order_by(ArticleRow.published, ArticleRow.id)
                .limit(1)
            )
            # A story id that was merged away and is now a story again no longer resolves.
            s.execute(
                delete(MergeRow).where(
                    MergeRow.level == Level.STORIES, MergeRow.absorbed_id == story_id
                )
            )
            s.add(
                ClusterRow(
                    level=str(Level.STORIES),
                    id=story_id,
                    parent_id=None,
                    title=title or "",
                    size=n,
                    first_seen=first,
                    last_seen=last,
                    merged_into=None,
                )
            )
        else:
            row.size, row.first_seen, row.last_seen = n, first, last
    s.flush()


def _bump(s: Session, now: datetime) -> None:
    row = s.get(StateRow, _VERSION)
    if row is None:
        s.add(StateRow(key=_VERSION, value=b"1", updated_at=now))
    else:
        row.value, row.updated_at = str(int(row.value.decode()) + 1).encode(), now
    s.flush()


@dataclass(frozen=True, slots=True)
class StoryHistory:
    """Where a story came from and went: ids as recorded, each with when."""

    merged_from: tuple[int, ...] = ()  # story ids that now resolve to this one
    split_from: tuple[tuple[int, datetime], ...] = ()  # stories this one split from
    split_into: tuple[tuple[int, datetime], ...] = ()  # stories that split from this one


def resolve(s: Session, story_id: int) -> int:
    """The live story a (possibly merged-away) story id stands for now."""
    survivor = s.scalar(
        select(MergeRow.survivor_id).where(
            MergeRow.level == Level.STORIES, MergeRow.absorbed_id == story_id
        )
    )
    return int(survivor) if survivor is not None else story_id


def history(s: Session, story_id: int) -> StoryHistory:
    """``story_id``'s merges and splits (see ``histories``)."""
    return histories(s, [story_id]).get(story_id, StoryHistory())


# Kinds of rows in ``histories``' one statement.
_MERGED, _SPLIT_FROM, _SPLIT_INTO = 0, 1, 2


def histories(s: Session, story_ids: Sequence[int]) -> dict[int, StoryHistory]:
    """The merges and splits of many stories (a page of a list), in one statement per
    ``_HISTORY_CHUNK`` stories. A split's other side is shown by the id it has now (it may
    since have merged); one that came back into its story is left out."""
    merged: dict[int, list[int]] = {}
    sides: dict[tuple[int, int], dict[int, datetime]] = {}  # (story, kind) -> {other: at}
    ids = sorted(set(story_ids))
    for start in range(0, len(ids), _HISTORY_CHUNK):
        chunk = ids[start : start + _HISTORY_CHUNK]
        for kind, story, other, at in s.execute(_history_select(chunk)):
            if kind == _MERGED:
                merged.setdefault(int(story), []).append(int(other))
            elif int(other) != int(story):
                seen = sides.setdefault((int(story), int(kind)), {})
                seen[int(other)] = max(at, seen.get(int(other), at))
    out: dict[int, StoryHistory] = {}
    for story in {*merged, *(sid for sid, _ in sides)}:
        out[story] = StoryHistory(
            merged_from=tuple(sorted(merged.get(story, ()))),
            split_from=tuple(sorted(sides.get((story, _SPLIT_FROM), {}).items())),
            split_into=tuple(sorted(sides.get((story, _SPLIT_INTO), {}).items())),
        )
    return out


_HISTORY_CHUNK = 160  # each id is bound three times: under 500 parameters a statement


def _history_select(chunk: Sequence[int]) -> CompoundSelect[int, int, int, datetime]:
    """(kind, story, other side as it resolves now, when) for the stories in ``chunk``."""
    from_merge, into_merge = aliased(MergeRow), aliased(MergeRow)
    return union_all(
        select(
            literal_column(str(_MERGED)),
            MergeRow.survivor_id,
            MergeRow.absorbed_id,
            MergeRow.merged_at,
        ).where(MergeRow.level == Level.STORIES, MergeRow.survivor_id.in_(chunk)),
        select(
            literal_column(str(_SPLIT_FROM)),
            SplitRow.story_id,
            func.coalesce(from_merge.survivor_id, SplitRow.from_id),
            SplitRow.split_at,
        )
        .outerjoin(
            from_merge,
            (from_merge.level == Level.STORIES) & (from_merge.absorbed_id == SplitRow.from_id),
        )
        .where(SplitRow.story_id.in_(chunk)),
        select(
            literal_column(str(_SPLIT_INTO)),
            SplitRow.from_id,
            func.coalesce(into_merge.survivor_id, SplitRow.story_id),
            SplitRow.split_at,
        )
        .outerjoin(
            into_merge,
            (into_merge.level == Level.STORIES) & (into_merge.absorbed_id == SplitRow.story_id),
        )
        .where(SplitRow.from_id.in_(chunk)),
    )


def changed_at(s: Session, story_ids: Sequence[int]) -> dict[int, datetime]:
    """When each story's content last changed: an article joined it (placed or moved
    in), another story merged into it, or a story split from it or it from one.

    Re-clustering that leaves a story's articles where they are changes none of
    these, so an output feed's entry for it stays as it was.
    """
    out: dict[int, datetime] = {}

    def take(rows: Iterable[tuple[int, datetime | None]]) -> None:
        for sid, at in rows:
            if at is not None and (int(sid) not in out or at > out[int(sid)]):
                out[int(sid)] = at

    for start in range(0, len(story_ids), 500):
        chunk = list(story_ids[start : start + 500])
        take(
            s.execute(
                select(MembershipRow.cluster_id, func.max(MembershipRow.joined_at))
                .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id.in_(chunk))
                .group_by(MembershipRow.cluster_id)
            )
        )
        take(
            s.execute(
                select(MergeRow.survivor_id, func.max(MergeRow.merged_at))
                .where(MergeRow.level == Level.STORIES, MergeRow.survivor_id.in_(chunk))
                .group_by(MergeRow.survivor_id)
            )
        )
        for col in (SplitRow.story_id, SplitRow.from_id):
            take(
                s.execute(
                    select(col, func.max(SplitRow.split_at)).where(col.in_(chunk)).group_by(col)
                )
            )
    return out


def splits_of(s: Session, story_id: int) -> list[int]:
    """The stories ``story_id`` split from."""
    return [
        int(x)
        for x in s.scalars(
            select(SplitRow.from_id).where(SplitRow.story_id == story_id).order_by(SplitRow.from_id)
        )
    ]


def merged_from(s: Session, story_id: int) -> list[int]:
    """The story ids that now resolve to ``story_id``."""
    return [
        int(x)
        for x in s.scalars(
            select(MergeRow.absorbed_id)
            .where(MergeRow.level == Level.STORIES, MergeRow.survivor_id == story_id)
            .order_by(MergeRow.absorbed_id)
        )
    ]


__all__ = [
    "StoryHistory",
    "changed_at",
    "histories",
    "history",
    "merged_from",
    "resolve",
    "splits_of",
    "story_id_free",
    "version",
    "write_consolidation",
]
