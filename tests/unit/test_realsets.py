"""The hand-labelled real-news sets: complete, consistent with the shared files, servable."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
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
LABEL = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@pytest.mark.parametrize(
    ("path", "key"),
    [(realsets.DE_LABELS, ("feed", "entry_key"))],
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
