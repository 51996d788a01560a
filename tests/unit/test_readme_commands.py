"""Every newsfold command in the README's shell blocks runs as written from the repository
root: it names the venv's executable, and its command and options exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from newsfold.cli import main

REPO = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL):
        for raw in block.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if re.match(r"^(\S+/)?newsfold\s", line):
                found.append(line)
    return found


COMMANDS = _commands()


def test_readme_has_commands() -> None:
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_runs_from_the_repository_root(
    line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    program, *args = shlex.split(line)
    assert program == ".venv/bin/newsfold", f"not runnable from the repository root: {line}"
    # --help after the options: the command and every option name must exist (a typo
    # fails to parse), nothing runs.
    assert main([*args, "--help"]) == 0, capsys.readouterr()


def test_shipped_settings_do_not_clash_with_the_quickstart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From the repository root (its config/newsfold.toml in effect), the quickstart's
    `feeds add` subscribes the feed (was: "already subscribed", exit 1)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "newsfold.toml").write_text(
        (REPO / "config" / "newsfold.toml").read_text()
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'q.db'}")
    (add,) = [c for c in COMMANDS if " feeds add " in c]
    args = shlex.split(add)[1:]
    assert main([*args, "--no-check"]) == 0, capsys.readouterr().err
    assert "added feed 1" in capsys.readouterr().out


def test_demo_hint_names_a_command_that_works_where_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from newsfold.cli import demo

    exe = tmp_path / ".venv" / "bin" / "newsfold"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(exe), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert demo._command() == ".venv/bin/newsfold"
    assert demo._relative(tmp_path / "newsfold-demo.db") == "newsfold-demo.db"
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin:/bin")
    assert demo._command() == "newsfold"  # on PATH: the bare name works
