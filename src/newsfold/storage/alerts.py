"""The alert outbox: rules fired inside the placing transaction, deliveries claimed after.

``raise_alerts`` runs in the batch that placed a poll's articles (``Batch.raise_alerts``):
for each story the poll touched, each rule whose threshold of distinct outlets the
story has reached (and whose query it matches) gets one outbox row with the JSON
body as the story stands. The unique (story, rule) key makes that once per story
and rule whichever worker placed the article; the row commits with the placement
or not at all, so a crash never loses an alert that was raised. A story that
absorbed others in merges counts as having fired every rule one of them fired
(``cluster_merges`` resolves each absorbed id to its survivor): the event was
announced once, and growing by a merge does not make it new.

Delivery claims due rows (``claim_alerts``: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the writer lock on SQLite) by leasing them; a worker that dies holding
a lease leaves the row to be claimed again when it expires: at least once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from newsfold.search_query import parse
from newsfold.storage.search import story_matches_in
from newsfold.storage.tables import (
    AlertOutboxRow,
    ArticleRow,
    ClusterRow,
    FeedRow,
    MembershipRow,
    MergeRow,
)
from newsfold.types import Level

_OUTBOX = cast("Table", AlertOutboxRow.__table__)

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.orm import Session

    from newsfold.config import AlertRule


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    story_id: int
    rule_key: str
    url: str
    payload: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None


def _item(r: AlertOutboxRow) -> OutboxItem:
    return OutboxItem(
        id=r.id,
        story_id=r.story_id,
        rule_key=r.rule_key,
        url=r.url,
        payload=r.payload,
        created_at=r.created_at,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        delivered_at=r.delivered_at,
        last_status=r.last_status,
        last_error=r.last_error,
    )


def story_payload(s: Session, story_id: int, rule: AlertRule) -> dict[str, object] | None:
    """The webhook body: the story with its articles and outlets, and the rule that fired."""
    cluster = s.get(ClusterRow, (Level.STORIES, story_id))
    if cluster is None:
        return None
    rows = s.execute(
        select(ArticleRow.id, ArticleRow.title, ArticleRow.url, ArticleRow.published, FeedRow)
        .join(MembershipRow, MembershipRow.article_id == ArticleRow.id)
        .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
        .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id == story_id)
        .order_by(ArticleRow.published, ArticleRow.id)
    ).all()
    articles = [
        {
            "id": int(aid),
            "title": title,
            "url": url,
            "outlet": feed.title or feed.url,
            "feed_id": feed.id,
            "published": _iso(published),
        }
        for aid, title, url, published, feed in rows
    ]
    sources = list(dict.fromkeys(str(a["outlet"]) for a in articles))
    return {
        "event": "story.alert",
        "story": {
            "id": story_id,
            # The representative's title: the earliest-published report's (README).
            "title": articles[0]["title"] if articles else cluster.title,
            "sources": sources,
            "size": cluster.size,
            "first_published": _iso(cluster.first_seen),
            "articles": articles,
        },
        "rule": {"url": rule.url, "min_sources": rule.min_sources, "query": rule.query},
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def raise_alerts(
    s: Session, story_ids: Iterable[int], rules: Sequence[AlertRule], *, now: datetime
) -> int:
    """Write an outbox row for each (story, rule) that fires now; returns how many."""
    ids = sorted(set(story_ids))
    if not rules or not ids:
        return 0
    outlets = dict(
        s.execute(
            select(MembershipRow.cluster_id, func.count(func.distinct(ArticleRow.feed_id)))
            .join(ArticleRow, ArticleRow.id == MembershipRow.article_id)
            .where(MembershipRow.level == Level.STORIES, MembershipRow.cluster_id.in_(ids))
            .group_by(MembershipRow.cluster_id)
        ).all()
    )
    done = fired(s, ids, [r.key for r in rules])
    raised = 0
    for story_id in ids:
        for rule in rules:
            if (story_id, rule.key) in done or int(outlets.get(story_id, 0)) < rule.min_sources:
                continue
            if rule.query and not story_matches_in(s, parse(rule.query), story_id):
                continue
            payload = story_payload(s, story_id, rule)
            if payload is None:
                continue
            values = {
                "story_id": story_id,
                "rule_key": rule.key,
                "url": rule.url,
                "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
            }
            dialect = s.get_bind().dialect.name
            maker = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = maker(_OUTBOX).values(**values).on_conflict_do_nothing()
            # The rows RETURNING gives are counted: with the id returned implicitly,
            # PostgreSQL's driver reports no rowcount (-1).
            raised += len(s.connection().execute(stmt.returning(_OUTBOX.c.id)).all())
    return raised


def fired(s: Session, story_ids: Sequence[int], rule_keys: Sequence[str]) -> set[tuple[int, str]]:
    """(story, rule) pairs already alerted: by the story itself, or by a story it absorbed.

    Merges are kept resolved to the final survivor (a merge into a story that is later
    absorbed itself is re-pointed), so one join reaches every story a survivor took in.
    """
    own = s.execute(
        select(AlertOutboxRow.story_id, AlertOutboxRow.rule_key).where(
            AlertOutboxRow.story_id.in_(story_ids), AlertOutboxRow.rule_key.in_(rule_keys)
        )
    ).all()
    absorbed = s.execute(
        select(MergeRow.survivor_id, AlertOutboxRow.rule_key)
        .join(AlertOutboxRow, AlertOutboxRow.story_id == MergeRow.absorbed_id)
        .where(
            MergeRow.level == Level.STORIES,
            MergeRow.survivor_id.in_(story_ids),
            AlertOutboxRow.rule_key.in_(rule_keys),
        )
    ).all()
    return {(int(sid), str(key)) for sid, key in [*own, *absorbed]}


class AlertsMixin:
    if TYPE_CHECKING:
        dialect: str

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    def claim_alerts(self, *, now: datetime, lease_s: float, limit: int = 50) -> list[OutboxItem]:
        """Lease due, undelivered alerts to this worker (none that another holds)."""
        with self.session(write=True) as s:
            stmt = (
                select(AlertOutboxRow)
                .where(
                    AlertOutboxRow.delivered_at.is_(None),
                    AlertOutboxRow.next_attempt_at <= now,
                    or_(AlertOutboxRow.claimed_until.is_(None), AlertOutboxRow.claimed_until < now),
                )
                .order_by(AlertOutboxRow.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(s.scalars(stmt))
            if rows:
                s.execute(
                    update(AlertOutboxRow)
                    .where(AlertOutboxRow.id.in_([r.id for r in rows]))
                    .values(claimed_until=now + timedelta(seconds=lease_s))
                )
            return [_item(r) for r in rows]

    def finish_alert(
        self,
        alert_id: int,
        *,
        now: datetime,
        status: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt: delivered (``error`` None), or failed with the next try's time
        (``retry_at`` None: given up)."""
        values: dict[str, object] = {
            "attempts": AlertOutboxRow.attempts + 1,
            "last_status": status,
            "last_error": error,
            "claimed_until": None,
        }
        if error is None:
            values["delivered_at"] = now
        else:
            values["next_attempt_at"] = retry_at
        with self.session(write=True) as s:
            s.execute(update(AlertOutboxRow).where(AlertOutboxRow.id == alert_id).values(**values))

    def recent_alerts(self, limit: int = 20) -> list[OutboxItem]:
        with self.session() as s:
            rows = s.scalars(select(AlertOutboxRow).order_by(AlertOutboxRow.id.desc()).limit(limit))
            return [_item(r) for r in rows]

    def pending_alerts(self) -> int:
        with self.session() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        AlertOutboxRow.delivered_at.is_(None),
                        AlertOutboxRow.next_attempt_at.is_not(None),
                    )
                )
                or 0
            )


__all__ = ["AlertsMixin", "OutboxItem", "fired", "raise_alerts", "story_payload"]
