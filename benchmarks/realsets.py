"""Real-news story dev sets, labelled by hand: ``eval`` records, served feeds and scores.

The labels live in ``tests/data/real/`` (ids and event labels only); the texts stay in
the shared data beside the repository. Two sets:

* ``de-outlets``: Golem.de and heise online, 25-28 Oct 2018 (miniflux's parser test
  feeds), parsed and normalised by newsfold itself, so each record's text is what ingest
  compares. heise's RSS 0.9 items carry no date: the labels give an estimate.
* ``security-days``: three days (24-26 Nov 2025) of the security-news month, one record
  per item.

    python -m benchmarks.realsets write OUT_DIR     # JSONL for eval + per-outlet feeds
    python -m benchmarks.realsets score [--work DIR] [--skip-fetch]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, select
from tests.support.feeds import rss

from benchmarks.server import serve
from newsfold.config import NormaliseSettings
from newsfold.evaluation import write_dataset
from newsfold.evaluation.datasets import DatasetError, Record
from newsfold.evaluation.scoring import score
from newsfold.normalise import normalise_entry
from newsfold.parse import parse_feed
from newsfold.storage.tables import ArticleRow, ClusterRow, MembershipRow
from newsfold.types import DateSource, FeedSource

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "real"
# The shared data sits beside the main checkout; a worktree elsewhere names it.
SHARED = Path(os.environ.get("REALSETS_SHARED_DIR") or REPO.parent / "shared")
MINIFLUX = SHARED / "data" / "feeds" / "miniflux"
SECURITY_MONTH = SHARED / "data" / "real-news" / "security-2025-11.jsonl"
DE_LABELS = LABELS / "de-outlets.labels.tsv"
SECURITY_LABELS = LABELS / "security-days.labels.tsv"
# After the newest German item: no item date is in this fetch's future.
DE_FETCHED_AT = datetime(2018, 10, 29, tzinfo=UTC)


def read_labels(path: Path) -> list[dict[str, str]]:
    """Rows of a labels TSV (header line first)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ------------------------------------------------------------------ German outlets


def de_records(labels: Path = DE_LABELS, feeds_dir: Path = MINIFLUX) -> list[Record]:
    """Every item of the labelled German feeds, as newsfold parses and normalises it.

    The id is the entry's key (``guid:…`` or ``url:…``), the text what ingest compares.
    Raises ``DatasetError`` when an item is unlabelled or a label names no item.
    """
    rows = {(r["feed"], r["entry_key"]): r for r in read_labels(labels)}
    out = []
    for feed in sorted({feed for feed, _ in rows}):
        path = feeds_dir / feed
        parsed = parse_feed(path.read_bytes(), url=path.as_uri())
        source = FeedSource(id=0, url=path.as_uri())
        for entry in parsed.entries:
            article = normalise_entry(
                entry, source, fetched_at=DE_FETCHED_AT, settings=NormaliseSettings()
            )
            row = rows.pop((feed, article.entry_key), None)
            if row is None:
                raise DatasetError(f"{feed}: {article.entry_key} has no label")
            if article.date_source is DateSource.FEED:
                published = article.published
            elif row["est_published"]:
                published = _utc(row["est_published"])
            else:
                raise DatasetError(f"{feed}: {article.entry_key} has no date and no estimate")
            out.append(
                Record(
                    id=article.entry_key,
                    cluster=row["label"],
                    title=article.title,
                    text=article.comparison_text,
                    published=published,
                    source=parsed.title or feed,
                    url=article.url,
                )
            )
    if rows:
        raise DatasetError(f"{labels}: {len(rows)} labels name no item, e.g. {next(iter(rows))}")
    return sorted(out, key=_when)


def _when(r: Record) -> datetime:
    return r.published or DE_FETCHED_AT


# ------------------------------------------------------------------ security days


def security_records(labels: Path = SECURITY_LABELS, month: Path = SECURITY_MONTH) -> list[Record]:
    """The labelled days of the security month (every item of them, with its label)."""
    wanted = {r["id"]: r["label"] for r in read_labels(labels)}
    out = []
    for line in month.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        label = wanted.pop(str(raw["id"]), None)
        if label is None:
            continue
        out.append(
            Record(
                id=str(raw["id"]),
                cluster=label,
                title=str(raw.get("title") or ""),
                text=str(raw.get("text") or ""),
                published=_utc(str(raw["published"])),
                source=str(raw["source"]),
                url=raw.get("url"),
            )
        )
    if wanted:
        raise DatasetError(f"{labels}: {len(wanted)} ids not in {month}, e.g. {next(iter(wanted))}")
    return sorted(out, key=_when)


# ------------------------------------------------------------------ feeds


def entry_key(record: Record, *, guid: str | None) -> str:
    """What newsfold keys the served item by: its GUID, else its link."""
    return f"guid:{guid}" if guid else str(record.id)


def _slug(source: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[:60] or "feed"


def _html(text: str) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in text.split("\n") if p.strip())


def feed_documents(
    records: Sequence[Record], guid_of: Callable[[Record], str | None]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """One RSS feed per source (file name → document) and gold (entry key → event)."""
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_source[r.source or "unknown"].append(r)
    docs, gold, names = {}, {}, set()
    for source, members in sorted(by_source.items()):
        name = _slug(source)
        while name in names:
            name += "-x"
        names.add(name)
        items = []
        for r in sorted(members, key=_when, reverse=True):
            guid = guid_of(r)
            gold[entry_key(r, guid=guid)] = r.cluster
            items.append(
                {
                    "title": r.title,
                    "link": r.url or f"https://{name}.example/{escape(r.id)}",
                    "guid": guid or "",
                    "date": _when(r).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                    "html": _html(r.text),
                }
            )
        docs[f"{name}.xml"] = rss(source, f"https://{name}.example/", items)
    return docs, gold


def _de_guid(r: Record) -> str | None:
    return r.id.removeprefix("guid:") if r.id.startswith("guid:") else None


def _security_guid(r: Record) -> str | None:
    return r.id


SETS: dict[str, tuple[Callable[[], list[Record]], Callable[[Record], str | None]]] = {
    "de-outlets": (de_records, _de_guid),
    "security-days": (security_records, _security_guid),
}


def write(out: Path, sets: Sequence[str] = tuple(SETS)) -> dict[str, int]:
    """``OUT/<set>.jsonl`` for ``newsfold eval``, ``OUT/<set>/*.xml`` + ``gold.json``."""
    counts = {}
    for name in sets:
        build, guid_of = SETS[name]
        records = build()
        counts[name] = write_dataset(_mkdir(out) / f"{name}.jsonl", records)
        docs, gold = feed_documents(records, guid_of)
        folder = _mkdir(out / name)
        for file, body in docs.items():
            (folder / file).write_bytes(body)
        (folder / "gold.json").write_text(json.dumps(gold, indent=1, sort_keys=True) + "\n")
    return counts


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------ scoring


def _newsfold(*args: str, config: Path | None = None) -> str:
    cmd = [sys.executable, "-m", "newsfold", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def _config(work: Path, name: str) -> Path:
    """Library defaults, a scratch SQLite database, and what one loopback host needs."""
    db = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    config = work / f"{name}.toml"
    config.write_text(
        f'database_url = "sqlite:///{db}"\nallow_private_networks = true\n'
        'log_level = "WARNING"\n[fetch]\nmin_host_delay_s = 0.0\nper_host = 16\n'
    )
    return config


def eval_scores(dataset: Path, work: Path) -> dict[str, Any]:
    """``newsfold eval DATASET --level stories --json``."""
    config = _config(work, dataset.stem)
    result: dict[str, Any] = json.loads(
        _newsfold("eval", str(dataset), "--level", "stories", "--json", config=config)
    )
    return result


def fetch_scores(folder: Path, work: Path) -> dict[str, Any]:
    """Serve ``folder``'s feeds on 127.0.0.1, subscribe to each, ``newsfold fetch`` once,
    and score the stored stories against ``gold.json``."""
    gold: dict[str, str] = json.loads((folder / "gold.json").read_text())
    docs = {f"/{p.name}": p.read_bytes() for p in sorted(folder.glob("*.xml"))}
    config = _config(work, folder.name)
    started = time.perf_counter()
    with serve(docs) as base:
        for path in docs:
            _newsfold("feeds", "add", f"{base}{path}", "--no-check", config=config)
        summary = json.loads(_newsfold("fetch", "--json", config=config))
    seconds = time.perf_counter() - started
    stored = stored_stories(f"sqlite:///{work / folder.name}.db")
    keys = sorted(gold)
    missing = [k for k in keys if k not in stored]
    if missing:
        raise SystemExit(f"{folder.name}: {len(missing)} items not stored, e.g. {missing[0]}")
    s = score([gold[k] for k in keys], [stored[k] for k in keys])
    return {
        "ari": s.ari,
        "pair_precision": s.pair_precision,
        "pair_recall": s.pair_recall,
        "pair_f1": s.pair_f1,
        "n_docs": s.n_docs,
        "n_clusters": s.n_clusters,
        "n_gold_clusters": s.n_gold_clusters,
        "feeds": len(docs),
        "seconds": round(seconds, 1),
        "fetch_errors": _errors(summary),
    }


def _errors(summary: Any) -> Any:
    return summary.get("errors") if isinstance(summary, dict) else None


def stored_stories(database_url: str) -> dict[str, int]:
    """Entry key → story id (merged stories resolved) of every stored article."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            merged = dict(
                conn.execute(
                    select(ClusterRow.id, ClusterRow.merged_into).where(
                        ClusterRow.level == "stories", ClusterRow.merged_into.is_not(None)
                    )
                ).all()
            )
            rows = conn.execute(
                select(ArticleRow.entry_key, MembershipRow.cluster_id).join(
                    MembershipRow,
                    (MembershipRow.article_id == ArticleRow.id)
                    & (MembershipRow.level == "stories"),
                )
            ).all()
    finally:
        engine.dispose()
    out = {}
    for key, story in rows:
        cid = story
        while cid in merged:
            cid = merged[cid]
        out[str(key)] = int(cid)
    return out


def score_all(
    work: Path, sets: Sequence[str] = tuple(SETS), *, fetch: bool = True
) -> dict[str, dict[str, Any]]:
    write(work, sets)
    results: dict[str, dict[str, Any]] = {}
    for name in sets:
        results[f"{name} eval"] = eval_scores(work / f"{name}.jsonl", work)
        if fetch:
            results[f"{name} fetch"] = fetch_scores(work / name, work)
    return results


def _print(results: dict[str, dict[str, Any]]) -> None:
    head = ("docs", "stories", "gold", "ARI", "pair P", "pair R")
    print(f"{'set / path':<24}" + "".join(f"{h:>9}" for h in head))
    for name, r in results.items():
        print(
            f"{name:<24}{r['n_docs']:>9}{r['n_clusters']:>9}{r['n_gold_clusters']:>9}"
            f"{r['ari']:>9.3f}{r['pair_precision']:>9.3f}{r['pair_recall']:>9.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.realsets", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write eval JSONL, per-outlet feeds and gold.json")
    w.add_argument("out", type=Path)
    s = sub.add_parser("score", help="newsfold eval (stories) and fetch, scored against gold")
    s.add_argument("--work", type=Path, help="keep the written sets and databases here")
    s.add_argument("--skip-fetch", action="store_true", help="only newsfold eval")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--set", action="append", choices=list(SETS), help="only this set (repeatable)")
    args = p.parse_args(argv)
    try:
        if args.command == "write":
            for name, n in write(args.out).items():
                print(f"{name}: {n} records")
            return 0
        with tempfile.TemporaryDirectory(prefix="realsets-") as tmp:
            work = args.work or Path(tmp)
            results = score_all(_mkdir(work), args.set or tuple(SETS), fetch=not args.skip_fetch)
    except (DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
