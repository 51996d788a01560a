"""SQLAlchemy table definitions. The schema itself is created by Alembic migrations.

Every datetime column stores UTC. SQLite has no timezone type, so ``UTCDateTime``
re-attaches UTC on the way out; PostgreSQL uses ``timestamptz``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite's INTEGER PRIMARY KEY is a 64-bit rowid alias only when spelled INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; newsfold stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FeedRow(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    site_url: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    full_text: Mapped[bool] = mapped_column(Boolean, default=False)
    configured_interval_s: Mapped[int | None] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16), default="cli")  # cli | config | opml
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # HTTP cache validators (conditional GET)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_body_hash: Mapped[str | None] = mapped_column(String(64))
    # Health and schedule (see newsfold.types.FeedHealth)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_fetch_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    interval_s: Mapped[int] = mapped_column(Integer)
    error_count: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    error_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_kind: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    redirect_candidate: Mapped[str | None] = mapped_column(Text)
    redirect_seen: Mapped[int] = mapped_column(Integer, default=0)
    # Lease so that several workers never poll one feed at once.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Learned per-source boilerplate model (JSON), kept across restarts.
    boilerplate: Mapped[str | None] = mapped_column(Text)


class ArticleRow(Base):
    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("feed_id", "entry_key", name="uq_articles_feed_entry"),
        Index("ix_articles_published", "published"),
        Index("ix_articles_stream_at", "stream_at"),
        Index("ix_articles_url", "url"),
        Index("ix_articles_content_hash", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    entry_key: Mapped[str] = mapped_column(Text)
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    published: Mapped[datetime] = mapped_column(UTCDateTime)
    # The article's story time (see prepare.story_time): credible publication time,
    # else first seen. Stories join by it; the index rebuild reads it with fetched_at.
    stream_at: Mapped[datetime] = mapped_column(UTCDateTime)
    date_source: Mapped[str] = mapped_column(String(16))
    updated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    story_sketch: Mapped[bytes] = mapped_column(LargeBinary)


class ClusterRow(Base):
    """A copy group (level "copies") or a story (level "stories").

    ``id`` is the id of the article that founded the cluster: stable across
    restarts and identical between runs over the same data.
    """

    __tablename__ = "clusters"
    __table_args__ = (Index("ix_clusters_level_last_seen", "level", "last_seen"),)

    level: Mapped[str] = mapped_column(String(8), primary_key=True)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    parent_id: Mapped[int | None] = mapped_column(BigId)  # a copy group's story
    title: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    merged_into: Mapped[int | None] = mapped_column(BigId)  # survivor of a merge


class MembershipRow(Base):
    """Where an article sits at one level, with the evidence for the join."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_cluster", "level", "cluster_id"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[str] = mapped_column(String(8), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(BigId)
    tier: Mapped[str] = mapped_column(String(8))
    similarity: Mapped[float] = mapped_column(Float)
    matched_article_id: Mapped[int | None] = mapped_column(BigId)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MergeRow(Base):
    """A story that turned out to bridge two: ``absorbed`` now resolves to ``survivor``."""

    __tablename__ = "cluster_merges"

    level: Mapped[str] = mapped_column(String(8), primary_key=True)
    absorbed_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    survivor_id: Mapped[int] = mapped_column(BigId)
    article_id: Mapped[int | None] = mapped_column(BigId)  # the bridging article
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FetchLogRow(Base):
    """Recent fetches of each feed, shown by ``feeds show`` (pruned to the last few)."""

    __tablename__ = "fetch_log"
    __table_args__ = (Index("ix_fetch_log_feed_started", "feed_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    wait_ms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    new_items: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SplitRow(Base):
    """A story a consolidation formed from part of another (``from_id``)."""

    __tablename__ = "story_splits"

    story_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    from_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    split_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StateRow(Base):
    """Small named values shared by every worker (see ``storage.state``)."""

    __tablename__ = "state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertOutboxRow(Base):
    """An alert to deliver, written in the transaction that placed the story's article.

    One row per (story, rule) ever: the unique key is what makes an alert go out once,
    whichever worker placed the article. ``next_attempt_at`` NULL: no more attempts.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("story_id", "rule_key", name="uq_alert_outbox_story_rule"),
        Index("ix_alert_outbox_due", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    story_id: Mapped[int] = mapped_column(BigId)
    rule_key: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, as of when the rule fired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
