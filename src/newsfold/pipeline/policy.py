"""Feed health and poll scheduling: pure decisions, no I/O.

Every function takes the current ``FeedHealth``, ``now`` and an injectable
``random.Random`` and returns the next ``FeedHealth``; storage persists it and
the service acts on ``next_fetch_at``. Nothing here sleeps or reads a clock.

Policy (the README's "fetch policy" section describes the same rules):

* **Success** — the interval follows the feed's publishing cadence: half the
  median gap between its newest entries (so a new entry waits on average a
  quarter of a gap), stretched to a quarter of the current silence when the
  feed has gone quiet. Without dates: ``sy:updatePeriod``, else the previous
  interval, else ``default_interval_s``. A configured per-feed interval replaces
  the estimate. RSS ``<ttl>`` and ``Cache-Control: max-age`` are floors (the
  server asked not to be polled sooner). The result is bounded by
  ``min_interval_s``/``max_interval_s`` and jittered by ±``jitter`` so feeds
  added together do not poll together.
* **304 / unchanged body** — as success, keeping the previous interval unless
  entry dates are supplied.
* **Error** — exponential back-off ``backoff_base_s · 2^(n-1)`` with jitter,
  capped at ``backoff_max_s``; permanent kinds (404, not a feed) start two steps
  further along. A feed is never dropped: at the cap it keeps being retried, and
  past ``flag_after_errors`` it shows as "failing". ``Retry-After`` is honoured
  (never retried sooner, up to the cap). 410 Gone disables the feed with the
  reason shown until a person re-enables it.
* **Redirects** — a new URL is adopted only after the same 301/308 target was
  seen on ``needed`` consecutive fetches; any other outcome resets the count.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from newsfold.types import ErrorKind, FeedHealth

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from newsfold.config import ScheduleSettings
    from newsfold.errors import FetchError, ParseError
    from newsfold.types import FetchResult

# Newest entries used for the cadence estimate: enough for a stable median,
# few enough that a feed changing its rhythm is followed within days.
CADENCE_WINDOW = 20
# Permanent errors are unlikely to clear in minutes: start the back-off this
# many doublings further along.
PERMANENT_HEAD_START = 2
_MAX_MESSAGE = 500


def new_health(*, now: datetime, settings: ScheduleSettings) -> FeedHealth:
    """State of a feed just added: due at once."""
    return FeedHealth(next_fetch_at=now, interval_s=settings.default_interval_s)


def cadence_interval_s(entry_times: Sequence[datetime], *, now: datetime) -> float | None:
    """Poll interval suggested by entry dates, unbounded; ``None`` without two distinct dates."""
    times = sorted(
        {_aware(t) for t in entry_times if _aware(t) <= now},  # future dates are bogus
        reverse=True,
    )[:CADENCE_WINDOW]
    if len(times) < 2:
        return None
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(times)]
    median_gap = statistics.median(gaps)
    silence = (now - times[0]).total_seconds()
    return max(median_gap / 2, silence / 4)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _jittered(seconds: float, settings: ScheduleSettings, rng: random.Random) -> float:
    return seconds * (1 + rng.uniform(-settings.jitter, settings.jitter))


def _schedule_ok(
    health: FeedHealth,
    *,
    now: datetime,
    settings: ScheduleSettings,
    base_s: float,
    floors: Sequence[float | None],
    configured_interval_s: int | None,
    rng: random.Random,
) -> FeedHealth:
    upper = max(settings.max_interval_s, configured_interval_s or 0)  # the user may ask for more
    interval = max([base_s, *(f for f in floors if f)])
    interval = min(max(interval, settings.min_interval_s), upper)
    # Jitter, then bound again: feeds at a bound still spread over ±jitter on one side.
    delay = min(max(_jittered(interval, settings, rng), settings.min_interval_s), upper)
    return replace(
        health,
        next_fetch_at=now + timedelta(seconds=delay),
        interval_s=round(interval),
        consecutive_errors=0,
        error_since=None,
        last_error_kind=None,
        last_error=None,
        disabled_reason=None,
    )


def after_success(
    health: FeedHealth,
    *,
    now: datetime,
    settings: ScheduleSettings,
    result: FetchResult | None,
    ttl_minutes: int | None,
    update_period_minutes: int | None,
    entry_times: Sequence[datetime],
    configured_interval_s: int | None,
    rng: random.Random,
) -> FeedHealth:
    """A feed was fetched and parsed: clear errors, schedule from cadence and hints."""
    if configured_interval_s:
        base: float = configured_interval_s
    else:
        cadence = cadence_interval_s(entry_times, now=now)
        if cadence is not None:
            base = cadence
        elif update_period_minutes:
            base = update_period_minutes * 60
        else:
            base = health.interval_s or settings.default_interval_s
    return _schedule_ok(
        health,
        now=now,
        settings=settings,
        base_s=base,
        floors=(
            ttl_minutes * 60 if ttl_minutes else None,
            result.max_age_s if result is not None else None,
        ),
        configured_interval_s=configured_interval_s,
        rng=rng,
    )


def after_not_modified(
    health: FeedHealth,
    *,
    now: datetime,
    settings: ScheduleSettings,
    rng: random.Random,
    result: FetchResult | None = None,
    ttl_minutes: int | None = None,
    update_period_minutes: int | None = None,
    entry_times: Sequence[datetime] = (),
    configured_interval_s: int | None = None,
) -> FeedHealth:
    """304, or a body identical to the last one: nothing new, the feed is healthy.

    Pass the stored entry dates (and the last known ttl) to keep the cadence
    current; without them the previous interval is kept.
    """
    return after_success(
        health,
        now=now,
        settings=settings,
        result=result,
        ttl_minutes=ttl_minutes,
        update_period_minutes=update_period_minutes,
        entry_times=entry_times,
        configured_interval_s=configured_interval_s,
        rng=rng,
    )


def backoff_s(errors: int, kind: ErrorKind, settings: ScheduleSettings) -> float:
    """Un-jittered delay after ``errors`` consecutive failures (1 = first failure)."""
    steps = max(errors - 1, 0) + (PERMANENT_HEAD_START if kind is ErrorKind.PERMANENT else 0)
    # 2**40 s is far past any cap; bounding the exponent keeps the float finite.
    return float(min(settings.backoff_max_s, settings.backoff_base_s * 2 ** min(steps, 40)))


def after_error(
    health: FeedHealth,
    error: FetchError | ParseError,
    *,
    now: datetime,
    settings: ScheduleSettings,
    rng: random.Random,
) -> FeedHealth:
    """Count the failure, back off (never give up), disable only on 410 Gone."""
    errors = health.consecutive_errors + 1
    kind = error.kind
    message = _one_line(str(error))
    delay = min(_jittered(backoff_s(errors, kind, settings), settings, rng), settings.backoff_max_s)
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after:
        # Never sooner than the server asked; spread upwards only, and a
        # server asking for a month still gets a retry at the cap.
        asked = retry_after * (1 + rng.uniform(0, settings.jitter))
        delay = max(delay, min(asked, settings.backoff_max_s))
    disabled = health.disabled_reason
    if kind is ErrorKind.GONE:
        disabled = f"gone since {now:%Y-%m-%d} ({message})"
        delay = settings.backoff_max_s
    return replace(
        health,
        next_fetch_at=now + timedelta(seconds=max(delay, 1.0)),
        consecutive_errors=errors,
        error_since=health.error_since or now,
        last_error_kind=kind,
        last_error=message,
        disabled_reason=disabled,
        # A failed fetch says nothing about redirects: the next success decides.
    )


def permanent_redirect_target(
    health: FeedHealth, result: FetchResult, *, needed: int = 2
) -> tuple[FeedHealth, str | None]:
    """The URL to store for the feed, once a 301/308 target was seen ``needed`` times running.

    A single permanent redirect may be a misconfiguration being fixed, and
    302/303/307 never qualify (``FetchResult.permanent_redirect`` is ``None``
    for them), so a subscription is only rewritten on consistent evidence.
    """
    target = result.permanent_redirect
    if target is None:
        return replace(health, redirect_candidate=None, redirect_seen=0), None
    seen = health.redirect_seen + 1 if target == health.redirect_candidate else 1
    if seen >= needed:
        return replace(health, redirect_candidate=None, redirect_seen=0), target
    return replace(health, redirect_candidate=target, redirect_seen=seen), None


def reenable(health: FeedHealth, *, now: datetime) -> FeedHealth:
    """A person re-enabled a disabled (or failing) feed: poll it now, errors forgotten."""
    return replace(
        health,
        next_fetch_at=now,
        consecutive_errors=0,
        error_since=None,
        last_error_kind=None,
        last_error=None,
        disabled_reason=None,
    )


def humanize_s(seconds: float) -> str:
    """``90`` → ``"1m"``, ``5400`` → ``"1h30m"``, ``200000`` → ``"2d7h"``: for status lines."""
    s = int(abs(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{s}s"


def status_of(
    health: FeedHealth, *, now: datetime, settings: ScheduleSettings, fetched: bool = True
) -> str:
    """One line for ``feeds list``.

    ``pending`` (never fetched: nothing is known yet to call it ok) | ``ok`` |
    ``erroring since …`` | ``failing since …`` (past ``flag_after_errors``) | ``disabled: …``.
    """
    if health.disabled_reason:
        return f"disabled: {health.disabled_reason}"
    n = health.consecutive_errors
    if n == 0:
        return "ok" if fetched else "pending"
    since = health.error_since or now
    when = f"{since:%Y-%m-%d %H:%M} UTC ({humanize_s((now - since).total_seconds())} ago"
    plural = "s" if n != 1 else ""
    kind = f", last {health.last_error_kind}" if health.last_error_kind else ""
    label = "failing" if n >= settings.flag_after_errors else "erroring"
    return f"{label} since {when}, {n} error{plural} in a row{kind})"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


__all__ = [
    "CADENCE_WINDOW",
    "FeedHealth",
    "after_error",
    "after_not_modified",
    "after_success",
    "backoff_s",
    "cadence_interval_s",
    "humanize_s",
    "new_health",
    "permanent_redirect_target",
    "reenable",
    "status_of",
]
