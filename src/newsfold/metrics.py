"""Prometheus metrics (prometheus-client), updated by the service and daemon, read at ``/metrics``.

Every label value is created up front so a scrape shows each series at 0 from
the start: ``rate()`` and alerts need the series to exist before the first event.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from newsfold.types import FetchOutcome, Level

# Every outcome of a poll that was processed (a feed removed mid-poll is not counted).
FETCH_OUTCOMES = tuple(o for o in FetchOutcome if o is not FetchOutcome.SKIPPED)

FETCHES = Counter("newsfold_fetches_total", "Feed fetches by outcome.", ["outcome"])
FETCH_SECONDS = Histogram(
    "newsfold_fetch_duration_seconds",
    "Time to fetch and process one feed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
ARTICLES = Counter("newsfold_articles_ingested_total", "New articles stored.")
DUPLICATES = Counter(
    "newsfold_duplicates_total", "New articles that joined a copy group, by tier.", ["tier"]
)
CLUSTERS = Counter(
    "newsfold_clusters_total",
    "Cluster events by level (copies|stories) and event (created|extended|merged).",
    ["level", "event"],
)
FEEDS_ERRORING = Gauge("newsfold_feeds_erroring", "Feeds whose last fetch failed.")
POLL_LAG = Gauge(
    "newsfold_poll_lag_seconds",
    "How long the most overdue feed had been waiting when the last poll cycle began.",
)
LAST_CYCLE = Gauge("newsfold_last_cycle_timestamp_seconds", "When the last poll cycle ended.")

for _outcome in FETCH_OUTCOMES:
    FETCHES.labels(_outcome)
for _tier in ("exact", "near"):
    DUPLICATES.labels(_tier)
for _level in Level:
    for _event in ("created", "extended"):
        CLUSTERS.labels(_level, _event)
CLUSTERS.labels(Level.STORIES, "merged")
