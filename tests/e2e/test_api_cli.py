"""`newsfold export atom|json` over the seeded database, and `newsfold serve --help`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import feedparser
import pytest
import typer
from typer.testing import CliRunner

from newsfold.cli import serve
from tests.e2e.test_api import Seeded, seed, seeded

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["seed", "seeded"]

app = typer.Typer()
app.command("serve")(serve.serve)
app.command("export")(serve.export)


@pytest.fixture
def runner(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", seeded.settings.database_url)
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "entries"),
    [
        ([], 4),
        (["--min-size", "2"], 1),
        (["--tag", "politics"], 1),
        (["--tag", "world", "--tag", "none"], 2),
        (["--since", "100m"], 2),
        (["--limit", "1"], 1),
    ],
)
def test_export_atom(runner: CliRunner, args: list[str], entries: int, tmp_path: Path) -> None:
    out = tmp_path / "stories.atom"
    result = runner.invoke(app, ["export", "atom", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    parsed = feedparser.parse(out.read_bytes())
    assert not parsed.bozo
    assert len(parsed.entries) == entries


def test_export_json_to_stdout(runner: CliRunner, seeded: Seeded) -> None:
    result = runner.invoke(app, ["export", "json", "--min-size", "5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    [item] = doc["items"]
    assert item["_newsfold"]["story_id"] == seeded.story_id
    assert item["_newsfold"]["sources"] == ["Alpha Wire", "Beta Times", "Gamma Post"]


@pytest.mark.parametrize("command", ["serve", "export"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--config" in result.stdout
