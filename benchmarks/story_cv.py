"""Leave-topics-out cross-validation of the story settings.

python -m benchmarks.story_cv DATASET.jsonl [--folds 5] [--grid story_threshold=0.2,0.25,0.3 ...]

The topics (a record's ``topic``; else its cluster label up to the last
"ecb") are dealt into folds in numeric order, topic k to fold k mod folds.
For each fold, every grid point is replayed (``evaluate``, the one-pass
path of ingest) on the other folds' documents only, the best mean ARI there
is kept, and that point is scored on the held-out fold's documents replayed
alone. Nothing about a held-out fold is seen before it is scored. Also
printed: the held-out scores of the default settings (no choice at all) and
the in-sample score of the whole set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from newsfold.config import DedupSettings
from newsfold.evaluation import evaluate
from newsfold.evaluation.datasets import Record, read_dataset
from newsfold.evaluation.scoring import score

DEFAULT_GRID = (
    "story_threshold=0.15,0.2,0.25,0.3,0.35",
    "story_name_threshold=0.2,0.3,0.4",
)


def topics_of(path: Path, records: list[Record]) -> list[str]:
    """Each record's topic, read from the raw lines (the record type has no topic field)."""
    topics = []
    with path.open(encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    for raw, record in zip(lines, records, strict=True):
        topic = raw.get("topic") or re.sub(r"ecb(plus)?$", "", record.cluster)
        topics.append(str(topic))
    return topics


def _key(topic: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", topic)
    return (int(digits[-1]) if digits else 0, topic)


def folds_of(topics: list[str], k: int) -> list[set[str]]:
    ordered = sorted(set(topics), key=_key)
    return [set(ordered[i::k]) for i in range(k)]


def parse_grid(specs: list[str]) -> list[dict[str, float]]:
    axes = []
    for spec in specs:
        name, _, values = spec.partition("=")
        axes.append([(name, float(v)) for v in values.split(",")])
    return [dict(point) for point in itertools.product(*axes)]


def ari(records: list[Record], settings: DedupSettings) -> float:
    return evaluate(records, settings, "stories").scores.ari


def labels(records: list[Record], settings: DedupSettings) -> list[int]:
    """Each record's story, merged ids resolved to their survivor (as ``evaluate`` scores)."""
    placements = evaluate(records, settings, "stories").placements
    alias = {old: p.story.cluster_id for p in placements for old in p.merged_stories}
    by_article: dict[int, int] = {}
    for p in placements:
        story = p.story.cluster_id
        while story in alias:
            story = alias[story]
        by_article[p.article_id] = story
    return [by_article[i + 1] for i in range(len(records))]


def cross_validate(
    records: list[Record], topics: list[str], grid: list[dict[str, float]], k: int
) -> dict[str, Any]:
    base = DedupSettings()
    chosen, held, default_held = [], [], []
    gold: list[str] = []
    pooled: list[tuple[int, int]] = []
    for n, fold in enumerate(folds_of(topics, k)):
        train = [r for r, t in zip(records, topics, strict=True) if t not in fold]
        test = [r for r, t in zip(records, topics, strict=True) if t in fold]
        scored = [(ari(train, base.model_copy(update=p)), i) for i, p in enumerate(grid)]
        best = grid[max(scored, key=lambda s: (s[0], -s[1]))[1]]
        chosen.append(best)
        predicted = labels(test, base.model_copy(update=best))
        held.append(score([r.cluster for r in test], predicted).ari)
        gold.extend(r.cluster for r in test)
        pooled.extend((n, story) for story in predicted)
        default_held.append(ari(test, base))
    return {
        "held_out": held,
        "mean": statistics.fmean(held),
        "sd": statistics.stdev(held),
        # Every document scored once, by the fold that held it out: one ARI
        # over the whole set, comparable with the in-sample figure (an ARI of
        # a fifth of the topics is lower for the same clustering quality).
        "pooled": score(gold, pooled).ari,
        "chosen": chosen,
        "default_held_out": default_held,
        "default_mean": statistics.fmean(default_held),
        "default_sd": statistics.stdev(default_held),
        "in_sample_default": ari(records, base),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.story_cv", description=__doc__)
    p.add_argument("dataset", type=Path)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--grid", nargs="*", default=list(DEFAULT_GRID), help="name=v1,v2,...")
    args = p.parse_args(argv)
    records = read_dataset(args.dataset)
    topics = topics_of(args.dataset, records)
    out = cross_validate(records, topics, parse_grid(args.grid), args.folds)
    print(json.dumps(out, indent=1))
    print(
        f"leave-topics-out ARI {out['mean']:.3f} ± {out['sd']:.3f} per fold, "
        f"{out['pooled']:.3f} pooled (grid chosen per fold); "
        f"defaults {out['default_mean']:.3f} ± {out['default_sd']:.3f}; "
        f"in-sample {out['in_sample_default']:.3f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
