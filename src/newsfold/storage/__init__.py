"""Storage: the only package that speaks SQL. SQLite (embedded default) or PostgreSQL.

``Storage`` owns the engine, migrations, and the transaction discipline:

* one transaction per batch (``Storage.batch``: a poll's feeds), so a crash leaves either
  the whole batch or none of it — re-polling is idempotent;
* cluster assignment is serialised across workers: on PostgreSQL by a
  transaction-scoped advisory lock, on SQLite by ``BEGIN IMMEDIATE`` (SQLite has
  one writer anyway). Inside that lock a worker first catches up with articles
  other workers wrote, then places its own — so two daemons build the same
  clusters one would.

ORM rows never leave this package; callers get the records in ``records.py``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from newsfold.config import redact_url, sqlite_path
from newsfold.errors import StorageError
from newsfold.storage.alerts import AlertsMixin
from newsfold.storage.counts import CountsMixin
from newsfold.storage.feeds import FeedsMixin
from newsfold.storage.ingest import Batch
from newsfold.storage.published import PublishedMixin
from newsfold.storage.queries import QueriesMixin
from newsfold.storage.retention import RetentionMixin
from newsfold.storage.search import SearchMixin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Engine

__all__ = ["Batch", "Storage", "StorageError", "check_sqlite_location"]

MIGRATIONS = Path(__file__).with_name("migrations")
# Advisory locks (two-key form): an arbitrary class number for newsfold's locks, and the
# schema's name hashed, so that separate newsfold schemas in one database never contend.
CLUSTER_LOCK_KEY = 0x6E66_0001
MIGRATION_LOCK_KEY = 0x6E66_0002
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))")


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN through unchanged by pysqlite, so we can choose
        # BEGIN IMMEDIATE for writers (no lock-upgrade deadlocks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("newsfold_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Storage(
    FeedsMixin,
    QueriesMixin,
    CountsMixin,
    PublishedMixin,
    RetentionMixin,
    SearchMixin,
    AlertsMixin,
):
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite"):
                self._ensure_sqlite_dir(url)
                engine = create_engine(url, connect_args={"timeout": 30})
                _sqlite_setup(engine)
            else:
                engine = create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=5,
                    max_overflow=5,
                    # A database host that drops packets must not hang /readyz or a poll.
                    connect_args={"connect_timeout": 5},
                )
        except (SQLAlchemyError, ValueError, ImportError) as e:
            raise StorageError(f"cannot use database URL {_redact(url)}: {e}") from e
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @staticmethod
    def _ensure_sqlite_dir(url: str) -> None:
        check_sqlite_location(url)

    # --- lifecycle -------------------------------------------------------------

    def upgrade(self, on_step: Callable[[str], None] | None = None) -> str:
        """Create or upgrade the schema with Alembic; returns the head revision.

        ``on_step`` is told what the upgrade is doing or waiting on, and each revision
        applied (``db upgrade`` shows it: a big database takes a while).
        """
        from alembic import command
        from alembic.config import Config

        step = on_step or (lambda _what: None)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["on_version_apply"] = lambda **kw: step(
            f"applied {kw['step'].up_revision_id}"
        )
        try:
            connection = self.engine.connect()
        except (SQLAlchemyError, OSError) as e:
            # The database did not answer: no migration was tried, so none "failed".
            raise StorageError(
                f"cannot connect to the database: {_unreachable(e)} ({_redact(self.url)})"
            ) from e
        try:
            with connection as conn, conn.begin():
                if self.dialect == "postgresql":
                    # Several workers starting at once must not migrate concurrently.
                    step("waiting for the migration lock")
                    conn.execute(_LOCK_SQL, {"k": MIGRATION_LOCK_KEY})
                step("checking the schema revision")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(
                f"database {_redact(self.url)}: migration failed: {_short(e)}"
            ) from e
        return str(rev)

    def check(self) -> None:
        """Raise ``StorageError`` unless the database answers and has our schema."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                if not inspect(conn).has_table("articles"):
                    raise StorageError("database has no newsfold schema: run `newsfold db upgrade`")
        except SQLAlchemyError as e:
            raise StorageError(f"database {_redact(self.url)} unreachable: {_short(e)}") from e

    def close(self) -> None:
        self.engine.dispose()

    # --- sessions ----------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success; errors become StorageError."""
        opts = {"newsfold_write": True} if write else {}
        session = self._sessions()
        try:
            if opts:
                session.connection(execution_options=opts)
            yield session
            session.commit()
        except SQLAlchemyError as e:
            session.rollback()
            raise StorageError(f"database error: {_short(e)}") from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def batch(self, *, placing: bool = True) -> Iterator[Batch]:
        """A poll's writes in one transaction; ``placing`` also takes the
        cluster-assignment lock (a poll that only records an error needs none)."""
        with self.session(write=True) as session:
            if placing and self.dialect == "postgresql":
                session.execute(_LOCK_SQL, {"k": CLUSTER_LOCK_KEY})
            yield Batch(session)


def check_sqlite_location(url: str) -> None:
    """Raise ``StorageError`` unless a SQLite URL's file exists or can be created.

    The file may be created, never its directory: a missing directory is far more
    often a typo or an unmounted volume than a wish, and a database made there would
    silently hold nothing of what the user expects.
    """
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise StorageError(f"cannot create the SQLite database {path}: directory {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create the SQLite database {path}: permission denied")


def _unreachable(e: BaseException) -> str:
    """Why a connection failed, without the driver's "connection failed:" preamble."""
    return _short(e).removeprefix("connection failed: ")


def _short(e: BaseException) -> str:
    if isinstance(e, DBAPIError) and e.orig is not None:
        return str(e.orig).strip().splitlines()[0]
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _redact(url: str) -> str:
    """Hide a password in a database URL before it reaches a log or an error."""
    return redact_url(url)
