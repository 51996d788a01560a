"""Helpers shared by the benchmarks: settings, scratch databases, clocks, memory."""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text

from newsfold.config import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def bench_settings(database_url: str) -> Settings:
    """Library defaults, except what a single loopback host needs (no politeness delay)."""
    settings = load_settings(
        None, read_file=False, database_url=database_url, allow_private_networks=True
    )
    fetch = settings.fetch.model_copy(update={"min_host_delay_s": 0.0, "per_host": 16})
    return settings.model_copy(update={"fetch": fetch})


def sqlite_url(workdir: Path, name: str) -> str:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in ``base_url``'s database, dropped afterwards."""
    schema = f"nfbench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_available(base_url: str) -> str | None:
    """``None`` when the server answers, else why not."""
    try:
        engine = create_engine(base_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def rss_bytes() -> int:
    """Resident set size now (from /proc: no extra dependency)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def slope(ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against their index."""
    if len(ys) < 2:
        return 0.0
    return statistics.linear_regression(range(len(ys)), ys).slope
