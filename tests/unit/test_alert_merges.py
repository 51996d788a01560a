"""Alerts and story merges, on SQLite and PostgreSQL: a story that absorbed one which
already alerted under a rule does not alert again for that rule (other rules still fire)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from newsfold.config import AlertRule
from newsfold.pipeline.prepare import Prepared, prepare
from newsfold.pipeline.service import Service
from newsfold.storage.tables import AlertOutboxRow, ClusterRow, MembershipRow
from newsfold.types import FetchResult, Join, Placement, Tier

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsfold.config import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FLOOD = (
    "Heavy rain flooded the harbour district on Monday night. Emergency crews pumped water "
    "out of cellars while the river kept rising past the old stone bridge near the market. "
    "The mayor asked residents of the lower streets to move their cars to higher ground."
)
BUDGET = (
    "The city council approved the budget for schools and roads after a long debate about "
    "taxes, parks and the new tram line across the centre. The opposition voted against it "
    "and said the tram would cost twice what the plan admits over the next ten years."
)
CHESS = (
    "A fourteen year old from the valley won the regional chess championship on Sunday, "
    "beating three grandmasters in a row. Her coach said she trains four hours a day in the "
    "library after school and plans to enter the national open tournament next spring."
)
EVERY = AlertRule(url="https://hooks.example/every", min_sources=2)
BUDGET_RULE = AlertRule(url="https://hooks.example/budget", min_sources=2, query="budget")


def _rss(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>https://site.example/{g}</link>"
        f"<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate><description>{d}</description></item>"
        for g, t, d in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>'
        f"<link>https://site.example/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def service(database_url: str, make_settings: Callable[..., Settings]) -> Service:
    svc = Service.open(make_settings(database_url))
    svc.clock = lambda: NOW
    return svc


def _prepare(service: Service, url: str, items: list[tuple[str, str, str]]) -> Prepared:
    source = next(s for s in service.storage.feed_sources() if s.url == url)
    result = FetchResult(
        requested_url=url, url=url, status=200, content=_rss(items), body_hash=None
    )
    return prepare(
        source,
        result,
        NOW,
        settings=service.settings,
        boilerplate=service.boilerplate.get(source.id),
        known=None,
        dedup=None,
    )


def _ingest(service: Service, url: str, items: list[tuple[str, str, str]]) -> None:
    service.writer.write(_prepare(service, url, items), NOW, 0.0)


def _story_of(service: Service, title: str) -> int:
    found = [a for a in service.storage.list_articles(limit=None) if a.title == title]
    with service.storage.session() as s:
        return int(
            s.scalar(
                select(MembershipRow.cluster_id).where(
                    MembershipRow.level == "stories", MembershipRow.article_id == found[0].id
                )
            )
            or 0
        )


def _bridge(service: Service, url: str, title: str, text: str, into: int, absorbed: int) -> None:
    """Place the article ``title`` into story ``into`` as the bridge that absorbs ``absorbed``
    (as the story index decides when one article matches both)."""
    article = _prepare(service, url, [(title, title, text)]).articles[0]
    aid = next(a.id for a in service.storage.list_articles(limit=None) if a.title == title)
    with service.storage.batch() as batch:
        batch.session.query(MembershipRow).filter(MembershipRow.article_id == aid).delete()
        batch.session.query(ClusterRow).filter(ClusterRow.id == aid).delete()
        placement = Placement(
            article_id=aid,
            copy=Join(aid, Tier.NEW, 1.0, None),
            story=Join(into, Tier.STORY, 0.6, into),
            merged_stories=(absorbed,),
        )
        batch.record_placements([(placement, article)], now=NOW)


def _raise(service: Service, story: int) -> int:
    with service.storage.batch() as batch:
        return batch.raise_alerts([story], [EVERY, BUDGET_RULE], now=NOW)


def _outbox(service: Service) -> list[tuple[int, str]]:
    with service.storage.session() as s:
        rows = s.execute(
            select(AlertOutboxRow.story_id, AlertOutboxRow.rule_key).order_by(AlertOutboxRow.id)
        )
        return [(int(sid), str(key)) for sid, key in rows]


def test_a_merged_story_does_not_alert_again_for_a_rule_it_absorbed(service: Service) -> None:
    one, two = "https://one.example/feed.xml", "https://two.example/feed.xml"
    service.add_feed(one, title="One")
    service.add_feed(two, title="Two")
    _ingest(service, one, [("f1", "Flood", FLOOD), ("b1", "Budget", BUDGET)])
    _ingest(service, one, [("c1", "Chess", CHESS)])
    _ingest(service, two, [("f2", "Flood too", FLOOD + " More rain is expected.")])
    flood, budget = _story_of(service, "Flood"), _story_of(service, "Budget")
    assert flood == _story_of(service, "Flood too") != budget
    # The flood story reached two outlets: the catch-all rule fires (not the budget one).
    assert _raise(service, flood) == 1
    assert _outbox(service) == [(flood, EVERY.key)]
    # The budget story (one outlet) absorbs the flood story: two outlets now. It has
    # already been announced under the catch-all rule, through the story it absorbed;
    # the budget rule is new to it and fires.
    _bridge(service, one, "Chess", CHESS, into=budget, absorbed=flood)
    assert _raise(service, budget) == 1
    assert _outbox(service) == [(flood, EVERY.key), (budget, BUDGET_RULE.key)]
    payload = json.loads(service.storage.recent_alerts(1)[0].payload)
    assert payload["story"]["id"] == budget
    assert sorted(payload["story"]["sources"]) == ["One", "Two"]
    # And again, later: still nothing more.
    assert _raise(service, budget) == 0


def test_merges_chain_to_the_last_survivor(service: Service) -> None:
    one, two = "https://one.example/feed.xml", "https://two.example/feed.xml"
    service.add_feed(one, title="One")
    service.add_feed(two, title="Two")
    _ingest(service, one, [("f1", "Flood", FLOOD), ("b1", "Budget", BUDGET)])
    _ingest(service, one, [("c1", "Chess", CHESS)])
    _ingest(service, two, [("f2", "Flood too", FLOOD + " More rain is expected.")])
    flood, budget, chess = (_story_of(service, t) for t in ("Flood", "Budget", "Chess"))
    assert _raise(service, flood) == 1
    # flood → budget (bridged by a second budget report), then budget → chess. Both bridge
    # reports are ingested first: a later poll re-clusters its stories from their articles,
    # which would part these forced merges again.
    _ingest(service, one, [("b2", "Budget vote", BUDGET + " The vote was close.")])
    _ingest(service, one, [("c2", "Chess final", CHESS + " The final took six hours.")])
    _bridge(service, one, "Budget vote", BUDGET, into=budget, absorbed=flood)
    _bridge(service, one, "Chess final", CHESS, into=chess, absorbed=budget)
    assert _raise(service, chess) == 1  # the budget rule only
    assert _outbox(service) == [(flood, EVERY.key), (chess, BUDGET_RULE.key)]
