"""Several workers on one PostgreSQL database: a race-free start, fair claims, short renewed leases,
per-feed tasks (a slow feed holds one slot, not the feeds due after it) and truthful gauges.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from newsfold.daemon.scheduler import Daemon
from newsfold.storage import Storage
from tests.e2e.test_daemon import daemon_env, get, rss, sql, start_daemon, wait_for
from tests.support.server import Gated, Stall, Static

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from newsfold.config import Settings
    from tests.support.server import FeedServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def storage(postgres_url: str) -> Iterator[Storage]:
    s = Storage(postgres_url)
    s.upgrade()
    yield s
    s.close()


def _config_feeds(n: int) -> list[tuple[str, str | None, int | None, bool, tuple[str, ...]]]:
    return [(f"https://outlet{i}.example/feed.xml", None, None, False, ()) for i in range(n)]


def test_concurrent_settings_syncs_do_not_collide(postgres_url: str, storage: Storage) -> None:
    """Replicas started together sync the same settings file at the same moment."""
    feeds = _config_feeds(30)
    workers = 6
    barrier = threading.Barrier(workers)
    added: list[int] = []
    errors: list[BaseException] = []

    def sync() -> None:
        mine = Storage(postgres_url)
        try:
            barrier.wait()
            added.append(
                mine.sync_config_feeds(feeds, now=datetime.now(UTC), default_interval_s=600)
            )
        except BaseException as e:  # reported below, with the others
            errors.append(e)
        finally:
            mine.close()

    threads = [threading.Thread(target=sync) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(added) == 30  # each feed added by exactly one of them
    assert sql(postgres_url, "SELECT count(*), count(DISTINCT url) FROM feeds") == [(30, 30)]


def test_claims_are_disjoint_and_bounded(storage: Storage) -> None:
    now = datetime.now(UTC)
    for i in range(10):
        storage.add_feed(f"https://o{i}.example/f.xml", now=now - timedelta(seconds=1))
    a = storage.claim_due(now=now, owner="a", lease_s=60, limit=4)
    b = storage.claim_due(now=now, owner="b", lease_s=60, limit=4)
    c = storage.claim_due(now=now, owner="c", lease_s=60, limit=4)
    assert (len(a), len(b), len(c)) == (4, 4, 2)
    assert len({s.id for s in a + b + c}) == 10


def test_lease_expires_unless_renewed(storage: Storage) -> None:
    now = datetime.now(UTC)
    storage.add_feed("https://renewed.example/f.xml", now=now - timedelta(seconds=1))
    storage.add_feed("https://dropped.example/f.xml", now=now - timedelta(seconds=1))
    claimed = storage.claim_due(now=now, owner="dead-or-alive", lease_s=1.0)
    assert len(claimed) == 2
    renewed = next(s.id for s in claimed if "renewed" in s.url)
    # Half a lease later the live worker renews the feed it is still working on.
    held = storage.renew(
        [renewed], owner="dead-or-alive", now=now + timedelta(seconds=0.5), lease_s=1.0
    )
    assert held == {renewed}
    assert storage.claim_due(now=now + timedelta(seconds=0.8), owner="other", lease_s=1.0) == []
    # After the lease: the feed nobody renewed is claimed by another worker, the other is not.
    later = storage.claim_due(now=now + timedelta(seconds=1.2), owner="other", lease_s=1.0)
    assert [s.url for s in later] == ["https://dropped.example/f.xml"]
    # A renewal by a worker that lost its lease says so.
    assert storage.renew([later[0].id], owner="dead-or-alive", now=now, lease_s=1.0) == set()


def _daemon(make_settings: Callable[..., Settings], url: str, **daemon: object) -> Iterator[Daemon]:
    settings = make_settings(
        url,
        fetch={"concurrency": 2, "min_host_delay_s": 0.0, "read_timeout_s": 20.0},
        schedule={"jitter": 0.0},
        daemon={"tick_s": 0.1, "grace_s": 0.5, **daemon},
        pipeline={"workers": 1},
    )
    d = Daemon(settings)
    thread = threading.Thread(target=d.serve, daemon=True)
    thread.start()
    try:
        yield d
    finally:
        d.request_stop()
        thread.join(30)


def test_a_worker_claims_only_its_free_slots_and_renews_what_it_works_on(
    feed_server: FeedServer,
    postgres_url: str,
    storage: Storage,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = datetime.now(UTC)
    for i in range(6):
        feed_server.route(f"/slow{i}.xml", Stall(8.0))
        storage.add_feed(feed_server.url(f"/slow{i}.xml"), now=now, interval_s=3600)
    caplog.set_level(logging.WARNING)
    gen = _daemon(make_settings, postgres_url, lease_s=2.0)
    daemon = next(gen)
    try:
        wait_for(lambda: daemon.in_flight == 2, timeout=20)
        leased = "SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL"
        # Two slots (fetch.concurrency): two leases, the other four feeds left for other workers.
        time.sleep(0.5)
        assert sql(postgres_url, leased) == [(2,)]
        # Two leases long into the stalled fetches, the leases are still held and in the future.
        time.sleep(4.0)
        rows = sql(
            postgres_url,
            "SELECT lease_owner, lease_expires_at FROM feeds WHERE lease_owner IS NOT NULL",
        )
        assert len(rows) == 2
        assert all(owner == daemon.worker_id for owner, _ in rows)
        assert all(expires > datetime.now(UTC) for _, expires in rows)  # type: ignore[operator]
    finally:
        with pytest.raises(StopIteration):
            next(gen)
    assert "lost the lease" not in caplog.text


def test_slow_feed_does_not_hold_back_the_others_and_no_overrun_warnings(
    feed_server: FeedServer,
    postgres_url: str,
    storage: Storage,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = datetime.now(UTC)
    feed_server.route("/slow.xml", Stall(15.0))
    storage.add_feed(feed_server.url("/slow.xml"), now=now, interval_s=3600)
    doc = rss("quick", [("q1", "Quick story", "Text about the harbour. " * 20)])
    feed_server.route("/quick.xml", Static(doc))
    caplog.set_level(logging.INFO)
    gen = _daemon(make_settings, postgres_url)
    daemon = next(gen)
    try:
        wait_for(lambda: feed_server.hits("/slow.xml"), timeout=20)
        # A feed that becomes due while the slow one is in flight is polled meanwhile (before,
        # the next claim waited for the whole cycle, i.e. for the slow feed).
        storage.add_feed(feed_server.url("/quick.xml"), now=datetime.now(UTC), interval_s=3600)
        done = "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL"
        wait_for(lambda: sql(postgres_url, done) == [(1,)], timeout=12)
        assert daemon.in_flight == 1  # the slow feed still is
        time.sleep(1.0)  # ten more ticks while the slow fetch runs on
    finally:
        with pytest.raises(StopIteration):
            next(gen)
    assert "maximum number of running instances" not in caplog.text
    assert "skipped" not in caplog.text


def test_erroring_gauge_is_read_from_the_database_at_start(
    feed_server: FeedServer, tmp_path: Path, postgres_url: str, storage: Storage
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    for i in range(3):
        storage.add_feed(feed_server.url(f"/f{i}.xml"), now=later)  # not due: nothing is fetched
    with storage.session(write=True) as s:
        from sqlalchemy import update

        from newsfold.storage.tables import FeedRow

        s.execute(update(FeedRow).where(FeedRow.id <= 2).values(error_count=3))
    daemon = start_daemon(tmp_path, daemon_env(postgres_url), http=True)
    try:

        def gauge() -> float | None:
            try:
                _status, body = get(f"{daemon.http}/metrics")
            except OSError:
                return None
            for family in text_string_to_metric_families(body.decode()):
                if family.name == "newsfold_feeds_erroring":
                    return family.samples[0].value
            return None

        assert wait_for(lambda: gauge() is not None, timeout=30)
        assert gauge() == 2.0
    finally:
        assert daemon.stop() == 0
    assert sum(feed_server.hits(f"/f{i}.xml") for i in range(3)) == 0


def test_two_workers_each_take_a_fair_share(
    feed_server: FeedServer, tmp_path: Path, postgres_url: str, storage: Storage
) -> None:
    """With two slots each, two daemons fetch about twice as fast as one would: both get work."""
    n = 16
    for i in range(n):
        doc = rss(f"o{i}", [(f"o{i}-1", f"Story {i}", f"Words of story {i}. " * 30)])
        feed_server.route(f"/o{i}.xml", Gated(Static(doc), hold_s=0.4))
    env = daemon_env(postgres_url, fetch__concurrency=2, pipeline__workers=1)
    a = start_daemon(tmp_path, env, name="a")
    b = start_daemon(tmp_path, env, name="b")
    try:
        wait_for(lambda: a.events("start") and b.events("start"), timeout=60)
        now = datetime.now(UTC)
        for i in range(n):  # the work appears while both run
            storage.add_feed(feed_server.url(f"/o{i}.xml"), now=now, interval_s=3600)
        done = "SELECT count(*) FROM feeds WHERE last_success_at IS NOT NULL"
        wait_for(lambda: sql(postgres_url, done) == [(n,)], timeout=60, every=0.2)
    finally:
        codes = (a.stop(), b.stop())
    assert codes == (0, 0)
    assert {feed_server.hits(f"/o{i}.xml") for i in range(n)} == {1}
    per_worker = [len(d.events("fetch")) for d in (a, b)]
    assert sum(per_worker) == n
    assert min(per_worker) >= n // 4, per_worker
