"""`newsfold export atom|json` over the seeded database; `newsfold serve`: help, access log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import feedparser
import httpx
import pytest
import typer
from typer.testing import CliRunner

from newsfold.cli import serve
from tests.e2e.test_api import Seeded, seed, seeded

if TYPE_CHECKING:
    from collections.abc import Iterator
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


TOKEN, FEED_TOKEN = "main-s3cret", "feed-s3cret"


@contextlib.contextmanager
def _serving(tmp_path: Path, *options: str, **env: str) -> Iterator[tuple[httpx.Client, list[str]]]:
    """``newsfold serve`` in a process of its own; yields a client and, once the server has
    stopped, its stderr lines."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    environ |= {
        "NEWSFOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "NEWSFOLD_API__TOKEN": TOKEN,
        "NEWSFOLD_API__FEED_TOKEN": FEED_TOKEN,
        "NEWSFOLD_LOG_FORMAT": "json",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsfold", "serve", "--port", str(port), *options],
        env=environ,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "no server"
                    time.sleep(0.1)
            yield client, lines
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
        lines += err.splitlines()


def _access(lines: list[str]) -> list[dict[str, object]]:
    records = [json.loads(ln) for ln in lines if ln.startswith("{")]
    return [r for r in records if r.get("event") == "access"]


def test_serve_logs_one_line_a_request_with_tokens_masked(tmp_path: Path) -> None:
    with _serving(tmp_path) as (client, lines):
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/clusters?limit=5", headers=bearer).status_code == 200
        assert client.get(f"/feeds/stories.atom?token={FEED_TOKEN}&min_size=2").status_code == 200
        assert client.get("/api/feeds").status_code == 401
        assert client.get("/api/clusters/999", headers=bearer).status_code == 404
        assert client.get("/api/a%0Ab", headers=bearer).status_code == 404
    assert not [ln for ln in lines if TOKEN in ln or FEED_TOKEN in ln], lines
    got = [(r["msg"], r["status"], r["logger"], r["level"]) for r in _access(lines)]
    assert got == [
        ("GET /api/clusters?limit=5", 200, "newsfold.access", "info"),
        ("GET /feeds/stories.atom?token=***&min_size=2", 200, "newsfold.access", "info"),
        ("GET /api/feeds", 401, "newsfold.access", "info"),
        ("GET /api/clusters/999", 404, "newsfold.access", "info"),
        ("GET /api/a%0Ab", 404, "newsfold.access", "info"),  # as sent: one line, no forgery
    ], lines
    assert all(isinstance(r["duration_ms"], int) for r in _access(lines)), lines
    # Every line is a log record, the "serving on" line among them (was: plain text).
    records = [json.loads(ln) for ln in lines if ln.strip()]
    [serving] = [r for r in records if r.get("event") == "serving"]
    assert serving["logger"] == "newsfold.serve" and serving["level"] == "info", serving
    assert str(serving["msg"]).startswith("serving on http://127.0.0.1:"), serving


@pytest.mark.parametrize(
    ("options", "env"), [(["--no-access-log"], {}), ([], {"NEWSFOLD_API__ACCESS_LOG": "false"})]
)
def test_serve_access_log_can_be_turned_off(
    options: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    with _serving(tmp_path, *options, **env) as (client, lines):
        assert client.get("/api/clusters", auth=("reader", TOKEN)).status_code == 200
    assert _access(lines) == [], lines
    assert any("serving on" in ln for ln in lines), lines
