"""The story-rule benchmarks replay the real one-pass process and keep held-out topics unseen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from benchmarks import story_cv, story_rules

from newsfold.config import DedupSettings
from newsfold.evaluation import evaluate, read_dataset
from newsfold.evaluation.scoring import score

if TYPE_CHECKING:
    from newsfold.evaluation.datasets import Record

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEV = SHARED / "data" / "dedup-dev.jsonl"
needs_dev = pytest.mark.skipif(not DEV.is_file(), reason="shared dev set not present")


def _subset(topics: set[str]) -> tuple[list[Record], list[str]]:
    records = read_dataset(DEV)
    all_topics = story_cv.topics_of(DEV, records)
    keep = [i for i, t in enumerate(all_topics) if t in topics]
    return [records[i] for i in keep], [all_topics[i] for i in keep]


def test_folds_deal_topics_in_numeric_order() -> None:
    topics = [f"ecbplus:{n}" for n in (10, 2, 1, 3, 2, 30)]
    folds = story_cv.folds_of(topics, 2)
    assert folds == [{"ecbplus:1", "ecbplus:3", "ecbplus:30"}, {"ecbplus:2", "ecbplus:10"}]
    assert set().union(*folds) == set(topics)


def test_grid_is_the_product_of_its_axes() -> None:
    grid = story_cv.parse_grid(["story_threshold=0.2,0.3", "story_name_threshold=0.1"])
    assert grid == [
        {"story_threshold": 0.2, "story_name_threshold": 0.1},
        {"story_threshold": 0.3, "story_name_threshold": 0.1},
    ]


@needs_dev
def test_replay_with_the_shipped_rule_is_eval() -> None:
    records, _ = _subset({"ecbplus:1", "ecbplus:9"})
    # The replay studies the one-pass join decision: eval without the consolidation after it.
    shipped = evaluate(records, DedupSettings(story_linkage="off"), "stories")
    replayed = story_rules.replay(records, story_rules.Thresholds())
    assert score([str(s) for s in replayed.labels], _labels(shipped)).ari == 1.0
    assert replayed.ari == pytest.approx(shipped.scores.ari)
    # Every story decision was logged, each candidate with every feature and a gold answer.
    assert replayed.log
    assert all(set(c.f) == set(story_rules.FEATURES) for _, cs in replayed.log for c in cs)


@needs_dev
def test_oracle_only_removes_wrong_joins() -> None:
    records, _ = _subset({"ecbplus:9"})  # two species rules, fused by the shipped rule
    shipped = story_rules.replay(records, story_rules.Thresholds())
    oracle = story_rules.replay(records, story_rules.Oracle(10**6))
    assert oracle.ari > shipped.ari
    gold = score(oracle.gold, oracle.labels)
    assert gold.pair_precision == 1.0


@needs_dev
def test_merges_keep_the_older_id() -> None:
    records, _ = _subset({"ecbplus:1"})
    replayed = story_rules.replay(
        records, story_rules.Thresholds(), story_rules.Merges(size=1, cosine=0.0)
    )
    plain = story_rules.replay(records, story_rules.Thresholds())
    merged = {story for _, story in replayed.labels}
    assert len(merged) < len({story for _, story in plain.labels})
    # Founder rule: a story's id is its oldest member's article id, whatever merged into it.
    for story in merged:
        members = [i + 1 for i, (_, s) in enumerate(replayed.labels) if s == story]
        assert story == min(members)


@needs_dev
def test_cross_validation_scores_only_held_out_topics() -> None:
    records, topics = _subset({"ecbplus:1", "ecbplus:3", "ecbplus:4", "ecbplus:6"})
    grid = [{"story_threshold": 0.25}, {"story_threshold": 0.9}]
    out = story_cv.cross_validate(records, topics, grid, 2)
    assert len(out["held_out"]) == 2
    # Each fold's choice is made on the other fold: the degenerate 0.9 never wins.
    assert out["chosen"] == [{"story_threshold": 0.25}] * 2
    assert -1.0 <= out["pooled"] <= 1.0


def _labels(result: object) -> list[str]:
    placements = result.placements  # type: ignore[attr-defined]
    alias = {old: p.story.cluster_id for p in placements for old in p.merged_stories}
    out = {}
    for p in placements:
        story = p.story.cluster_id
        while story in alias:
            story = alias[story]
        out[p.article_id] = str(story)
    return [out[i + 1] for i in range(len(out))]
