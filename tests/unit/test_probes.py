"""Readiness decisions and the listen address, against real databases (one of them unreachable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from newsfold.daemon.probes import parse_listen, readiness
from newsfold.errors import ConfigError
from newsfold.storage import Storage
from tests.e2e.test_daemon import free_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from newsfold.config import Settings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class _Service:
    storage: Storage


@dataclass
class _Probe:
    settings: Settings
    service: _Service
    running: bool
    last_cycle_at: datetime | None


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:9", ("0.0.0.0", 9)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8080", ":8080", "host:", "host:http", "h:99999"])
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(listen)


@pytest.mark.parametrize(
    ("database", "running", "age_s", "ready", "why"),
    [
        ("migrated", True, 1.0, True, None),
        ("migrated", False, 1.0, False, "scheduler"),
        ("migrated", True, None, False, "last_cycle_age_s"),  # no cycle has ended yet
        ("migrated", True, 5 * 12 + 61, False, "last_cycle_age_s"),  # stale: 12 ticks + 60 s
        ("empty", True, 1.0, False, "database"),  # reachable but never migrated
        ("wrong-port", True, 1.0, False, "database"),  # nothing listens there
    ],
)
def test_readiness(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    database: str,
    running: bool,
    age_s: float | None,
    ready: bool,
    why: str | None,
) -> None:
    if database == "wrong-port":
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=3"
    else:
        url = f"sqlite:///{tmp_path / 'h.db'}"
    storage = Storage(url)
    if database == "migrated":
        storage.upgrade()
    settings = make_settings()
    last = None if age_s is None else NOW - timedelta(seconds=age_s)
    try:
        ok, checks = readiness(_Probe(settings, _Service(storage), running, last), now=NOW)
    finally:
        storage.close()
    assert ok is ready
    if why == "database":
        assert str(checks["database"]).startswith("unreachable")
    elif why == "scheduler":
        assert checks["scheduler"] == "stopped"
    elif why is None:
        assert checks == {
            "database": "ok",
            "scheduler": "running",
            "last_cycle_age_s": 1.0,
            "extractor": "ok",
        }
