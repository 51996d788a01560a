"""``newsfold run``: the long-running poller.

    scheduler.py     APScheduler ticks: claim the feeds that are due, poll them
    probes.py        /healthz, /readyz and /metrics over HTTP

Each poll goes through ``newsfold.pipeline.service.Service``.
"""
