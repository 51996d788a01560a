"""The benchmark suite runs end to end on a tiny corpus and writes valid JSON (not timed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from benchmarks import corpus, report
from benchmarks.__main__ import SECTIONS, main
from benchmarks.lsh import synthetic_docs

from newsfold.config import DedupSettings
from newsfold.parse import parse_feed

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(("feeds", "items", "dup_share"), [(2, 3, 0.0), (3, 4, 0.5)])
def test_corpus_is_seeded_and_parses(feeds: int, items: int, dup_share: float) -> None:
    a = corpus.generate(feeds, items, dup_share=dup_share)
    b = corpus.generate(feeds, items, dup_share=dup_share, now=a.items[0].published)
    assert [i.body for i in a.items] == [i.body for i in b.items]
    assert len(a.items) == feeds * items
    assert all(400 <= len(i.body.split()) <= 900 for i in a.items if i.original is None)
    for path, doc in corpus.documents(a).items():
        parsed = parse_feed(doc, url=f"http://127.0.0.1{path}")
        assert len(parsed.entries) == items
    if dup_share == 0:
        assert not any(i.original for i in a.items)


def test_synthetic_docs_decode() -> None:
    docs = synthetic_docs(50, DedupSettings())
    assert len({d.article_id for d in docs}) == 50
    assert docs == sorted(docs, key=lambda d: d.published)


def test_quick_run_writes_valid_json(tmp_path: Path, postgres_url: str) -> None:
    # ``postgres_url`` is a fresh schema; the suite makes its own schemas in the same database.
    base = postgres_url.split("?", 1)[0]
    out = tmp_path / "results.json"
    code = main(
        [
            "--quick",
            "--feeds",
            "2",
            "--items",
            "4",
            "--lsh-sizes",
            "300",
            "--daemon-feeds",
            "40",
            "--daemon-cycles",
            "3",
            "--out",
            str(out),
            "--postgres",
            base,
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert set(SECTIONS) - {"rebuild"} <= set(data)
    assert data["e2e"]["sqlite"]["items"] == 8
    assert data["e2e"]["postgresql"]["items"] == 8
    assert data["e2e"]["naive_sqlite"]["items"] == 8
    assert data["signatures"]["identical_to_datasketch"] is True
    assert data["lsh"]["300"]["docs"] == 300
    assert data["daemon"]["feeds"] == 40
    assert {t["target"] for t in data["targets"]} == {t[0] for t in report.TARGETS}
    assert "e2e sqlite items/s" in report.table(data)


@pytest.mark.parametrize("only", ["signatures", "daemon"])
def test_only_runs_the_named_section(tmp_path: Path, only: str) -> None:
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "--quick",
                "--only",
                only,
                "--daemon-feeds",
                "20",
                "--daemon-cycles",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert only in data
    assert not set(SECTIONS) - {only} & set(data)


def test_unknown_section_is_an_error() -> None:
    with pytest.raises(SystemExit):
        main(["--only", "nope"])


def test_retention_benchmark_prunes_a_tiny_month(tmp_path: Path) -> None:
    from benchmarks import retention

    kw = {"days": 4, "feeds": 2, "per_day": 4, "polls_per_day": 2}
    kept = retention.simulate(f"sqlite:///{tmp_path / 'r.db'}", retention_days=1.0, **kw)
    every = retention.simulate(f"sqlite:///{tmp_path / 'b.db'}", retention_days=None, **kw)
    assert sum(d["pruned"] for d in kept["days"]) > 0
    assert kept["articles_end"] < every["articles_end"]
    assert all(d["pruned"] == 0 for d in every["days"])
