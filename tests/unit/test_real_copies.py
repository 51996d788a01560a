"""Copies on a real month of security news: every copy group the code forms, scored against
pairs labelled by reading (tests/data/real/security-copies.labels.tsv: ids and labels only).

The month is served as one feed per outlet (``source``), as ``eval`` replays a labelled set.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from newsfold.config import DedupSettings
from newsfold.evaluation.datasets import Record
from newsfold.evaluation.scoring import replay, to_docs

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MONTH = SHARED / "data" / "real-news" / "security-2025-11.jsonl"
LABELS = Path(__file__).resolve().parents[1] / "data" / "real" / "security-copies.labels.tsv"
needs_month = pytest.mark.skipif(not MONTH.is_file(), reason="shared real month not present")

# Floors just under the measured values (see README, "Deduplication quality").
PRECISION_FLOOR = 0.95  # at most one wrong pair in twenty
RECALL_FLOOR = 0.85


def _labels() -> dict[frozenset[str], bool]:
    out: dict[frozenset[str], bool] = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("a\t"):
            continue
        a, b, label = line.split("\t")
        assert label in ("copy", "distinct"), line
        out[frozenset((a, b))] = label == "copy"
    return out


def _groups() -> list[list[str]]:
    records = []
    for line in MONTH.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        records.append(
            Record(
                id=raw["id"],
                cluster=raw["id"],
                title=raw["title"],
                text=raw["text"],
                published=datetime.fromisoformat(raw["published"]),
                source=raw["source"],
                url=raw.get("url"),
            )
        )
    docs, _ = to_docs(records)
    members: dict[int, list[str]] = defaultdict(list)
    for placement in replay(docs, DedupSettings()):
        members[placement.copy.cluster_id].append(records[placement.article_id - 1].id)
    return [sorted(g) for g in members.values() if len(g) > 1]


def test_labels_hold_ids_and_labels_only() -> None:
    labels = _labels()
    assert labels
    assert all(len(pair) == 2 and all(i.startswith("sec-nov:") for i in pair) for pair in labels)


@needs_month
def test_real_month_copy_precision_and_recall() -> None:
    labels = _labels()
    groups = _groups()
    joined = {frozenset(p) for g in groups for p in itertools.combinations(g, 2)}
    unlabelled = [sorted(p) for p in joined if p not in labels]
    assert not unlabelled, f"copy pairs nobody labelled: {unlabelled[:5]}"
    wrong_groups = [
        g for g in groups if any(not labels[frozenset(p)] for p in itertools.combinations(g, 2))
    ]
    copies = {p for p, is_copy in labels.items() if is_copy}
    precision = sum(labels[p] for p in joined) / max(len(joined), 1)
    recall = len(joined & copies) / len(copies)
    assert len(wrong_groups) * 20 <= len(groups), wrong_groups
    assert precision >= PRECISION_FLOOR, (precision, recall)
    assert recall >= RECALL_FLOOR, (precision, recall)
    # The two groups right before templates and identifiers stay.
    for kept in (("sec-nov:880", "sec-nov:955", "sec-nov:980"), ("sec-nov:996", "sec-nov:997")):
        assert any(set(kept) <= set(g) for g in groups), kept
