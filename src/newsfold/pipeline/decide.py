"""What one poll changes, decided without I/O (the write side's pure step).

As in lemon24/reader's update ``Decider``: these functions take what the feed
said, what the database holds and ``now``, and return intents — which entries
are new, which were revised and how, the feed's next state. ``writer.py`` reads
the inputs and writes the intents; nothing here touches the database or the index.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from newsfold.dedup.minhash import decode
from newsfold.pipeline import policy
from newsfold.storage.feeds import health_of
from newsfold.storage.records import FeedUpdate, Validators
from newsfold.types import FetchOutcome

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping, Sequence, Set
    from datetime import datetime

    from newsfold.config import RetentionSettings, ScheduleSettings
    from newsfold.dedup import Sketch
    from newsfold.errors import FetchError, ParseError
    from newsfold.storage.records import FeedInfo
    from newsfold.types import Article, FetchResult, ParsedFeed

# Estimated Jaccard between an entry's stored and new signature at or above which a
# revision is trivial (keeps its place); below it, the article is re-placed.
REVISION_SAME = 0.9


@dataclass(frozen=True, slots=True)
class EntryChanges:
    """A poll's entries against what the feed already has stored."""

    new: tuple[Article, ...]
    revised: tuple[tuple[int, Article], ...]  # (stored article id, the new version)
    unchanged: int  # stored, and the same content hash


def diff_entries(
    articles: Sequence[Article], stored: Mapping[str, tuple[int, str]]
) -> EntryChanges:
    """Sort a poll's articles by ``stored`` (entry key → (article id, content hash))."""
    new: list[Article] = []
    revised: list[tuple[int, Article]] = []
    for a in articles:
        known = stored.get(a.entry_key)
        if known is None:
            new.append(a)
        elif known[1] != a.content_hash:
            revised.append((known[0], a))
    return EntryChanges(tuple(new), tuple(revised), len(articles) - len(new) - len(revised))


@dataclass(frozen=True, slots=True)
class RetentionEdges:
    """Where retention cuts, at one moment.

    An article whose story time is before ``cutoff`` goes, unless its story is
    open: has a member whose story time is at or after ``open_since``.
    """

    cutoff: datetime
    open_since: datetime
    story_window: timedelta

    @property
    def ingest_floor(self) -> datetime:
        """Story times before this are gone at the next prune, whatever story they join.

        Before ``cutoff``, and more than a story window before ``open_since``: such
        an article joins no open story (a story's span stays within the window), so
        storing it would only have it deleted, and seen as new at the next poll.
        """
        return min(self.cutoff, self.open_since - self.story_window)


def retention_edges(
    now: datetime, settings: RetentionSettings, *, story_window_days: float
) -> RetentionEdges | None:
    """Retention's edges at ``now``; ``None`` when retention is off (keep everything)."""
    if settings.days is None:
        return None
    window = timedelta(days=story_window_days)
    return RetentionEdges(now - timedelta(days=settings.days), now - window, window)


def drop_expired(
    changes: EntryChanges,
    edges: RetentionEdges | None,
    story_time: Callable[[Article], datetime],
) -> EntryChanges:
    """Leave out new entries the next prune would delete (see ``ingest_floor``)."""
    if edges is None:
        return changes
    floor = edges.ingest_floor
    kept = tuple(a for a in changes.new if story_time(a) >= floor)
    return changes if len(kept) == len(changes.new) else replace(changes, new=kept)


def signature_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard of two stored MinHash signatures (share of equal slots)."""
    sa, _ = decode(a)
    sb, _ = decode(b)
    if sa.shape != sb.shape or not len(sa):
        return 0.0
    return float((sa == sb).mean())


@dataclass(frozen=True, slots=True)
class Revision:
    """What to do with one revised entry.

    ``sketch`` is set when the article is to be placed again (and stored with it);
    ``None`` keeps the stored sketch and the place, so the stored sketch stays the
    one the index holds.
    """

    article_id: int
    article: Article
    sketch: Sketch | None


def decide_revisions(
    revised: Sequence[tuple[int, Article]],
    sketches: Sequence[Sketch],
    stored_signatures: Mapping[int, bytes],
    founders: Set[int],
) -> list[Revision]:
    """Entries whose text changed since they were stored (tier 0 revision tracking).

    A trivial change (a fixed typo, a new timestamp line: the new signature is
    still ≥ ``REVISION_SAME`` similar to the stored one) keeps the place. A
    material change re-places the article with its new sketch — unless it
    founded a cluster that has other members: that cluster's id is the article's
    own, and the members joined it for what it said then.
    """
    out: list[Revision] = []
    for (aid, article), sketch in zip(revised, sketches, strict=True):
        material = signature_similarity(stored_signatures[aid], sketch.signature) < REVISION_SAME
        out.append(Revision(aid, article, sketch if material and aid not in founders else None))
    return out


def outcome(result: FetchResult, parsed: ParsedFeed | None) -> FetchOutcome:
    if result.not_modified:
        return FetchOutcome.NOT_MODIFIED
    return FetchOutcome.UNCHANGED if parsed is None else FetchOutcome.OK


def after_success(
    feed: FeedInfo,
    result: FetchResult,
    parsed: ParsedFeed | None,
    *,
    started_at: datetime,
    now: datetime,
    settings: ScheduleSettings,
    rng: random.Random,
    entry_times: Sequence[datetime],
    boilerplate: str | None,
) -> FeedUpdate:
    """The feed's new state after a successful fetch: validators, health, next poll, URL.

    ``entry_times`` are the publication times the feed itself gave its latest
    articles (its cadence; not dates we stamped at first sight). ``boilerplate`` is
    the learned model as JSON, stored when the document was parsed.
    """
    health = health_of(feed)
    if parsed is None:  # 304, or the very same bytes as last time
        health = policy.after_not_modified(
            health,
            now=now,
            settings=settings,
            result=result,
            entry_times=entry_times,
            configured_interval_s=feed.configured_interval_s,
            rng=rng,
        )
    else:
        health = policy.after_success(
            health,
            now=now,
            settings=settings,
            result=result,
            ttl_minutes=parsed.ttl_minutes,
            update_period_minutes=parsed.update_period_minutes,
            entry_times=entry_times,
            configured_interval_s=feed.configured_interval_s,
            rng=rng,
        )
    health, new_url = policy.permanent_redirect_target(health, result)
    validators = (
        None
        if result.not_modified
        else Validators(result.etag, result.last_modified, result.body_hash)
    )
    return FeedUpdate(
        health=health,
        last_fetch_at=started_at,
        last_success_at=now,
        validators=validators,
        title=None if parsed is None else feed.title or parsed.title,
        site_url=None if parsed is None else parsed.link or feed.site_url,
        boilerplate=None if parsed is None else boilerplate,
        moved_to=new_url,
    )


def after_error(
    feed: FeedInfo,
    error: FetchError | ParseError,
    *,
    started_at: datetime,
    now: datetime,
    settings: ScheduleSettings,
    rng: random.Random,
) -> FeedUpdate:
    """The feed's new state after a failed poll: back-off, error count, maybe disabled."""
    health = policy.after_error(health_of(feed), error, now=now, settings=settings, rng=rng)
    return FeedUpdate(health=health, last_fetch_at=started_at)
