"""Pure readers for the response headers that steer polling (no I/O, ``now`` passed in)."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

    A date in the past means "now" (0); anything unreadable is ignored (``None``).
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(cache_control: str | None) -> float | None:
    """``max-age`` from ``Cache-Control`` in seconds; ``None`` when absent.

    ``no-cache``/``no-store`` say nothing about how often content changes, so
    they give no hint; ``s-maxage`` is for shared caches and is ignored.
    """
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so every error message is a single readable line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__ = ["one_line", "parse_max_age", "parse_retry_after"]
