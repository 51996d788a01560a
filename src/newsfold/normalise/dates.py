"""Dates: published/updated to aware UTC, with first-seen fallback and future clamping.

Pure: every decision takes the fetch time as ``now``. Parsing of feed dates is
the parser's job; this module only reads the strings found in page metadata.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from newsfold.types import DateSource

# Feeds that print "1970-01-01" or "0001-01-01" mean "no date", not that year.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
_ISO_Z = re.compile(r"[zZ]$")
_ISO_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def to_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (as feedparser reports)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(text: str | None) -> datetime | None:
    """ISO 8601 (with ``Z`` or ``+hhmm``) or RFC 2822 → aware UTC; ``None`` when unreadable."""
    if not text:
        return None
    text = text.strip()
    if not text or len(text) > 64:
        return None
    iso = _ISO_Z.sub("+00:00", text)
    iso = _ISO_COMPACT_OFFSET.sub(r"\1:\2", iso) if "T" in iso else iso
    try:
        return to_utc(datetime.fromisoformat(iso))
    except ValueError:
        pass
    try:
        return to_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def resolve_published(
    published: datetime | None,
    updated: datetime | None,
    *,
    now: datetime,
    future_tolerance_s: float,
) -> tuple[datetime, DateSource]:
    """The article's date and where it came from.

    Missing (or implausibly old) dates fall back to ``now`` (first seen); dates
    further in the future than the tolerance are clamped to ``now``, so a feed with
    a wrong clock cannot pin its items to the top of every listing.
    """
    now = to_utc(now)
    candidate = published if published is not None else updated
    if candidate is None:
        return now, DateSource.FIRST_SEEN
    value = to_utc(candidate)
    if value < EARLIEST_PLAUSIBLE:
        return now, DateSource.FIRST_SEEN
    if value > now + timedelta(seconds=future_tolerance_s):
        return now, DateSource.CLAMPED
    return value, DateSource.FEED


def iso_utc(value: datetime) -> str:
    """``2024-12-01T13:05:00Z``."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["iso_utc", "parse_date", "resolve_published", "to_utc"]
