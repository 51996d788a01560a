"""Shared fixtures: a real local HTTP server and real databases (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text

from newsfold.config import Settings, load_settings
from tests.support.server import FeedServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
POSTGRES_URL = os.environ.get(
    "NEWSFOLD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: drives the Compose stack on a local Docker engine (runs last)"
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The stack test runs after everything else, whatever order the rest is in."""
    items.sort(key=lambda item: item.get_closest_marker("docker") is not None)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's settings file or NEWSFOLD_* variables by accident."""
    for key in list(os.environ):
        if key.startswith("NEWSFOLD_") and key != "NEWSFOLD_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def _postgres_schema_url() -> Iterator[str]:
    schema = f"nf_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # never skip: a storage test without PostgreSQL is a failure
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for storage tests: {e}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on both databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsfold.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(database_url: str | None = None, **overrides: Any) -> Settings:
        overrides.setdefault("allow_private_networks", True)
        return load_settings(
            None, database_url=database_url or f"sqlite:///{tmp_path / 'nf.db'}", **overrides
        )

    return make
