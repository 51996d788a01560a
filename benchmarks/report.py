"""The printed table and the target verdicts, both computed from the results JSON."""

from __future__ import annotations

from typing import Any

# Performance targets: (label, value path, comparison, threshold).
TARGETS: tuple[tuple[str, tuple[str, ...], str, float], ...] = (
    ("e2e SQLite items/s", ("e2e", "sqlite", "items_per_s"), ">=", 1500.0),
    ("e2e PostgreSQL items/s", ("e2e", "postgresql", "items_per_s"), ">=", 1000.0),
    ("e2e vs naive (SQLite)", ("e2e", "ratio_sqlite"), ">=", 2.5),
    ("e2e vs naive (PostgreSQL)", ("e2e", "ratio_postgresql"), ">=", 2.5),
    ("signatures vs datasketch (wall)", ("signatures", "ratio_signature"), ">=", 10.0),
    ("signatures vs datasketch (CPU)", ("signatures", "ratio_signature_cpu"), ">=", 10.0),
    ("LSH query p99 ms @1M (wall)", ("lsh", "1000000", "lsh_query_p99_ms"), "<", 1.0),
    ("LSH query p99 ms @1M (CPU)", ("lsh", "1000000", "lsh_query_cpu_p99_ms"), "<", 1.0),
    ("RAM bytes/doc @1M", ("lsh", "1000000", "rss_bytes_per_doc"), "<=", 1024.0),
    ("rebuild docs/s", ("lsh", "largest", "rebuild_docs_per_s"), ">=", 100_000.0),
)


def _get(results: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = results
    for step in path:
        key = max(node, key=int) if step == "largest" and isinstance(node, dict) and node else step
        if key.startswith("ratio_") and isinstance(node, dict) and "signatures" not in path:
            db = key.removeprefix("ratio_")
            if db in node and f"naive_{db}" in node:
                return float(node[db]["items_per_s"] / node[f"naive_{db}"]["items_per_s"])
            return None
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for label, path, op, threshold in TARGETS:
        value = _get(results, path)
        met = (
            None
            if value is None
            else (
                value >= threshold
                if op == ">="
                else value < threshold
                if op == "<"
                else value <= threshold
            )
        )
        out.append({"target": label, "value": value, "op": op, "threshold": threshold, "met": met})
    return out


def _f(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3f}"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    c = results.get("corpus", {})
    rows.append(
        (
            "corpus",
            f"{c.get('feeds')} feeds × {c.get('items_per_feed')} items, "
            f"{c.get('mean_words', 0):.0f} words/item, dup share {c.get('dup_share')}",
        )
    )
    e2e = results.get("e2e", {})
    for key in ("sqlite", "naive_sqlite", "postgresql", "naive_postgresql"):
        if key in e2e:
            r = e2e[key]
            extra = ""
            if "near_duplicates" in r:
                extra = (
                    f"; near {r['near_duplicates']} + exact {r['exact_duplicates']}"
                    f" of {r['expected_rewrites']} rewrites"
                )
            rows.append(
                (
                    f"e2e {key} items/s",
                    f"{_f(r['items_per_s'])} ({r['items']} items in {r['seconds']:.2f}s; "
                    f"{_f(r.get('items_per_cpu_s', 0.0))} per CPU-s{extra})",
                )
            )
    for db in ("sqlite", "postgresql"):
        if db in e2e and f"naive_{db}" in e2e:
            ratio = e2e[db]["items_per_s"] / e2e[f"naive_{db}"]["items_per_s"]
            cpu = e2e[db].get("items_per_cpu_s", 0.0) / max(
                e2e[f"naive_{db}"].get("items_per_cpu_s", 0.0), 1e-9
            )
            rows.append((f"e2e {db} vs naive", f"{ratio:.2f}× wall, {cpu:.2f}× CPU"))
        if db in e2e:
            r = e2e[db]
            rows.append(
                (
                    f"start-up rebuild_index ({db})",
                    f"{r['startup_rebuild_s'] * 1000:.0f} ms for {r['startup_rebuild_docs']} docs",
                )
            )
    if "postgresql_skipped" in e2e:
        rows.append(("e2e postgresql", f"skipped: {e2e['postgresql_skipped']}"))
    st = results.get("stages")
    if st:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in st["ms_per_item"].items())
        rows.append(("stage ms/item", f"{parts} (sum {st['total_ms_per_item']:.2f})"))
    sg = results.get("signatures")
    if sg:
        rows.append(
            (
                "signatures docs/s",
                f"newsfold {_f(sg['signature_docs_per_s'])}, with story "
                f"sketch {_f(sg['sketch_docs_per_s'])}; datasketch default "
                f"{_f(sg['datasketch_default_docs_per_s'])}, bulk "
                f"{_f(sg['datasketch_bulk_docs_per_s'])}",
            )
        )
        rows.append(
            (
                "signatures vs datasketch",
                f"{sg['ratio_signature']:.1f}× wall, "
                f"{sg.get('ratio_signature_cpu', 0.0):.1f}× CPU (with story "
                f"sketch {sg['ratio_sketch']:.1f}×); identical: "
                f"{sg['identical_to_datasketch']}",
            )
        )
    for n, r in sorted(results.get("lsh", {}).items(), key=lambda kv: int(kv[0])):
        rows.append(
            (
                f"LSH @{int(n):,} query p50/p99 ms",
                f"{r['lsh_query_p50_ms']:.3f} / {r['lsh_query_p99_ms']:.3f} wall, "
                f"{r['lsh_query_cpu_p50_ms']:.3f} / {r['lsh_query_cpu_p99_ms']:.3f} CPU; place() "
                f"{r['place_p50_ms']:.3f} / {r['place_p99_ms']:.3f} wall, "
                f"{r['place_cpu_p50_ms']:.3f} / {r['place_cpu_p99_ms']:.3f} CPU",
            )
        )
        rows.append(
            (
                f"RAM/doc @{int(n):,}",
                f"{_f(r['rss_bytes_per_doc'])} B RSS "
                f"(copy index {_f(r['copy_index_bytes_per_doc'])} B)",
            )
        )
        rows.append(
            (
                f"rebuild @{int(n):,}",
                f"{_f(r['rebuild_docs_per_s'])} docs/s ({r['rebuild_s']:.1f}s)",
            )
        )
        ds = r.get("datasketch")
        if ds:
            rows.append(
                (
                    f"datasketch MinHashLSH @{int(n):,}",
                    f"query p50/p99 {ds['query_p50_ms']:.3f} / {ds['query_p99_ms']:.3f} ms "
                    f"(CPU p99 {ds['query_cpu_p99_ms']:.3f}),"
                    f" {_f(ds['rss_bytes_per_doc'])} B/doc, insert "
                    f"{_f(ds['insert_docs_per_s'])} docs/s",
                )
            )
    d = results.get("daemon")
    if d:
        rows.append(
            (
                "daemon",
                f"{d['feeds']:,} feeds, {d['cycles']} cycles "
                f"({d['simulated_hours']:.1f} h simulated), {d['polls']:,} polls, "
                f"{d['ms_per_cycle']:.0f} ms/cycle",
            )
        )
        rows.append(
            (
                "daemon RSS",
                f"{d['rss_start_mb']:.1f} → {d['rss_end_mb']:.1f} MB, slope "
                f"{d['rss_slope_kb_per_100_cycles']:.1f} KB/100 cycles",
            )
        )
    for t in results.get("targets", []):
        if t["value"] is None:
            continue
        verdict = "MET" if t["met"] else "MISSED"
        rows.append(
            (
                f"target: {t['target']}",
                f"{verdict} ({_f(t['value'])} {t['op']} {_f(t['threshold'])})",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
