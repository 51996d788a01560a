"""Feed rows: subscription, health, schedule, leases and fetch history."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from newsfold.errors import FeedExistsError, NotFoundError, StorageError
from newsfold.storage.articles import delete_articles, existing_entries
from newsfold.storage.records import FeedInfo, FetchLogEntry
from newsfold.storage.retention import trim_fetch_log
from newsfold.storage.tables import ArticleRow, FeedRow, FetchLogRow
from newsfold.types import ErrorKind, FeedHealth, FeedSource, FetchOutcome

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Iterable, Sequence

    from sqlalchemy.orm import Session

    from newsfold.storage.records import FeedUpdate

# Transaction-scoped advisory lock (per schema) serialising settings-file syncs.
CONFIG_SYNC_LOCK_KEY = 0x6E66_0003
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))")

REMOVED_FROM_CONFIG = "removed from the settings file"


def feed_info(row: FeedRow, article_count: int = 0) -> FeedInfo:
    return FeedInfo(
        id=row.id,
        url=row.url,
        title=row.title,
        site_url=row.site_url,
        tags=tuple(t for t in (row.tags or "").split(",") if t),
        full_text=row.full_text,
        configured_interval_s=row.configured_interval_s,
        origin=row.origin,
        created_at=row.created_at,
        etag=row.etag,
        last_modified=row.last_modified,
        last_body_hash=row.last_body_hash,
        last_fetch_at=row.last_fetch_at,
        last_success_at=row.last_success_at,
        next_fetch_at=row.next_fetch_at,
        interval_s=row.interval_s,
        error_count=row.error_count,
        error_since=row.error_since,
        last_error_kind=ErrorKind(row.last_error_kind) if row.last_error_kind else None,
        last_error=row.last_error,
        disabled_reason=row.disabled_reason,
        redirect_candidate=row.redirect_candidate,
        redirect_seen=row.redirect_seen,
        article_count=article_count,
    )


def source_of(row: FeedRow | FeedInfo) -> FeedSource:
    return FeedSource(
        id=row.id,
        url=row.url,
        title=row.title,
        site_url=row.site_url,
        etag=row.etag,
        last_modified=row.last_modified,
        last_body_hash=row.last_body_hash,
        full_text=row.full_text,
    )


class FeedsMixin:
    if TYPE_CHECKING:

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    def add_feed(
        self,
        url: str,
        *,
        now: datetime,
        title: str | None = None,
        site_url: str | None = None,
        interval_s: int | None = None,
        default_interval_s: int = 1800,
        full_text: bool = False,
        tags: Iterable[str] = (),
        origin: str = "cli",
    ) -> FeedInfo:
        """Subscribe; raises ``FeedExistsError`` if the URL is already subscribed."""
        row = FeedRow(
            url=url,
            title=title,
            site_url=site_url,
            full_text=full_text,
            configured_interval_s=interval_s,
            tags=",".join(tags),
            origin=origin,
            created_at=now,
            next_fetch_at=now,  # due at once
            interval_s=interval_s or default_interval_s,
            error_count=0,
            redirect_seen=0,
        )
        try:
            with self.session(write=True) as s:
                s.add(row)
                s.flush()
                return feed_info(row)
        except StorageError as e:
            if isinstance(e.__cause__, IntegrityError):
                raise FeedExistsError(url) from e
            raise

    def sync_config_feeds(
        self,
        feeds: Iterable[tuple[str, str | None, int | None, bool, tuple[str, ...]]],
        *,
        now: datetime,
        default_interval_s: int,
    ) -> int:
        """Make the settings file's feeds exist and match the file; returns how many were added.

        Feeds added by hand are left alone. A feed taken out of the file is disabled,
        not deleted (its articles are history), and comes back if it is listed again.
        """
        added = 0
        listed: set[str] = set()
        with self.session(write=True) as s:
            if s.get_bind().dialect.name == "postgresql":
                # Replicas started together all sync the same file: one at a time, so the
                # later ones find the rows the first added instead of inserting them again.
                s.execute(_LOCK_SQL, {"k": CONFIG_SYNC_LOCK_KEY})
            for url, title, interval_s, full_text, tags in feeds:
                listed.add(url)
                row = s.scalars(select(FeedRow).where(FeedRow.url == url)).one_or_none()
                if row is None:
                    s.add(
                        FeedRow(
                            url=url,
                            title=title,
                            full_text=full_text,
                            configured_interval_s=interval_s,
                            tags=",".join(tags),
                            origin="config",
                            created_at=now,
                            next_fetch_at=now,
                            interval_s=interval_s or default_interval_s,
                            error_count=0,
                            redirect_seen=0,
                        )
                    )
                    added += 1
                elif row.origin == "config":
                    row.title = title or row.title
                    row.full_text = full_text
                    row.configured_interval_s = interval_s
                    row.tags = ",".join(tags)
                    if row.disabled_reason == REMOVED_FROM_CONFIG:
                        row.disabled_reason = None
                        row.next_fetch_at = now
            for row in s.scalars(select(FeedRow).where(FeedRow.origin == "config")):
                if row.url not in listed and row.disabled_reason is None:
                    row.disabled_reason = REMOVED_FROM_CONFIG
        return added

    def _find(self, s: Session, ref: str | int) -> FeedRow:
        ref_s = str(ref).strip()
        cond = FeedRow.id == int(ref_s) if ref_s.isdigit() else FeedRow.url == ref_s
        row = s.scalars(select(FeedRow).where(cond)).one_or_none()
        if row is None:
            raise NotFoundError(f"no such feed: {ref_s}")
        return row

    def get_feed(self, ref: str | int) -> FeedInfo:
        with self.session() as s:
            row = self._find(s, ref)
            count = s.scalar(select(func.count()).where(ArticleRow.feed_id == row.id)) or 0
            return feed_info(row, count)

    def remove_feed(self, ref: str | int) -> FeedInfo:
        """Unsubscribe and delete the feed's articles (cluster rows are recomputed)."""
        with self.session(write=True) as s:
            row = self._find(s, ref)
            info = feed_info(row)
            ids = list(s.scalars(select(ArticleRow.id).where(ArticleRow.feed_id == row.id)))
            delete_articles(s, ids)
            s.delete(row)
            return info

    def list_feeds(self) -> list[FeedInfo]:
        with self.session() as s:
            counts = dict(
                s.execute(
                    select(ArticleRow.feed_id, func.count()).group_by(ArticleRow.feed_id)
                ).all()
            )
            rows = s.scalars(select(FeedRow).order_by(FeedRow.id)).all()
            return [feed_info(r, int(counts.get(r.id, 0))) for r in rows]

    def feed_sources(self, refs: Iterable[str | int] | None = None) -> list[FeedSource]:
        with self.session() as s:
            if refs is None:
                rows = list(s.scalars(select(FeedRow).order_by(FeedRow.id)))
            else:
                rows = [self._find(s, r) for r in refs]
            return [source_of(r) for r in rows]

    def claim_due(
        self, *, now: datetime, owner: str, lease_s: float, limit: int = 1000
    ) -> list[FeedSource]:
        """Claim feeds whose poll time has come, with a lease so no other worker takes them.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent workers claim
        disjoint sets without waiting; an expired lease (crashed worker) is
        claimable again.
        """
        with self.session(write=True) as s:
            stmt = (
                select(FeedRow)
                .where(
                    FeedRow.disabled_reason.is_(None),
                    FeedRow.next_fetch_at <= now,
                    or_(FeedRow.lease_expires_at.is_(None), FeedRow.lease_expires_at < now),
                )
                .order_by(FeedRow.next_fetch_at)
                .limit(limit)
            )
            if s.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(s.scalars(stmt))
            expires = now + timedelta(seconds=lease_s)
            for row in rows:
                row.lease_owner = owner
                row.lease_expires_at = expires
            return [source_of(r) for r in rows]

    def renew(
        self, feed_ids: Iterable[int], *, owner: str, now: datetime, lease_s: float
    ) -> set[int]:
        """Extend this worker's leases (a heartbeat); returns the ids it still holds."""
        ids = list(feed_ids)
        if not ids:
            return set()
        with self.session(write=True) as s:
            held = s.scalars(
                update(FeedRow)
                .where(and_(FeedRow.id.in_(ids), FeedRow.lease_owner == owner))
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
                .returning(FeedRow.id)
            )
            return set(held)

    def feeds_erroring(self) -> int:
        """Feeds whose last fetch failed (the gauge of that name, e.g. right after a start)."""
        with self.session() as s:
            return s.scalar(select(func.count()).where(FeedRow.error_count > 0)) or 0

    def release(self, feed_ids: Iterable[int], *, owner: str) -> None:
        ids = list(feed_ids)
        if not ids:
            return
        with self.session(write=True) as s:
            s.execute(
                update(FeedRow)
                .where(and_(FeedRow.id.in_(ids), FeedRow.lease_owner == owner))
                .values(lease_owner=None, lease_expires_at=None)
            )

    def lease_holders(self) -> set[str]:
        """The workers named on leases (expired ones included: they are as stale)."""
        with self.session() as s:
            return set(
                s.scalars(select(FeedRow.lease_owner).where(FeedRow.lease_owner.is_not(None)))
            )

    def break_leases(self, owners: Iterable[str]) -> int:
        """End every lease of these (dead) workers; returns how many feeds were freed."""
        names = list(owners)
        if not names:
            return 0
        with self.session(write=True) as s:
            freed = s.scalars(
                update(FeedRow)
                .where(FeedRow.lease_owner.in_(names))
                .values(lease_owner=None, lease_expires_at=None)
                .returning(FeedRow.id)
            )
            return len(list(freed))

    def next_due_at(self) -> datetime | None:
        with self.session() as s:
            return s.scalar(
                select(func.min(FeedRow.next_fetch_at)).where(FeedRow.disabled_reason.is_(None))
            )

    def set_enabled(self, ref: str | int, *, now: datetime) -> FeedInfo:
        """Re-enable a disabled (e.g. 410 Gone) feed and make it due now."""
        with self.session(write=True) as s:
            row = self._find(s, ref)
            row.disabled_reason = None
            row.error_count = 0
            row.error_since = None
            row.next_fetch_at = now
            return feed_info(row)

    def existing_keys(self, feed_id: int, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """entry_key → (article id, content hash) for the given keys already stored."""
        with self.session() as s:
            return existing_entries(s, feed_id, keys)

    def known_entries(self, feed_id: int, *, since: datetime) -> dict[str, str]:
        """entry_key → content hash of the feed's articles first seen since ``since``."""
        with self.session() as s:
            rows = s.execute(
                select(ArticleRow.entry_key, ArticleRow.content_hash).where(
                    ArticleRow.feed_id == feed_id, ArticleRow.fetched_at >= since
                )
            )
            return {str(key): str(chash) for key, chash in rows}

    def boilerplate_json(self, feed_id: int) -> str | None:
        with self.session() as s:
            return s.scalar(select(FeedRow.boilerplate).where(FeedRow.id == feed_id))

    def fetch_history(self, feed_id: int, limit: int = 20) -> list[FetchLogEntry]:
        with self.session() as s:
            rows = s.scalars(
                select(FetchLogRow)
                .where(FetchLogRow.feed_id == feed_id)
                .order_by(FetchLogRow.started_at.desc(), FetchLogRow.id.desc())
                .limit(limit)
            )
            return [
                FetchLogEntry(
                    started_at=r.started_at,
                    outcome=FetchOutcome(r.outcome),
                    http_status=r.http_status,
                    bytes=r.bytes,
                    duration_ms=r.duration_ms,
                    new_items=r.new_items,
                    error=r.error,
                    wait_ms=r.wait_ms,
                )
                for r in rows
            ]


def apply_health(row: FeedRow, health: FeedHealth) -> None:
    row.next_fetch_at = health.next_fetch_at
    row.interval_s = health.interval_s
    row.error_count = health.consecutive_errors
    row.error_since = health.error_since
    row.last_error_kind = str(health.last_error_kind) if health.last_error_kind else None
    row.last_error = health.last_error
    row.disabled_reason = health.disabled_reason
    row.redirect_candidate = health.redirect_candidate
    row.redirect_seen = health.redirect_seen


def write_update(row: FeedRow, update: FeedUpdate, *, move: bool) -> None:
    """Copy a poll's outcome onto the feed row, and end the poll's lease."""
    apply_health(row, update.health)
    row.last_fetch_at = update.last_fetch_at
    if update.last_success_at is not None:
        row.last_success_at = update.last_success_at
    if update.validators is not None:
        row.etag = update.validators.etag
        row.last_modified = update.validators.last_modified
        row.last_body_hash = update.validators.body_hash
    if update.title is not None:
        row.title = update.title
    if update.site_url is not None:
        row.site_url = update.site_url
    if update.boilerplate is not None:
        row.boilerplate = update.boilerplate
    if move and update.moved_to is not None:
        row.url = update.moved_to
    row.lease_owner = None
    row.lease_expires_at = None


def health_of(feed: FeedInfo) -> FeedHealth:
    """What the schedule functions need of a feed (see ``types.FeedHealth``)."""
    return FeedHealth(
        next_fetch_at=feed.next_fetch_at,
        interval_s=feed.interval_s,
        consecutive_errors=feed.error_count,
        error_since=feed.error_since,
        last_error_kind=feed.last_error_kind,
        last_error=feed.last_error,
        disabled_reason=feed.disabled_reason,
        redirect_candidate=feed.redirect_candidate,
        redirect_seen=feed.redirect_seen,
    )


def log_fetch(s: Session, feed_id: int, entry: FetchLogEntry, *, keep: int) -> None:
    """Append to the feed's fetch log and keep its newest ``keep`` lines."""
    # The record's fields are the table's columns.
    s.add(FetchLogRow(feed_id=feed_id, **dataclasses.asdict(entry)))
    trim_fetch_log(s, feed_id, keep)


def utcnow() -> datetime:
    return datetime.now(UTC)
