"""Where settings come from: the TOML file (pydantic-settings' source), the environment
(every ``NEWSFOLD_*`` variable must name a setting), and database URLs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from newsfold.cli import main
from newsfold.config import (
    OTHER_ENV_VARS,
    load_settings,
    normalise_database_url,
    redact_url,
    sqlite_path,
    unknown_env_vars,
)
from newsfold.errors import ConfigError, StorageError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("NEWSFOLD_DATABSE_URL", "NEWSFOLD_DATABASE_URL"),
        ("NEWSFOLD_FECTH__READ_TIMEOUT_S", "NEWSFOLD_FETCH__READ_TIMEOUT_S"),
        ("NEWSFOLD_FETCH__READ_TIMOUT_S", "NEWSFOLD_FETCH__READ_TIMEOUT_S"),
        ("NEWSFOLD_NOTHING_LIKE_IT", None),
    ],
)
def test_unknown_environment_variable_is_an_error_naming_it(
    name: str, hint: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(name, "3")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert name in str(info.value)
    if hint:
        assert f"did you mean {hint}?" in str(info.value)
    # Nothing is created on the way to the error (the default SQLite file included).
    assert main(["stats"]) == 1
    assert not (tmp_path / "newsfold.db").exists()


def test_known_environment_variables_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in OTHER_ENV_VARS:
        monkeypatch.setenv(name, "x" if name != "NEWSFOLD_CONFIG" else str(tmp_path / "s.toml"))
    (tmp_path / "s.toml").write_text("")
    monkeypatch.setenv("newsfold_fetch__read_timeout_s", "7")  # case does not matter
    monkeypatch.setenv("NEWSFOLD_API__TOKEN", "t")
    monkeypatch.setenv("NEWSFOLD_HTTP__LISTEN", "127.0.0.1:1")
    assert unknown_env_vars() == []
    settings = load_settings(None)
    assert settings.fetch.read_timeout_s == 7 and settings.api.token == "t"


def test_every_variable_the_project_reads_is_known() -> None:
    """A NEWSFOLD_ name used anywhere in the repository is a setting or an exception."""
    import re

    from newsfold.config import Settings

    settings = {f"NEWSFOLD_{n.upper()}" for n in Settings.model_fields}
    used: set[str] = set()
    for folder in ("src", "docker", "benchmarks", "scripts", "tests/conftest.py"):
        paths = [REPO / folder] if (REPO / folder).is_file() else (REPO / folder).rglob("*")
        for path in paths:
            generated = ".egg-info" in str(path) or "__pycache__" in str(path)
            if (
                path.is_file()
                and not generated
                and path.suffix in {"", ".py", ".yaml", ".sh", ".example"}
            ):
                text = path.read_text(encoding="utf-8", errors="replace")
                used |= set(re.findall(r"NEWSFOLD_[A-Z_]*[A-Z]", text))
    for name in sorted(used):
        if "__" in name or name in settings:
            continue
        assert name in OTHER_ENV_VARS, name


def test_toml_source_is_per_call_and_thread_safe(tmp_path: Path) -> None:
    """Concurrent loads of different files never see each other's values."""
    files = []
    for i in range(4):
        path = tmp_path / f"s{i}.toml"
        path.write_text(f"[fetch]\nmax_entries = {100 + i}\n")
        files.append(path)
    wrong: list[tuple[int, int]] = []

    def load(i: int) -> None:
        for _ in range(40):
            got = load_settings(files[i]).fetch.max_entries
            if got != 100 + i:
                wrong.append((i, got))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert load_settings(None).fetch.max_entries == 500  # no file left behind


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('log_level = "DEBUG"\n[fetch]\nmax_entries = 9\nconcurrency = 3\n')
    monkeypatch.setenv("NEWSFOLD_FETCH__MAX_ENTRIES", "11")
    settings = load_settings(path)
    assert (settings.log_level, settings.fetch.max_entries, settings.fetch.concurrency) == (
        "DEBUG",
        11,
        3,
    )


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///newsfold.db", "sqlite:///newsfold.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        (
            "postgresql://u@h/db?options=-csearch_path%3Dnf",
            "postgresql+psycopg://u@h/db?options=-csearch_path%3Dnf",
        ),
    ],
)
def test_database_urls(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "not a url"])
def test_unsupported_database_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"database_url|database URL"):
        normalise_database_url(url)


def test_postgres_spelling_reaches_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x")
    settings = load_settings(None)
    assert settings.database_url == "postgresql+psycopg://u:secret@127.0.0.1:1/x"


def test_redaction_and_sqlite_paths() -> None:
    assert redact_url("postgresql+psycopg://u:s%40cret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert redact_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlite_path("sqlite:///rel/x.db") == Path("rel/x.db")
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None


def test_unwritable_sqlite_path_is_a_storage_error() -> None:
    from newsfold.storage import Storage

    with pytest.raises(StorageError, match=r"cannot create the SQLite database /proc/nope/x\.db"):
        Storage("sqlite:////proc/nope/x.db")


def test_unwritable_sqlite_path_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", "sqlite:////proc/nope/x.db")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/proc/nope/x.db" in err, err


def test_the_compose_token_variables_protect_a_direct_serve_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``NEWSFOLD_API_TOKEN`` (what docker/.env sets) set in a shell must not leave
    ``newsfold serve`` open: it is ``api.token``, under ``NEWSFOLD_API__TOKEN``."""
    monkeypatch.setenv("NEWSFOLD_API_TOKEN", "tok123")
    monkeypatch.setenv("NEWSFOLD_API_FEED_TOKEN", "feed456")
    settings = load_settings(None, read_file=False)
    assert (settings.api.token, settings.api.feed_token) == ("tok123", "feed456")
    monkeypatch.setenv("NEWSFOLD_API__TOKEN", "own")
    assert load_settings(None, read_file=False).api.token == "own"
    monkeypatch.setenv("NEWSFOLD_API_TOKEN", "")  # Compose's unset ${NEWSFOLD_API_TOKEN:-}
    monkeypatch.delenv("NEWSFOLD_API__TOKEN")
    monkeypatch.delenv("NEWSFOLD_API_FEED_TOKEN")
    assert load_settings(None, read_file=False).api.token is None
