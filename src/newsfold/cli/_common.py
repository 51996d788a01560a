"""Shared pieces of the CLI: options, settings/service loading, output helpers."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from newsfold.cli._tables import Col, Grid

if TYPE_CHECKING:
    from newsfold.config import Settings
    from newsfold.pipeline.service import Service
    from newsfold.storage import Storage

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: $NEWSFOLD_CONFIG, else ./config/newsfold.toml.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

console = Console()
err_console = Console(stderr=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '7d', '1w' → seconds."""
    m = _DURATION.match(text)
    if not m:
        raise typer.BadParameter(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def since_to_datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except typer.BadParameter:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise typer.BadParameter(f"--since takes a duration (24h) or an ISO date: {text!r}") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def settings_from(ctx: typer.Context | None, config: Path | None) -> Settings:
    # Imported here, as the rest of the stack is by the commands: pydantic and SQLAlchemy
    # cost a third of a second that ``--help`` need not pay.
    from newsfold.config import load_settings

    path = config
    if path is None and ctx is not None and ctx.obj:
        path = ctx.obj.get("config")
    return load_settings(path)


def open_service(
    ctx: typer.Context | None, config: Path | None, *, read_only: bool = False
) -> Service:
    """The service on the configured database, created or upgraded as needed.

    ``read_only`` commands never create a SQLite database: where its file does not
    exist they read an empty one in memory (same schema, same queries), so they show
    zeros instead of leaving a file, or a directory, behind a mistyped path.
    """
    from newsfold.pipeline.service import Service

    return Service.open(_settings_to_open(ctx, config, read_only=read_only))


@dataclass(frozen=True)
class Store:
    """What a command that only reads uses: the settings and the database."""

    settings: Settings
    storage: Storage


def open_store(ctx: typer.Context | None, config: Path | None, *, read_only: bool = True) -> Store:
    """``open_service`` without the pipeline, for commands that only read or edit rows: the
    database migrated and the settings file's feeds subscribed, as every command finds them,
    but no fetcher and no dedup stack to import (half a second of a ``stats``)."""
    from newsfold.pipeline.subscriptions import open_storage

    settings = _settings_to_open(ctx, config, read_only=read_only)
    return Store(settings, open_storage(settings, now=datetime.now(UTC)))


def _settings_to_open(
    ctx: typer.Context | None, config: Path | None, *, read_only: bool
) -> Settings:
    from newsfold.config import sqlite_path

    settings = settings_from(ctx, config)
    path = sqlite_path(settings.database_url)
    if read_only and path is not None and not path.exists():
        settings = settings.model_copy(update={"database_url": "sqlite://"})
    return settings


def iso(value: datetime | None) -> str | None:
    """A UTC time for ``--json``: ISO 8601 at full precision."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stamp(value: datetime | None) -> str:
    """A UTC time for people: ISO 8601 to the second (``2024-12-01T13:05:00Z``)."""
    if value is None:
        return "-"
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def when(value: datetime | None) -> str:
    """A UTC time for tables: to the minute, 16 characters."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "-"
    now = now or datetime.now(UTC)
    delta = (now - value).total_seconds()
    future = delta < 0
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            text = f"{delta / size:.0f}{unit}"
            break
    else:
        text = f"{delta:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def table(*columns: str | Col, title: str | None = None) -> Grid:
    """A table laid out for the terminal's width when printed (``cli/_tables.py``).

    ``"name"`` wraps at words; ``"name:fold"`` (URLs, errors) folds anywhere, so a long
    URL is wrapped, never cut; ``"name:fixed"`` (ids, counts, dates) never wraps. A third
    part caps a column's width (``"last error:fold:40"``). A ``Col`` also says which
    columns go first on a narrow terminal.
    """
    return Grid(*columns, title=title)


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 feed", "0 feeds", "2 feeds"; ``words`` for irregular plurals ("copies").

    English output only: every message of the CLI is English.
    """
    return f"{n} {word if n == 1 else words or word + 's'}"


def say(message: str, *, err: bool = False) -> None:
    """One line of plain text: never read as console markup (``[[alerts]]``, a URL's
    ``[]``), never wrapped by the console (a terminal wraps it; a pipe gets one line)."""
    (err_console if err else console).print(message, markup=False, highlight=False, soft_wrap=True)


def text(value: object) -> Text:
    """Feed-provided text as a table cell: shown as is, never read as console markup."""
    return Text("" if value is None else str(value))
