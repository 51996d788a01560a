"""Bad settings and bad CLI input: one line naming the problem, exit ≠ 0, no traceback,
and nothing stored changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select

from newsfold.cli import main

NEWSFOLD = str(Path(sys.executable).with_name("newsfold"))
UNREACHABLE_PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database holding one feed, and a valid settings file pointing at it."""
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    (tmp_path / "good.toml").write_text(f'database_url = "{url}"\n')
    assert (
        main(
            [
                "--config",
                str(tmp_path / "good.toml"),
                "feeds",
                "add",
                "https://example.org/feed.xml",
                "--no-check",
            ]
        )
        == 0
    )
    return url


def snapshot(url: str) -> list[tuple[str, list[tuple[object, ...]]]]:
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        rows = [(t.name, [tuple(r) for r in conn.execute(select(t))]) for t in meta.sorted_tables]
    engine.dispose()
    return rows


# (settings file text, or None for a missing file; the words the error must contain)
CASES: dict[str, tuple[str | bytes | None, list[str]]] = {
    "invalid_toml": (
        'database_url = "{db}"\n[fetch\nread_timeout_s = 1\n',
        ["invalid TOML", "bad.toml", "line 2"],
    ),
    "unknown_key": ('database_url = "{db}"\ndatabse_url = "x"\n', ["databse_url", "unknown key"]),
    "unknown_nested_key": (
        'database_url = "{db}"\n[fetch]\nread_timeout = 3\n',
        ["fetch.read_timeout", "unknown key"],
    ),
    "unknown_section": ('database_url = "{db}"\n[fecth]\n', ["fecth", "unknown key"]),
    "bad_value": (
        'database_url = "{db}"\n[fetch]\nread_timeout_s = -1\n',
        ["fetch.read_timeout_s", "greater than 0"],
    ),
    "wrong_type": (
        'database_url = "{db}"\n[fetch]\nmax_bytes = "lots"\n',
        ["fetch.max_bytes", "integer"],
    ),
    "bad_scheme": ('database_url = "mysql://root@localhost/x"\n', ["database_url", "sqlite"]),
    # Said as it is, for reading and writing commands alike (was: "migration failed").
    "unreachable_db": (
        f'database_url = "{UNREACHABLE_PG}"\n',
        ["error: cannot connect to the database: ", "127.0.0.1", "refused"],
    ),
    "not_utf8": (b'database_url = "\xff\xfe"\n', ["bad.toml"]),
    "missing_file": (None, ["not found", "bad.toml"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", [["stats"], ["fetch"], ["feeds", "list"]])
def test_bad_settings_one_line_error(
    name: str, command: list[str], db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = CASES[name]
    path = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content.replace("{db}", db))
    before = snapshot(db)
    capsys.readouterr()
    code = main(["--config", str(path), *command])
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("javascript:alert(1)", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("http://", "not an http(s) URL"),
        ("ftp://example.org/feed", "not an http(s) URL"),
        ("'); DROP TABLE feeds;--", "not an http(s) URL"),
    ],
)
def test_bad_feed_url_on_command_line(
    url: str, word: str, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(db)
    capsys.readouterr()
    code = main(["--config", str(tmp_path / "good.toml"), "feeds", "add", url, "--no-check"])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and word in err, err
    assert snapshot(db) == before


@pytest.mark.parametrize("url", ["not a url", "javascript:alert(1)", "file:///etc/passwd"])
def test_bad_feed_url_in_settings_file(
    url: str, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(f'database_url = "{db}"\n[[feeds]]\nurl = "{url}"\n')
    before = snapshot(db)
    capsys.readouterr()
    code = main(["--config", str(path), "stats"])
    err = capsys.readouterr().err
    assert snapshot(db) == before
    assert code != 0 and "feeds.0.url" in err, err


def test_bad_environment_variable(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFOLD_FETCH__READ_TIMEOUT_S", "soon")
    code = main(["--config", str(tmp_path / "good.toml"), "stats"])
    err = capsys.readouterr().err
    assert code != 0 and "fetch.read_timeout_s" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--config", "{dir}/invalid.toml", "fetch"], "invalid TOML"),
        (["--config", "{dir}/nowhere.toml", "stats"], "not found"),
    ],
)
def test_subprocess_exit_code_and_no_traceback(
    args: list[str], word: str, db: str, tmp_path: Path
) -> None:
    (tmp_path / "invalid.toml").write_text("[[[")
    before = snapshot(db)
    proc = subprocess.run(
        [NEWSFOLD, *(a.replace("{dir}", str(tmp_path)) for a in args)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and word in proc.stderr, proc.stderr
    assert snapshot(db) == before
