"""The hand-labelled real-news sets: complete, consistent with the shared files, servable."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from benchmarks import realsets

from newsfold.config import NormaliseSettings
from newsfold.normalise import normalise_entry
from newsfold.parse import parse_feed
from newsfold.types import FeedSource

if TYPE_CHECKING:
    from pathlib import Path

needs_feeds = pytest.mark.skipif(not realsets.MINIFLUX.is_dir(), reason="shared data absent")
needs_month = pytest.mark.skipif(not realsets.SECURITY_MONTH.is_file(), reason="shared data absent")
LABEL = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@pytest.mark.parametrize(
    ("path", "key"),
    [(realsets.DE_LABELS, ("feed", "entry_key")), (realsets.SECURITY_LABELS, ("id",))],
)
def test_label_files_are_well_formed(path: Path, key: tuple[str, ...]) -> None:
    rows = realsets.read_labels(path)
    keys = Counter(tuple(r[k] for k in key) for r in rows)
    assert [k for k, n in keys.items() if n > 1] == []
    described: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        assert LABEL.match(r["label"]), r
        assert r["description"].strip(), r
        described[r["label"]].add(r["description"])
    # One event, one description: a label reused by mistake shows up as two.
    assert {label: d for label, d in described.items() if len(d) > 1} == {}


@needs_feeds
def test_every_german_item_is_labelled_exactly_once() -> None:
    rows = realsets.read_labels(realsets.DE_LABELS)
    feeds = sorted({r["feed"] for r in rows})
    entries = 0
    for feed in feeds:
        path = realsets.MINIFLUX / feed
        parsed = parse_feed(path.read_bytes(), url=path.as_uri())
        keys = [
            normalise_entry(
                e,
                FeedSource(id=0, url=path.as_uri()),
                fetched_at=realsets.DE_FETCHED_AT,
                settings=NormaliseSettings(),
            ).entry_key
            for e in parsed.entries
        ]
        assert len(set(keys)) == len(keys)
        assert sorted(keys) == sorted(r["entry_key"] for r in rows if r["feed"] == feed)
        entries += len(keys)
    records = realsets.de_records()
    assert len(records) == entries == len(rows)
    assert all(r.published is not None and r.text for r in records)
    # Both outlets report some events in common: the set is about folding across outlets.
    sources = defaultdict(set)
    for r in records:
        sources[r.cluster].add(r.source)
    assert sum(len(s) > 1 for s in sources.values()) >= 10


@needs_month
def test_every_item_of_the_chosen_days_is_labelled() -> None:
    records = realsets.security_records()
    days = {r.published.date() for r in records if r.published}
    month = [
        json.loads(line)
        for line in realsets.SECURITY_MONTH.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    on_days = {
        str(m["id"])
        for m in month
        if datetime.fromisoformat(m["published"]).astimezone(UTC).date() in days
    }
    assert {r.id for r in records} == on_days
    assert len(days) in (3, 4)
    assert (max(days) - min(days)).days == len(days) - 1  # consecutive


@pytest.mark.skipif(
    not (realsets.MINIFLUX.is_dir() and realsets.SECURITY_MONTH.is_file()),
    reason="shared data absent",
)
def test_served_feeds_key_items_as_gold_does(tmp_path: Path) -> None:
    counts = realsets.write(tmp_path)
    for name, n in counts.items():
        gold = json.loads((tmp_path / name / "gold.json").read_text())
        assert len(gold) == n
        keys = []
        for feed in sorted((tmp_path / name).glob("*.xml")):
            parsed = parse_feed(feed.read_bytes(), url=feed.as_uri())
            keys += [
                normalise_entry(
                    e,
                    FeedSource(id=0, url=feed.as_uri()),
                    fetched_at=datetime.now(UTC),
                    settings=NormaliseSettings(),
                ).entry_key
                for e in parsed.entries
            ]
        assert sorted(keys) == sorted(gold)
