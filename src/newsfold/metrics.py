"""Prometheus metrics (prometheus-client), updated by the service and read at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FETCHES = Counter("newsfold_fetches_total", "Feed fetches by outcome.", ["outcome"])
FETCH_SECONDS = Histogram(
    "newsfold_fetch_duration_seconds",
    "Time to fetch and process one feed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
ARTICLES = Counter("newsfold_articles_ingested_total", "New articles stored.")
DUPLICATES = Counter("newsfold_duplicates_total", "Articles that joined a copy group.", ["tier"])
CLUSTERS = Counter("newsfold_clusters_total", "Cluster events by level.", ["level", "event"])
FEEDS_ERRORING = Gauge("newsfold_feeds_erroring", "Feeds whose last fetch failed.")
POLL_LAG = Gauge("newsfold_poll_lag_seconds", "How late the most overdue claimed feed was.")
LAST_CYCLE = Gauge("newsfold_last_cycle_timestamp_seconds", "When the last poll cycle ended.")
