"""``python -m benchmarks``: run the suite, print a table, write JSON.

python -m benchmarks [--quick] [--feeds N] [--items M] [--dup-share F]
                     [--out FILE.json] [--only e2e,stages,signatures,lsh,rebuild,daemon]
                     [--postgres URL] [--lsh-sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import corpus as corpus_mod
from benchmarks import report
from benchmarks._common import DEFAULT_POSTGRES, postgres_available, postgres_schema, sqlite_url
from benchmarks.server import serve

SECTIONS = ("e2e", "stages", "signatures", "lsh", "rebuild", "daemon")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    p.add_argument("--feeds", type=int, help="feeds in the corpus (default 20; quick 4)")
    p.add_argument("--items", type=int, help="items per feed (default 50; quick 10)")
    p.add_argument(
        "--dup-share",
        type=float,
        default=0.3,
        help="share of items that rewrite another feed's item (default 0.3)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument(
        "--postgres",
        default=os.environ.get("NEWSFOLD_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL database for e2e (a scratch schema is made); 'none' skips",
    )
    p.add_argument(
        "--lsh-sizes",
        help="indexed documents for the LSH benchmark (default 100000,1000000; quick 2000,10000)",
    )
    p.add_argument("--daemon-feeds", type=int, help="feeds scheduled (default 10000; quick 300)")
    p.add_argument("--daemon-cycles", type=int, help="simulated cycles (default 90; quick 10)")
    args = p.parse_args(argv)
    q = args.quick
    args.feeds = args.feeds or (4 if q else 20)
    args.items = args.items or (10 if q else 50)
    sizes = args.lsh_sizes or ("2000,10000" if q else "100000,1000000")
    args.lsh_sizes = [int(s) for s in sizes.split(",") if s]
    args.daemon_feeds = args.daemon_feeds or (300 if q else 10_000)
    args.daemon_cycles = args.daemon_cycles or (10 if q else 90)
    args.only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = args.only - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "corpus": {"feeds": args.feeds, "items_per_feed": args.items, "dup_share": args.dup_share},
    }
    t_all = time.perf_counter()
    corpus = corpus_mod.generate(args.feeds, args.items, dup_share=args.dup_share)
    results["corpus"]["items"] = len(corpus.items)
    results["corpus"]["mean_words"] = corpus.words / max(len(corpus.items), 1)
    with tempfile.TemporaryDirectory(prefix="nfbench-") as tmp:
        work = Path(tmp)
        if args.only & {"e2e", "stages"}:
            with serve(corpus_mod.documents(corpus)) as base:
                if "e2e" in args.only:
                    results["e2e"] = _e2e(corpus, base, work, args.postgres)
                if "stages" in args.only:
                    from benchmarks import stages

                    results["stages"] = stages.run(corpus, base, sqlite_url(work, "stages"))
        if "signatures" in args.only:
            from benchmarks import signatures

            results["signatures"] = signatures.run(corpus)
        # Before the LSH section, whose gigabytes the allocator keeps resident.
        if "daemon" in args.only:
            from benchmarks import daemon

            results["daemon"] = daemon.run(
                sqlite_url(work, "daemon"), feeds=args.daemon_feeds, cycles=args.daemon_cycles
            )
        if args.only & {"lsh", "rebuild"}:
            from benchmarks import lsh

            results["lsh"] = {
                str(n): lsh.run(n, queries=200 if args.quick else 2000) for n in args.lsh_sizes
            }
    results["seconds"] = time.perf_counter() - t_all
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["targets"] = report.targets(results)
    return results


def _e2e(corpus: corpus_mod.Corpus, base: str, work: Path, postgres: str) -> dict[str, Any]:
    from benchmarks import e2e

    e2e.warm_up()
    out: dict[str, Any] = {
        "sqlite": e2e.run_newsfold(corpus, base, sqlite_url(work, "e2e")),
        "naive_sqlite": e2e.run_naive(corpus, base, sqlite_url(work, "naive")),
    }
    why = "skipped (--postgres none)" if postgres == "none" else postgres_available(postgres)
    if why is None:
        with postgres_schema(postgres) as url:
            out["postgresql"] = e2e.run_newsfold(corpus, base, url)
        with postgres_schema(postgres) as url:
            out["naive_postgresql"] = e2e.run_naive(corpus, base, url)
    else:
        out["postgresql_skipped"] = why
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(report.table(results))
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
