"""A small dated labelled story set, as feeds and as an ``eval`` dataset.

Real reports (the ECB+ dev set) given event dates, as a news stream would
have them: every topic's first event within a few days of the others (many
unrelated stories at once), its sibling event (same kind: a second
earthquake, a second rehab stay) long after, each story's reports over two
days. The documents are dealt into feeds, each a back catalogue spanning the
whole period, as a newly subscribed feed is.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from newsfold.evaluation.datasets import Record
from tests.conftest import SHARED

DEV = SHARED / "data" / "dedup-dev.jsonl"
BASE = datetime(2019, 1, 7, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Item:
    guid: str
    feed: int
    title: str
    text: str
    published: datetime
    story: str

    def rss(self) -> str:
        body = "".join(f"<p>{escape(p)}</p>" for p in self.text.split("\n") if p.strip())
        return (
            f"<item><title>{escape(self.title)}</title>"
            f"<link>https://outlet{self.feed}.example/story/{self.guid}</link>"
            f'<guid isPermaLink="false">{self.guid}</guid>'
            f"<pubDate>{self.published.strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
            f"<description>{escape(body)}</description></item>"
        )


def dated_items(
    topics: int = 8, feeds: int = 4, *, separation_days: int = 400, seed: int = 11
) -> list[Item]:
    """The first ``topics`` ECB+ dev topics, dated and dealt into ``feeds`` feeds."""
    rng = random.Random(seed)
    docs = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    wanted = sorted({d["topic"] for d in docs}, key=lambda t: (len(t), t))[:topics]
    docs = [d for d in docs if d["topic"] in wanted]
    event_at: dict[str, datetime] = {}
    for topic in wanted:
        first = BASE + timedelta(days=rng.randrange(0, 6), hours=rng.randrange(24))
        stories = sorted({d["cluster"] for d in docs if d["topic"] == topic})
        for j, story in enumerate(stories):
            event_at[story] = first + timedelta(days=j * separation_days)
    return [
        Item(
            guid=f"dated-{i}",
            feed=rng.randrange(feeds),
            title=d["title"],
            text=d["text"],
            published=event_at[d["cluster"]] + timedelta(minutes=rng.randrange(0, 48 * 60)),
            story=d["cluster"],
        )
        for i, d in enumerate(docs)
    ]


def feed_document(n: int, items: list[Item]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {n}</title><link>https://outlet{n}.example/</link>"
        f"<description>archive</description>{''.join(i.rss() for i in items)}</channel></rss>"
    ).encode()


def records(items: list[Item]) -> list[Record]:
    """The same documents as an ``eval`` dataset (ids are the feeds' GUIDs)."""
    return [
        Record(
            id=i.guid,
            cluster=i.story,
            title=i.title,
            text=i.text,
            published=i.published,
            source=f"outlet{i.feed}",
            url=f"https://outlet{i.feed}.example/story/{i.guid}",
        )
        for i in sorted(items, key=lambda i: i.published)
    ]
