"""Story quality per topic of a labelled set (ECB+ dev: 25 topics, two same-kind events each).

A gain on the whole set can be one topic's luck: this prints ARI and pair P/R per topic, so a
change shows where it wins and where it loses.

    .venv/bin/python -m benchmarks.per_topic ../shared/data/dedup-dev.jsonl [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from newsfold.config import DedupSettings
from newsfold.evaluation.datasets import read_dataset
from newsfold.evaluation.scoring import evaluate, score


def per_topic(path: Path) -> dict[str, dict[str, float]]:
    records = read_dataset(path)
    topics = [
        json.loads(line).get("topic") for line in path.read_text().splitlines() if line.strip()
    ]
    result = evaluate(records, DedupSettings(), "stories")
    # Evaluation numbers documents 1..n in file order; ``stories`` is the final partition.
    pred = dict(result.stories)
    rows: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for n, (record, topic) in enumerate(zip(records, topics, strict=True), 1):
        rows[str(topic)].append((record.cluster, pred[n]))
    out = {
        "all": {
            "ari": result.scores.ari,
            "p": result.scores.pair_precision,
            "r": result.scores.pair_recall,
        }
    }
    for topic, pairs in sorted(rows.items(), key=lambda kv: kv[0]):
        s = score([g for g, _ in pairs], [p for _, p in pairs])
        out[topic] = {"ari": s.ari, "p": s.pair_precision, "r": s.pair_recall, "n": len(pairs)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = per_topic(args.dataset)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for topic, s in result.items():
        print(f"{topic:14} ARI {s['ari']:.2f}  P {s['p']:.2f}  R {s['r']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
