from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsfold.cli.eval import eval_app
from newsfold.config import DedupSettings
from newsfold.evaluation import evaluate, read_dataset, syndicate, write_dataset
from newsfold.evaluation.datasets import DatasetError, Record
from newsfold.evaluation.scoring import score

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEV = SHARED / "data" / "dedup-dev.jsonl"
needs_dev = pytest.mark.skipif(not DEV.is_file(), reason="shared dev set not present")


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        # Identical partitions, whatever the label names.
        ("aabbc", "xxyyz", {"ari": 1.0, "pair_precision": 1.0, "pair_recall": 1.0}),
        # Everything in one cluster: 2 gold pairs (aa, bb) of 10 predicted pairs.
        (
            "aabbc",
            "zzzzz",
            {"ari": 0.0, "pair_precision": 0.2, "pair_recall": 1.0, "bcubed_recall": 1.0},
        ),
        # All singletons: no predicted pair, so precision 1 by convention, recall 0.
        ("aabb", "wxyz", {"ari": 0.0, "pair_precision": 1.0, "pair_recall": 0.0}),
        # gold {0,1,2},{3,4}; pred {0,1},{2,3,4}: together-pairs 01 and 34 are right,
        # pred pairs 01,23,24,34 (4), gold pairs 01,02,12,34 (4) → P = R = 0.5.
        # B-cubed precision: (1+1+1/3+2/3+2/3)/5 = 11/15; recall by symmetry 11/15.
        # ARI: index 2, expected 4·4/10 = 1.6, max 4 → (2-1.6)/(4-1.6) = 1/6.
        (
            "aaabb",
            "xxyyy",
            {
                "ari": 1 / 6,
                "pair_precision": 0.5,
                "pair_recall": 0.5,
                "pair_f1": 0.5,
                "bcubed_precision": 11 / 15,
                "bcubed_recall": 11 / 15,
            },
        ),
    ],
)
def test_metrics_match_hand_computed_values(
    gold: str, pred: str, expected: dict[str, float]
) -> None:
    scores = score(list(gold), list(pred))
    for name, value in expected.items():
        assert getattr(scores, name) == pytest.approx(value), name


def test_score_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="same items"):
        score(["a"], ["a", "b"])


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", "not a labelled record"), ('{"title": "no id"}', "not a labelled record")],
)
def test_bad_dataset_lines_are_dataset_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_dataset(path)


@needs_dev
def test_syndicate_is_deterministic_and_labelled() -> None:
    records = read_dataset(DEV)[:60]
    first = syndicate(records, copies=3, seed=7)
    assert first == syndicate(records, copies=3, seed=7)
    copies = [r for r in first if "#copy" in r.id]
    assert copies
    for copy in copies:
        original = copy.id.split("#", 1)[0]
        assert copy.cluster == f"copy:{original}"
        assert copy.url is None  # a copy never shares the original's address
    by_cluster: dict[str, int] = {}
    for r in first:
        by_cluster[r.cluster] = by_cluster.get(r.cluster, 0) + 1
    assert all(by_cluster[c.cluster] == 4 for c in copies)


def test_round_trip_through_jsonl(tmp_path: Path) -> None:
    records = [Record(id="1", cluster="c", title="T", text="body")]
    path = tmp_path / "r.jsonl"
    assert write_dataset(path, records) == 1
    assert read_dataset(path) == records


# Floors just under the measured values (see README, "Deduplication quality").
STORY_FLOORS = {"ari": 0.81, "pair_precision": 0.75, "bcubed_precision": 0.83}
COPY_FLOORS = {"ari": 0.98, "pair_precision": 0.99, "pair_recall": 0.97}


@needs_dev
def test_dev_set_story_quality_floor() -> None:
    result = evaluate(read_dataset(DEV), DedupSettings(), "stories")
    for name, floor in STORY_FLOORS.items():
        assert getattr(result.scores, name) >= floor, (name, result.to_json())


@needs_dev
def test_syndicated_copy_quality_floor() -> None:
    records = syndicate(read_dataset(DEV), copies=3, seed=0)
    result = evaluate(records, DedupSettings(), "copies")
    for name, floor in COPY_FLOORS.items():
        assert getattr(result.scores, name) >= floor, (name, result.to_json())


@needs_dev
def test_eval_cli_json_and_syndicate(tmp_path: Path) -> None:
    runner = CliRunner()
    small = tmp_path / "small.jsonl"
    write_dataset(small, read_dataset(DEV)[:40])
    out = runner.invoke(eval_app, [str(small), "--level", "stories", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert set(data) >= {
        "ari",
        "pair_precision",
        "pair_recall",
        "pair_f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "n_docs",
        "n_clusters",
        "docs_per_s",
    }
    assert data["n_docs"] == 40
    synd = tmp_path / "synd.jsonl"
    out = runner.invoke(eval_app, ["syndicate", str(small), str(synd), "--copies", "3"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(eval_app, [str(synd), "--level", "copies"])
    assert out.exit_code == 0, out.output
    assert "pair precision" in out.output


_PARALLEL_REPLAY = """
import json, resource, sys
from pathlib import Path
from newsfold.config import DedupSettings
from newsfold.evaluation import read_dataset
from newsfold.evaluation.scoring import replay, to_docs

docs, _ = to_docs(read_dataset(Path(sys.argv[1]))[:200])
serial = replay(docs, DedupSettings(), workers=0)
before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
parallel = replay(docs, DedupSettings(), workers=1)
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before
print(json.dumps({"same": serial == parallel, "children_cpu": children}))
"""


@needs_dev
def test_sketching_in_worker_processes_places_exactly_as_in_one() -> None:
    # A fresh interpreter: worker processes are forked only from a single-threaded one.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _PARALLEL_REPLAY, str(DEV)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    assert data["same"] is True
    assert data["children_cpu"] > 0  # the workers did sketch


def test_eval_identifies_a_templated_items_language_as_ingest_does() -> None:
    """Ingest identifies an item's language before its feed's template is left out; so
    does eval. A link post whose text is all template is then still read as English."""
    from newsfold.evaluation.scoring import to_docs

    template = "submitted by /u/{} [link] [comments]"
    records = [
        Record(f"r{i}", f"c{i}", f"Researchers detail the {w} exploit chain", template.format(f"u{i}"),
               source="/r/netsec")
        for i, w in enumerate(["first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                               "eighth", "ninth", "tenth"])
    ]  # fmt: skip
    docs, _ = to_docs(records)
    assert all("submitted" not in d.text for d in docs)  # the template is left out...
    assert {d.language for d in docs} == {"en"}  # ...after the language was identified
