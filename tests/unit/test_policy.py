"""Feed health and poll scheduling: pure functions, time injected, no sleeping."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from newsfold.config import ScheduleSettings
from newsfold.errors import FetchError, ParseError
from newsfold.pipeline.policy import (
    after_error,
    after_not_modified,
    after_success,
    backoff_s,
    cadence_interval_s,
    humanize_s,
    new_health,
    permanent_redirect_target,
    reenable,
    status_of,
)
from newsfold.types import ErrorKind, FeedHealth, FetchResult

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
S = ScheduleSettings()  # 5 min … 24 h, back-off 5 min … 24 h, jitter ±10 %
URL = "https://example.com/feed"


def ok_result(**kw: object) -> FetchResult:
    return FetchResult(requested_url=URL, url=URL, status=200, content=b"<rss/>", **kw)  # type: ignore[arg-type]


def every(minutes: float, n: int = 10, *, last_ago_min: float = 0) -> list[datetime]:
    newest = NOW - timedelta(minutes=last_ago_min)
    return [newest - timedelta(minutes=minutes * i) for i in range(n)]


def success(health: FeedHealth | None = None, *, seed: int = 0, **kw: object) -> FeedHealth:
    args: dict[str, object] = {
        "result": ok_result(),
        "ttl_minutes": None,
        "update_period_minutes": None,
        "entry_times": (),
        "configured_interval_s": None,
    }
    args.update(kw)
    return after_success(
        health or new_health(now=NOW, settings=S),
        now=NOW,
        settings=S,
        rng=random.Random(seed),
        **args,  # type: ignore[arg-type]
    )


def delay_s(health: FeedHealth, now: datetime = NOW) -> float:
    return (health.next_fetch_at - now).total_seconds()


# --- adaptive interval -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (every(60), 30 * 60),  # hourly feed: poll every 30 min
        (every(24 * 60), 12 * 3600),  # daily feed: every 12 h
        (every(60, last_ago_min=40 * 60), 10 * 3600),  # hourly feed silent 40 h: silence/4
        (every(60)[:1], None),  # one date says nothing about cadence
        ([NOW] * 5, None),  # every entry stamped alike (build time): no cadence
        ([], None),
        ([*every(60, n=5), NOW + timedelta(days=3)], 30 * 60),  # future dates ignored
    ],
)
def test_cadence_interval(times: list[datetime], expected: float | None) -> None:
    assert cadence_interval_s(times, now=NOW) == expected


def test_cadence_uses_only_the_newest_entries() -> None:
    # Old weekly archive + recent hourly posting: the recent rhythm wins.
    times = every(60, n=20) + [NOW - timedelta(days=30 + 7 * i) for i in range(30)]
    assert cadence_interval_s(times, now=NOW) == 30 * 60


@pytest.mark.parametrize(
    ("kw", "expected_interval"),
    [
        ({"entry_times": every(60)}, 1800),
        ({"entry_times": every(2)}, S.min_interval_s),  # bounded below
        ({"entry_times": every(30 * 24 * 60)}, S.max_interval_s),  # monthly: bounded above
        ({}, S.default_interval_s),  # nothing known
        ({"update_period_minutes": 120}, 7200),  # sy:updatePeriod when no dates
        ({"entry_times": every(60), "ttl_minutes": 180}, 3 * 3600),  # <ttl> is a floor
        ({"entry_times": every(60), "ttl_minutes": 5}, 1800),  # … not a target
        ({"entry_times": every(60), "result": ok_result(max_age_s=7200.0)}, 7200),  # max-age floor
        ({"entry_times": every(60), "result": ok_result(max_age_s=60.0)}, 1800),
        ({"entry_times": every(60), "ttl_minutes": 10 * 24 * 60}, S.max_interval_s),
        ({"entry_times": every(60), "configured_interval_s": 900}, 900),  # configured wins
        ({"configured_interval_s": 60}, S.min_interval_s),  # … but never below the minimum
        ({"configured_interval_s": 2 * 86400}, 2 * 86400),  # the user may ask for more than max
    ],
)
def test_after_success_interval(kw: dict[str, object], expected_interval: int) -> None:
    health = success(**kw)
    assert health.interval_s == expected_interval
    upper = max(S.max_interval_s, expected_interval)
    low = max(expected_interval * (1 - S.jitter), S.min_interval_s)
    high = min(expected_interval * (1 + S.jitter), upper)
    assert low <= delay_s(health) <= high


def test_jitter_spreads_feeds_that_share_an_interval() -> None:
    delays = {delay_s(success(entry_times=every(60), seed=seed)) for seed in range(50)}
    assert len(delays) == 50  # no two feeds due at the same instant
    assert min(delays) < 1800 < max(delays)
    assert all(1800 * 0.9 <= d <= 1800 * 1.1 for d in delays)


def test_no_jitter_setting_gives_exact_interval() -> None:
    settings = ScheduleSettings(jitter=0)
    health = after_success(
        new_health(now=NOW, settings=settings),
        now=NOW,
        settings=settings,
        result=ok_result(),
        ttl_minutes=None,
        update_period_minutes=None,
        entry_times=every(60),
        configured_interval_s=None,
        rng=random.Random(1),
    )
    assert delay_s(health) == 1800


def test_not_modified_keeps_interval_and_clears_errors() -> None:
    health = replace(
        new_health(now=NOW, settings=S), interval_s=7200, consecutive_errors=3, error_since=NOW
    )
    after = after_not_modified(health, now=NOW, settings=S, rng=random.Random(0))
    assert after.interval_s == 7200
    assert after.consecutive_errors == 0 and after.error_since is None
    assert 7200 * 0.9 <= delay_s(after) <= 7200 * 1.1


def test_not_modified_follows_stored_entry_dates_when_given() -> None:
    health = replace(new_health(now=NOW, settings=S), interval_s=7200)
    after = after_not_modified(
        health, now=NOW, settings=S, rng=random.Random(0), entry_times=every(60)
    )
    assert after.interval_s == 1800


def test_success_after_errors_returns_to_previous_interval() -> None:
    health = success(entry_times=every(60))
    for _ in range(5):
        health = after_error(
            health, FetchError("boom", url=URL), now=NOW, settings=S, rng=random.Random(0)
        )
    assert health.interval_s == 1800  # kept through the error spell
    recovered = success(health)  # nothing new learnt: the old interval comes back
    assert recovered.interval_s == 1800
    assert recovered.consecutive_errors == 0 and recovered.last_error is None


# --- back-off --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "kind", "expected"),
    [
        (1, ErrorKind.TRANSIENT, 300),
        (2, ErrorKind.TRANSIENT, 600),
        (3, ErrorKind.TRANSIENT, 1200),
        (9, ErrorKind.TRANSIENT, 76800),
        (10, ErrorKind.TRANSIENT, 86400),  # capped
        (10_000, ErrorKind.TRANSIENT, 86400),  # no overflow, still capped
        (1, ErrorKind.PERMANENT, 1200),  # 404 / not a feed: start further along
        (2, ErrorKind.PERMANENT, 2400),
    ],
)
def test_backoff_schedule(errors: int, kind: ErrorKind, expected: float) -> None:
    assert backoff_s(errors, kind, S) == expected


def run_errors(n: int, error: FetchError | ParseError, *, seed: int = 0) -> list[FeedHealth]:
    rng = random.Random(seed)
    health = success(entry_times=every(60))
    now = NOW
    states = []
    for _ in range(n):
        health = after_error(health, error, now=now, settings=S, rng=rng)
        states.append(health)
        now = health.next_fetch_at  # simulated clock: poll exactly when due
    return states


def test_errors_back_off_exponentially_with_jitter_and_never_die() -> None:
    error = FetchError("HTTP 500 Internal Server Error: " + URL, url=URL, status=500)
    states = run_errors(40, error)
    first_error_at = NOW
    prev = NOW
    for n, health in enumerate(states, start=1):
        d = (health.next_fetch_at - prev).total_seconds()
        base = backoff_s(n, ErrorKind.TRANSIENT, S)
        assert base * 0.9 <= d <= min(base * 1.1, S.backoff_max_s)
        assert health.consecutive_errors == n
        assert health.error_since == first_error_at  # the spell's start is kept
        assert health.disabled_reason is None  # never dead
        assert health.last_error_kind is ErrorKind.TRANSIENT
        prev = health.next_fetch_at
    assert states[-1].last_error == "HTTP 500 Internal Server Error: " + URL


def test_retry_after_is_honoured_and_capped() -> None:
    rng = random.Random(3)
    health = success()
    err = FetchError("HTTP 429", url=URL, status=429, retry_after_s=3 * 3600)
    after = after_error(health, err, now=NOW, settings=S, rng=rng)
    assert 3 * 3600 <= delay_s(after) <= 3 * 3600 * (1 + S.jitter)
    # A short Retry-After never makes us retry sooner than back-off would.
    short = after_error(
        health, FetchError("429", url=URL, retry_after_s=5), now=NOW, settings=S, rng=rng
    )
    assert delay_s(short) >= 300 * 0.9
    # A month is clamped to the cap: the feed is retried, not forgotten.
    month = after_error(
        health, FetchError("503", url=URL, retry_after_s=30 * 86400), now=NOW, settings=S, rng=rng
    )
    assert delay_s(month) == S.backoff_max_s


def test_gone_disables_with_reason() -> None:
    err = FetchError("HTTP 410 Gone: " + URL, url=URL, kind=ErrorKind.GONE, status=410)
    health = after_error(success(), err, now=NOW, settings=S, rng=random.Random(0))
    assert health.disabled_reason == f"gone since 2024-06-01 (HTTP 410 Gone: {URL})"
    assert status_of(health, now=NOW, settings=S).startswith("disabled: gone since 2024-06-01")
    back = reenable(health, now=NOW + timedelta(days=2))
    assert back.disabled_reason is None and back.consecutive_errors == 0
    assert back.next_fetch_at == NOW + timedelta(days=2)


def test_parse_errors_count_like_fetch_errors() -> None:
    err = ParseError("not a feed:\n  line 3 column 1")
    health = after_error(success(), err, now=NOW, settings=S, rng=random.Random(0))
    assert health.consecutive_errors == 1
    assert health.last_error_kind is ErrorKind.PERMANENT
    assert health.last_error == "not a feed: line 3 column 1"  # one line


def test_error_message_is_bounded() -> None:
    err = FetchError("x" * 5000, url=URL)
    health = after_error(success(), err, now=NOW, settings=S, rng=random.Random(0))
    assert health.last_error is not None and len(health.last_error) == 500


# --- redirects -------------------------------------------------------------------------------

A, B = "https://new.example.com/feed", "https://other.example.com/feed"


@pytest.mark.parametrize(
    ("targets", "needed", "adopted"),
    [
        ([A, A], 2, [None, A]),
        ([A], 2, [None]),
        ([A, None, A], 2, [None, None, None]),  # not consistent: a plain 200 in between
        ([A, B, A, B], 2, [None, None, None, None]),  # flapping between targets
        ([A, B, B], 2, [None, None, B]),
        ([A, A, A], 3, [None, None, A]),
        ([A], 1, [A]),
        ([None, None], 2, [None, None]),  # 302/307 results carry no permanent target
    ],
)
def test_permanent_redirect_needs_consistent_evidence(
    targets: list[str | None], needed: int, adopted: list[str | None]
) -> None:
    health = new_health(now=NOW, settings=S)
    got = []
    for target in targets:
        result = replace(ok_result(), url=target or URL, permanent_redirect=target)
        health, new_url = permanent_redirect_target(health, result, needed=needed)
        got.append(new_url)
    assert got == adopted
    if adopted[-1] is not None:
        assert health.redirect_candidate is None and health.redirect_seen == 0


# --- status line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "ok"),
        (
            {
                "consecutive_errors": 1,
                "error_since": NOW - timedelta(hours=3),
                "last_error_kind": ErrorKind.TRANSIENT,
            },
            "erroring since 2024-06-01 09:00 UTC (3h ago, 1 error in a row, last transient)",
        ),
        (
            {
                "consecutive_errors": 12,
                "error_since": NOW - timedelta(days=4, hours=2),
                "last_error_kind": ErrorKind.PERMANENT,
            },
            "failing since 2024-05-28 10:00 UTC (4d2h ago, 12 errors in a row, last permanent)",
        ),
        (
            {"disabled_reason": "gone since 2024-05-01 (HTTP 410)"},
            "disabled: gone since 2024-05-01 (HTTP 410)",
        ),
    ],
)
def test_status_of(fields: dict[str, object], expected: str) -> None:
    health = replace(new_health(now=NOW, settings=S), **fields)  # type: ignore[arg-type]
    assert status_of(health, now=NOW, settings=S) == expected


def test_failing_flag_appears_after_configured_count() -> None:
    states = run_errors(S.flag_after_errors, FetchError("down", url=URL))
    labels = [status_of(h, now=h.next_fetch_at, settings=S).split()[0] for h in states]
    assert labels == ["erroring"] * (S.flag_after_errors - 1) + ["failing"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (90, "1m"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (200000, "2d7h"),
    ],
)
def test_humanize(seconds: float, text: str) -> None:
    assert humanize_s(seconds) == text
