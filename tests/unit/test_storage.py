"""Storage on SQLite and on the real PostgreSQL: schema, idempotent ingest, leases, merges."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from newsfold.errors import (
    FeedExistsError,
    InvalidURLError,
    NotFoundError,
    ParseError,
    StorageError,
)
from newsfold.pipeline.prepare import Prepared, prepare
from newsfold.pipeline.service import Service
from newsfold.storage import Storage
from newsfold.storage.published import StoryFilter
from newsfold.storage.tables import ClusterRow, MembershipRow
from newsfold.types import FeedSource, FetchOutcome, FetchResult, Join, Placement, Tier
from tests.conftest import SHARED

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsfold.config import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rss(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>https://site.example/{g}?utm_source=x</link>"
        f"<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate><description>{d}</description></item>"
        for g, t, d in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>'
        f"<link>https://site.example/</link>{body}</channel></rss>"
    ).encode()


def _texts() -> list[str]:
    import json

    docs = []
    with (SHARED / "data" / "dedup-dev.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            if len(doc["text"]) > 800 and doc["topic"] not in {d["topic"] for d in docs}:
                docs.append(doc)
            if len(docs) == 3:
                break
    return [d["text"].replace("\n", " ") for d in docs]


def _result(url: str, content: bytes) -> FetchResult:
    return FetchResult(requested_url=url, url=url, status=200, content=content, body_hash=None)


@pytest.fixture
def service(database_url: str, make_settings: Callable[..., Settings]) -> Service:
    svc = Service.open(make_settings(database_url))
    svc.clock = lambda: NOW
    return svc


def _ingest(service: Service, feed_id: int, content: bytes) -> int:
    source = next(s for s in service.storage.feed_sources() if s.id == feed_id)
    result = _result(source.url, content)
    prepared = _prepare(service, source, result)
    return service.writer.write(prepared, NOW, 0.0).new_articles


def _prepare(service: Service, source: FeedSource, result: FetchResult) -> Prepared:
    return prepare(
        source,
        result,
        NOW,
        settings=service.settings,
        boilerplate=service.boilerplate.get(source.id),
        known=None,
        dedup=None,
    )


def test_upgrade_is_idempotent_and_check_passes(service: Service) -> None:
    assert service.storage.upgrade() == service.storage.upgrade()
    service.storage.check()


def test_feeds_crud(service: Service) -> None:
    feed = service.add_feed("HTTPS://Site.Example/feed.xml?utm_source=a", title="Site")
    assert feed.url == "https://site.example/feed.xml"
    with pytest.raises(FeedExistsError, match="already subscribed"):
        service.add_feed("https://site.example/feed.xml")
    assert service.storage.get_feed(feed.id).url == feed.url
    assert service.storage.get_feed(feed.url).id == feed.id
    assert service.storage.get_feed(feed.id).next_fetch_at.tzinfo is not None
    service.storage.remove_feed(str(feed.id))
    with pytest.raises(NotFoundError):
        service.storage.get_feed(feed.id)


def test_ingest_is_idempotent_and_revisions_update(service: Service) -> None:
    a, b, c = _texts()
    feed = service.add_feed("https://site.example/feed.xml")
    doc = _rss([("1", "One", a), ("2", "Two", b)])
    assert _ingest(service, feed.id, doc) == 2
    assert _ingest(service, feed.id, doc) == 0  # re-polling adds nothing
    assert len(service.storage.list_articles(limit=None)) == 2

    # A changed body is a revision of the same article, not a new one.
    assert (
        _ingest(service, feed.id, _rss([("1", "One", a + " Updated at noon."), ("3", "Three", c)]))
        == 1
    )
    arts = {x.title: x for x in service.storage.list_articles(limit=None)}
    assert len(arts) == 3
    revised = service.storage.get_article(arts["One"].id)
    assert revised.revision == 2 and revised.text.endswith("Updated at noon.")


def test_removing_a_feed_keeps_cluster_sizes_true(service: Service) -> None:
    (a, *_rest) = _texts()
    one = service.add_feed("https://one.example/feed.xml")
    two = service.add_feed("https://two.example/feed.xml")
    _ingest(service, one.id, _rss([("x", "Wire story", a)]))
    _ingest(service, two.id, _rss([("y", "Wire story again", a + " Extra line.")]))
    clusters = service.storage.list_clusters(limit=None)
    assert [c.size for c in clusters] == [2]
    service.storage.remove_feed(two.id)
    assert [c.size for c in service.storage.list_clusters(limit=None)] == [1]
    with service.storage.session() as s:
        sizes = dict(s.execute(select(ClusterRow.id, ClusterRow.size)).all())
        counts = dict(
            s.execute(
                select(MembershipRow.cluster_id, func.count())
                .where(MembershipRow.level == "stories")
                .group_by(MembershipRow.cluster_id)
            ).all()
        )
    assert all(sizes[k] == v for k, v in counts.items())


def test_leases_give_disjoint_claims_and_expire(service: Service) -> None:
    for i in range(6):
        service.add_feed(f"https://h{i}.example/feed.xml")
    later = NOW + timedelta(days=1)
    a = service.storage.claim_due(now=later, owner="a", lease_s=60, limit=3)
    b = service.storage.claim_due(now=later, owner="b", lease_s=60)
    assert len(a) == 3 and len(b) == 3
    assert not {f.id for f in a} & {f.id for f in b}
    assert service.storage.claim_due(now=later, owner="c", lease_s=60) == []
    # A crashed worker's lease runs out and its feeds are claimable again.
    again = service.storage.claim_due(now=later + timedelta(seconds=61), owner="c", lease_s=60)
    assert len(again) == 6
    service.storage.release([f.id for f in again], owner="c")
    assert len(service.storage.claim_due(now=later, owner="d", lease_s=60)) == 6


def test_story_merge_is_recorded_and_old_ids_resolve(service: Service) -> None:
    a, b, c = _texts()
    feed = service.add_feed("https://site.example/feed.xml")
    _ingest(service, feed.id, _rss([("1", "A", a), ("2", "B", b), ("3", "C", c)]))
    ids = sorted(x.id for x in service.storage.list_articles(limit=None))
    # Write a placement that bridges stories ids[0] and ids[1] through article ids[2].
    with service.storage.batch() as batch:
        batch.session.query(MembershipRow).filter(MembershipRow.article_id == ids[2]).delete()
        batch.session.query(ClusterRow).filter(ClusterRow.id == ids[2]).delete()
        article = _prepare(
            service,
            next(iter(service.storage.feed_sources())),
            _result("https://site.example/feed.xml", _rss([("3", "C", c)])),
        ).articles[0]
        placement = Placement(
            article_id=ids[2],
            copy=Join(ids[2], Tier.NEW, 1.0, None),
            story=Join(ids[0], Tier.STORY, 0.6, ids[0]),
            merged_stories=(ids[1],),
        )
        batch.record_placements([(placement, article)], now=NOW)
    detail = service.storage.cluster_detail(ids[1])
    assert detail.summary.id == ids[0]
    assert detail.requested_id == ids[1]
    assert detail.summary.size == 3 == len(detail.articles)
    assert detail.merged_from == (ids[1],)
    assert [c.id for c in service.storage.list_clusters(limit=None)] == [ids[0]]


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StorageError):
        Storage("postgresql+psycopg://nobody@127.0.0.1:1/none").upgrade()


def test_material_revision_is_re_placed_and_trivial_one_is_not(service: Service) -> None:
    a, b, _ = _texts()
    one = service.add_feed("https://one.example/feed.xml")
    two = service.add_feed("https://two.example/feed.xml")
    _ingest(service, one.id, _rss([("1", "Original", a)]))
    _ingest(service, two.id, _rss([("y", "Other story", b)]))
    arts = {x.title: x for x in service.storage.list_articles(limit=None)}
    assert arts["Original"].cluster != arts["Other story"].cluster

    # Trivial: a line added at the end keeps the article where it was.
    _ingest(service, two.id, _rss([("y", "Other story", b + " (Updated.)")]))
    again = service.storage.get_article(arts["Other story"].id)
    assert again.revision == 2 and again.cluster == arts["Other story"].cluster

    # Material: the entry now carries the other story's text: it is placed again and joins it.
    _ingest(service, two.id, _rss([("y", "Other story", a + " Extra closing line.")]))
    moved = service.storage.get_article(arts["Other story"].id)
    assert moved.revision == 3
    assert moved.cluster == arts["Original"].cluster
    detail = service.storage.cluster_detail(arts["Original"].cluster)
    assert detail.summary.size == 2 == len(detail.articles)
    # The index agrees with the database after a rebuild.
    assert service.rebuild_index() == 2


def test_a_feed_removed_during_its_poll_is_skipped(service: Service) -> None:
    a, _, _ = _texts()
    feed = service.add_feed("https://site.example/feed.xml")
    source = next(iter(service.storage.feed_sources()))
    prepared = _prepare(service, source, _result(source.url, _rss([("1", "A", a)])))
    service.storage.remove_feed(feed.id)  # between fetch and write
    summary = service.writer.write(prepared, NOW, 0.0)
    assert summary.status is FetchOutcome.SKIPPED and summary.new_articles == 0
    assert service.storage.list_articles(limit=None) == []
    assert service.rebuild_index() == 0
    failed = service.writer.record_error(source, ParseError("not a feed"), NOW, 0.0)
    assert failed.status is FetchOutcome.SKIPPED


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://site.example/feed", "feed"])
def test_add_feed_refuses_what_is_not_an_http_url(service: Service, url: str) -> None:
    with pytest.raises(InvalidURLError, match="not an http"):
        service.add_feed(url)
    assert service.storage.list_feeds() == []


def test_a_poll_writes_the_feed_state_and_its_fetch_log(service: Service) -> None:
    a, _, _ = _texts()
    feed = service.add_feed("https://site.example/feed.xml")
    assert _ingest(service, feed.id, _rss([("1", "A", a)])) == 1
    stored = service.storage.get_feed(feed.id)
    assert (stored.title, stored.site_url) == ("Site", "https://site.example/")
    assert stored.last_success_at == NOW and stored.error_count == 0
    [entry] = service.storage.fetch_history(feed.id)
    assert (entry.outcome, entry.http_status, entry.new_items) == (FetchOutcome.OK, 200, 1)


def test_min_sources_counts_outlets_not_articles(service: Service) -> None:
    a, b, c = _texts()
    one = service.add_feed("https://one.example/feed.xml", title="One")
    two = service.add_feed("https://two.example/feed.xml", title="Two")
    one_more = service.add_feed("https://one.example/sport.xml", title="One")  # same outlet
    _ingest(
        service,
        one.id,
        _rss(
            # One outlet's two items on one subject: their titles share it.
            [
                ("a1", "Harbour inquiry", a),
                ("a2", "Harbour inquiry, again", a + " Extra line."),
                ("b1", "B", b),
                ("c1", "C", c),
            ]
        ),
    )
    _ingest(service, two.id, _rss([("b2", "B too", b + " Extra line.")]))
    _ingest(service, one_more.id, _rss([("c2", "C too", c + " Extra line.")]))
    stories = service.storage.published_stories(limit=None)
    assert sorted(s.size for s in stories) == [2, 2, 2]  # two articles each
    assert sorted(len(s.sources) for s in stories) == [1, 1, 2]
    for n in (1, 2, 3):
        flt = StoryFilter(min_sources=n)
        expected = [s.id for s in stories if len(s.sources) >= n]
        assert [s.id for s in service.storage.published_stories(flt, limit=None)] == expected
        assert service.storage.count_published_stories(flt) == len(expected)
    # Combined with the other filters, and paged.
    flt = StoryFilter(min_sources=2, min_size=2, since=NOW - timedelta(days=1))
    assert len(service.storage.published_stories(flt, limit=1, offset=0)) == 1
    assert service.storage.published_stories(flt, limit=1, offset=1) == []


def test_fetch_log_keeps_the_wait_for_the_host_apart(service: Service) -> None:
    text = "The old river bridge reopened on Tuesday after eight months of repairs."
    feed = service.add_feed("https://site.example/feed.xml")
    source = next(s for s in service.storage.feed_sources() if s.id == feed.id)
    result = dataclasses.replace(_result(source.url, _rss([("1", "A", text)])), wait_s=1.234)
    # The poll started 2 s ago, of which 1.234 s were spent waiting for the host's turn.
    service.writer.write(_prepare(service, source, result), NOW, 2.0)
    [entry] = service.storage.fetch_history(feed.id)
    assert entry.wait_ms == 1234
    assert entry.duration_ms == 2000  # the feed's own poll, the wait included
