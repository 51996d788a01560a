"""Retention on SQLite and PostgreSQL: ``newsfold prune`` and the daemon's daily prune.

One small world, ingested through the writer on a fixed clock (retention 5 days,
story window 3 days):

    S1  a1 (feed 1, -10 d) and a2, its copy (feed 2)   closed, all old: goes whole
    S2  b1 (feed 1, -7 d) and b2 (feed 2, -4.5 d)      closed: b1 goes, b2 stays
    S3  c1 (feed 1, -5.5 d) and c2 (feed 2, -2.75 d)   open (c2 is in the window): kept
    S4  d1 (feed 1, -1 d)                               new: kept

Story members share their words in another order: one story, never one copy group.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select, text

from newsfold.cli import main
from newsfold.errors import NotFoundError
from newsfold.pipeline.index_keeper import IndexKeeper
from newsfold.pipeline.prepare import prepare
from newsfold.pipeline.service import Service
from newsfold.storage.records import FetchLogEntry
from newsfold.storage.tables import (
    ArticleRow,
    ClusterRow,
    FetchLogRow,
    MembershipRow,
    MergeRow,
    SplitRow,
)
from newsfold.types import FetchOutcome, FetchResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from newsfold.config import Settings
    from newsfold.dedup import Deduplicator

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _words(seed: int, n: int = 90) -> list[str]:
    rng = random.Random(seed)
    letters = "bcdfghjklmnprstvz"
    vowels = "aeiou"
    return [
        "".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        for _ in range(n)
    ]


def _shuffled(words: list[str], seed: int) -> list[str]:
    out = list(words)
    random.Random(seed).shuffle(out)
    return out


# guid → (feed, days before NOW, words)
WORLD: dict[str, tuple[int, float, list[str]]] = {
    "a1": (1, 10.0, _words(1)),
    "a2": (2, 10.0 - 1 / 24, _words(1)),
    "b1": (1, 7.0, _words(2)),
    "b2": (2, 4.5, _shuffled(_words(2), 20)),
    "c1": (1, 5.5, _words(3)),
    "c2": (2, 2.75, _shuffled(_words(3), 30)),
    "d1": (1, 1.0, _words(4)),
}


def _rss(items: Sequence[tuple[str, datetime, list[str]]]) -> bytes:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{' '.join(sorted(words[:40])[:6])}</title>"
        f"<link>https://site.example/{guid}</link>"
        f"<pubDate>{at.strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f"<description>{' '.join(words)}.</description></item>"
        for guid, at, words in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>'
        f"<link>https://site.example/</link>{body}</channel></rss>"
    ).encode()


def _service(
    make_settings: Callable[..., Settings], database_url: str, clock: Clock, **retention: Any
) -> Service:
    base = make_settings(database_url)
    settings = base.model_copy(
        update={
            "normalise": base.normalise.model_copy(update={"detect_language": False}),
            "pipeline": base.pipeline.model_copy(update={"workers": 1}),
            "retention": base.retention.model_copy(update={"days": 5.0, **retention}),
        }
    )
    service = Service(settings, clock=clock)
    service.storage.upgrade()
    return service


def _ingest(
    service: Service, feed_id: int, items: Sequence[tuple[str, datetime, list[str]]]
) -> int:
    source = next(s for s in service.storage.feed_sources() if s.id == feed_id)
    now = service.clock()
    result = FetchResult(
        requested_url=source.url, url=source.url, status=200, content=_rss(items), body_hash=None
    )
    prepared = prepare(
        source,
        result,
        now,
        settings=service.settings,
        boilerplate=service.boilerplate.get(source.id),
        known=None,
        dedup=None,
    )
    return service.writer.write(prepared, now, 0.0).new_articles


def _world(
    make_settings: Callable[..., Settings], database_url: str, now: datetime = NOW
) -> dict[str, int]:
    """Ingest WORLD with retention off (as before it was turned on); returns guid → article id."""
    service = _service(make_settings, database_url, Clock(now), days=None)
    feeds = {n: service.add_feed(f"https://site.example/feed{n}.xml").id for n in (1, 2)}
    for n, feed_id in feeds.items():
        items = [(g, now - d * DAY, w) for g, (f, d, w) in WORLD.items() if f == n]
        assert _ingest(service, feed_id, items) == len(items)
    with service.storage.session() as s:
        ids = {
            key.split("/")[-1]: int(aid)
            for key, aid in s.execute(select(ArticleRow.url, ArticleRow.id))
        }
    service.close()
    return ids


def _clusters(service: Service) -> dict[tuple[str, int], tuple[int, datetime, datetime]]:
    with service.storage.session() as s:
        return {
            (r.level, r.id): (r.size, r.first_seen, r.last_seen)
            for r in s.scalars(select(ClusterRow))
        }


def _memberships(service: Service) -> dict[tuple[str, int], set[int]]:
    out: dict[tuple[str, int], set[int]] = {}
    with service.storage.session() as s:
        for aid, level, cid in s.execute(
            select(MembershipRow.article_id, MembershipRow.level, MembershipRow.cluster_id)
        ):
            out.setdefault((level, int(cid)), set()).add(int(aid))
    return out


def _consistent(service: Service) -> None:
    """Every cluster row is its memberships: size, first and last seen; no empty cluster."""
    with service.storage.session() as s:
        published = dict(s.execute(select(ArticleRow.id, ArticleRow.published)).all())
    members = _memberships(service)
    clusters = _clusters(service)
    assert set(clusters) == set(members)
    for key, (size, first, last) in clusters.items():
        times = [published[a] for a in members[key]]
        assert (size, first, last) == (len(times), min(times), max(times)), key


def _fingerprint(dedup: Deduplicator, ids: Sequence[int]) -> dict[int, Any]:
    """What the index holds of these articles: its copy row, its story and the story's span."""
    out: dict[int, Any] = {}
    for aid in ids:
        story = dedup.stories.docs.story_of(aid)
        out[aid] = (
            aid in dedup.copies.slot_of,
            story,
            None if story is None else dedup.stories.stories.meta(story),
        )
    return out


def test_prune_removes_closed_old_stories_and_keeps_open_ones(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    clock = Clock()
    ids = _world(make_settings, database_url)
    service = _service(make_settings, database_url, clock)
    before = _memberships(service)
    story_of = {
        aid: cid for (level, cid), aids in before.items() if level == "stories" for aid in aids
    }
    # The world is as drawn: four stories, a2 a copy of a1, b2 and c2 story members only.
    assert len({story_of[ids[g]] for g in ids}) == 4
    assert story_of[ids["b2"]] == ids["b1"] and story_of[ids["c2"]] == ids["c1"]
    assert ("copies", ids["a1"]) in before and ids["a2"] in before["copies", ids["a1"]]
    assert ("copies", ids["b2"]) in before

    dry = service.prune(dry_run=True)
    assert (dry.articles, dry.copies, dry.stories) == (3, 2, 1)
    assert dry.cutoff == NOW - 5 * DAY and dry.open_since == NOW - 3 * DAY
    assert len(_memberships(service)) == len(before)  # a dry run deletes nothing

    done = service.prune()
    assert (done.articles, done.copies, done.stories) == (3, 2, 1)
    assert done.batches >= 1 and not done.dry_run
    with service.storage.session() as s:
        left = {int(i) for i in s.scalars(select(ArticleRow.id))}
    assert left == {ids[g] for g in ("b2", "c1", "c2", "d1")}
    _consistent(service)
    clusters = _clusters(service)
    # S2 shrank: it keeps its founder's id, its span is what is left.
    assert clusters["stories", ids["b1"]][0] == 1
    assert clusters["stories", ids["b1"]][1] == NOW - 4.5 * DAY
    assert ("stories", ids["a1"]) not in clusters
    # Its representative is the earliest report left, and the story is shown under its title.
    detail = service.storage.cluster_detail(ids["b1"])
    assert [m.id for m in detail.articles] == [ids["b2"]]
    assert detail.summary.title == detail.articles[0].title
    with pytest.raises(NotFoundError):
        service.storage.cluster_detail(ids["a1"])
    assert clusters["stories", ids["c1"]][0] == 2  # open: kept whole
    if service.storage.dialect == "postgresql":
        # The deleted rows' space is reusable: autovacuum may be off, or behind.
        with service.storage.session() as s:
            vacuumed = s.scalar(
                text(
                    "SELECT last_vacuum FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname = 'articles'"
                )
            )
        assert vacuumed is not None
    # Nothing is left to prune: a second run removes nothing.
    again = service.prune()
    assert (again.articles, again.copies, again.stories) == (0, 0, 0)


def test_a_pruned_article_is_never_matched_again_and_a_rebuild_agrees(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    clock = Clock()
    ids = _world(make_settings, database_url)
    service = _service(make_settings, database_url, clock)
    assert ids["b1"] in service.index.ensure().copies.slot_of
    service.prune()
    # b1's exact text again, from a third feed, within a story window of b1: had the
    # index kept b1, this would join b1's (deleted) copy group.
    third = service.add_feed("https://site.example/feed3.xml").id
    assert _ingest(service, third, [("p1", NOW - 4.4 * DAY, WORLD["b1"][2])]) == 1
    with service.storage.session() as s:
        probe = s.scalar(select(ArticleRow.id).where(ArticleRow.url.like("%/p1")))
    assert probe is not None
    members = _memberships(service)
    copy = next(cid for (lvl, cid), aids in members.items() if lvl == "copies" and probe in aids)
    story = next(cid for (lvl, cid), aids in members.items() if lvl == "stories" and probe in aids)
    assert copy == probe  # a copy group of its own: b1 is gone
    assert story == ids["b1"]  # b2's story (founded by b1, whose id it keeps)
    _consistent(service)

    # The live index is what a restart builds from the database.
    fresh = IndexKeeper(service.settings.dedup, service.storage, clock)
    everything = [*ids.values(), probe]
    live = service.index.ensure()
    assert _fingerprint(live, everything) == _fingerprint(fresh.ensure(), everything)
    assert len(live) == len(fresh.ensure()) == 5


def test_a_prune_elsewhere_makes_a_worker_rebuild_its_index(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    clock = Clock()
    ids = _world(make_settings, database_url)
    worker = _service(make_settings, database_url, clock, days=None)
    assert ids["b1"] in worker.index.ensure().copies.slot_of
    other = _service(make_settings, database_url, clock)  # `newsfold prune` in another process
    assert other.prune().articles == 3
    third = worker.add_feed("https://site.example/feed3.xml").id
    assert _ingest(worker, third, [("p1", NOW - 4.4 * DAY, WORLD["b1"][2])]) == 1
    assert ids["b1"] not in worker.index.ensure().copies.slot_of
    _consistent(worker)
    with worker.storage.session() as s:
        # The probe founded its copy group: nothing joined the deleted one.
        assert s.scalar(select(func.count()).where(MembershipRow.cluster_id == ids["b1"])) == 2
    other.close()


def test_new_entries_the_next_prune_would_delete_are_not_stored(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    service = _service(make_settings, database_url, Clock())
    feed = service.add_feed("https://site.example/feed1.xml").id
    items = [("old", NOW - 40 * DAY, _words(7)), ("new", NOW - 2 * DAY, _words(8))]
    assert _ingest(service, feed, items) == 1
    assert _ingest(service, feed, items) == 0  # and the old one is not new again next poll


def test_merged_story_records_go_with_their_story(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    ids = _world(make_settings, database_url)
    service = _service(make_settings, database_url, Clock())
    with service.storage.session(write=True) as s:
        s.add(
            MergeRow(
                level="stories",
                absorbed_id=999_999,
                survivor_id=ids["a1"],
                article_id=ids["a2"],
                merged_at=NOW,
            )
        )
    assert service.prune().stories == 1
    with service.storage.session() as s:
        assert s.scalar(select(func.count()).select_from(MergeRow)) == 0


def test_split_records_go_with_either_story(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """A split names two stories: it goes when either goes (S1 here), or when an id merged
    into a story that goes is one side; splits between stories that stay are kept."""
    ids = _world(make_settings, database_url)
    a1, b1, c1 = ids["a1"], ids["b1"], ids["c1"]  # S1 goes whole; S2 shrinks; S3 stays
    service = _service(make_settings, database_url, Clock())
    absorbed = 999_999  # an id once merged into S1
    with service.storage.session(write=True) as s:
        s.add(
            MergeRow(
                level="stories",
                absorbed_id=absorbed,
                survivor_id=a1,
                article_id=ids["a2"],
                merged_at=NOW,
            )
        )
        s.add_all(
            SplitRow(story_id=story, from_id=source, split_at=NOW - 6 * DAY)
            for story, source in ((a1, b1), (c1, a1), (c1, absorbed), (absorbed, b1), (c1, b1))
        )
    assert [i for i, _ in service.storage.cluster_detail(c1).split_from] == sorted([a1, b1])
    assert service.prune().stories == 1
    with service.storage.session() as s:
        left = {(int(r.story_id), int(r.from_id)) for r in s.scalars(select(SplitRow))}
    assert left == {(c1, b1)}
    assert [i for i, _ in service.storage.cluster_detail(c1).split_from] == [b1]
    assert [i for i, _ in service.storage.cluster_detail(b1).split_into] == [c1]


def test_fetch_log_keeps_the_newest_lines_per_feed(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    service = _service(make_settings, database_url, Clock(), days=None, fetch_log_per_feed=3)
    feed = service.add_feed("https://site.example/feed1.xml").id

    def line(i: int) -> FetchLogEntry:
        return FetchLogEntry(NOW + i * DAY, FetchOutcome.NOT_MODIFIED, 304, 0, 1, 0, None)

    with service.storage.batch(placing=False) as batch:
        for i in range(5):
            batch.log(feed, line(i), keep=3)
    with service.storage.session() as s:
        kept = sorted(s.scalars(select(FetchLogRow.started_at)))
    assert kept == [NOW + i * DAY for i in (2, 3, 4)]
    # A lower setting later: prune trims what is there.
    lower = _service(make_settings, database_url, Clock(), days=None, fetch_log_per_feed=1)
    assert lower.prune(dry_run=True).fetch_log == 2
    report = lower.prune()
    assert (report.fetch_log, report.articles) == (2, 0) and report.cutoff is None
    with lower.storage.session() as s:
        assert list(s.scalars(select(FetchLogRow.started_at))) == [NOW + 4 * DAY]


def test_fetch_log_default_keeps_one_hundred(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    base = make_settings(database_url)
    assert base.retention.fetch_log_per_feed == 100 and base.retention.days is None
    service = Service(base, clock=Clock())
    service.storage.upgrade()
    feed = service.add_feed("https://site.example/feed1.xml").id
    with service.storage.batch(placing=False) as batch:
        for i in range(105):
            entry = FetchLogEntry(NOW + i * DAY, FetchOutcome.NOT_MODIFIED, 304, 0, 1, 0, None)
            batch.log(feed, entry, keep=base.retention.fetch_log_per_feed)
    with service.storage.session() as s:
        assert s.scalar(select(func.count()).select_from(FetchLogRow)) == 100


def test_prune_command_dry_run_and_json(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    _world(make_settings, url, datetime.now(UTC))
    config = tmp_path / "newsfold.toml"
    config.write_text(
        f'database_url = "{url}"\n[dedup]\nstory_window_days = 3.0\n[retention]\ndays = 5\n'
    )
    monkeypatch.setenv("NEWSFOLD_CONFIG", str(config))

    assert main(["prune", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert {k: dry[k] for k in ("dry_run", "articles", "copies", "stories", "fetch_log")} == {
        "dry_run": True,
        "articles": 3,
        "copies": 2,
        "stories": 1,
        "fetch_log": 0,
    }
    assert main(["prune"]) == 0
    assert "deleted 3 articles, 2 emptied copy groups, 1 emptied stories" in capsys.readouterr().out
    assert main(["prune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["articles"] == 0

    config.write_text(f'database_url = "{url}"\n[retention]\ndays = -1\n')
    code = main(["prune"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "retention.days" in err


def test_daemon_prunes_once_a_day_on_a_simulated_clock(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    from newsfold.daemon.scheduler import Daemon

    base = make_settings(database_url)
    settings = base.model_copy(
        update={
            "normalise": base.normalise.model_copy(update={"detect_language": False}),
            "pipeline": base.pipeline.model_copy(update={"workers": 1}),
            "retention": base.retention.model_copy(update={"days": 5.0}),
        }
    )
    ids = _world(make_settings, database_url)
    daemon = Daemon(settings)
    clock = Clock(NOW)
    daemon.service.clock = clock
    storage = daemon.service.storage

    def tick(at: datetime) -> set[int]:
        clock.at = at
        daemon.cycle()
        if daemon.prune_thread is not None:
            daemon.prune_thread.join(60)
        with storage.session() as s:
            return {int(i) for i in s.scalars(select(ArticleRow.id))}

    assert storage.last_prune() is None
    assert tick(NOW) == {ids[g] for g in ("b2", "c1", "c2", "d1")}
    assert storage.last_prune() == NOW
    for hours in (1, 6, 23):
        tick(NOW + timedelta(hours=hours))
    assert storage.last_prune() == NOW  # not again the same day
    # A day later S3 has closed: c1 goes, and b2 is past the cutoff; c2 (3.75 days old) stays.
    assert tick(NOW + DAY) == {ids[g] for g in ("c2", "d1")}
    assert storage.last_prune() == NOW + DAY
    daemon.service.close()
    # A restarted daemon counts the day from the last prune in the database.
    again = Daemon(settings)
    again.service.clock = Clock(NOW + DAY + timedelta(hours=2))
    again.cycle()
    assert again.prune_thread is None
    again.service.close()
