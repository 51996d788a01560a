"""Long commands show a progress bar on stderr at a terminal, and nothing when piped or
with ``--json``: ``fetch``, ``feeds import``, ``eval`` and ``db upgrade``."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

NEWSFOLD = [sys.executable, "-m", "newsfold.cli"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run(args: list[str], env: dict[str, str], *, terminal: bool) -> tuple[str, str]:
    """stdout (always a pipe) and stderr: a pseudo-terminal's when ``terminal``."""
    if not terminal:
        proc = subprocess.run(
            [*NEWSFOLD, *args], capture_output=True, text=True, env=env, timeout=180, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, proc.stderr
    master, slave = pty.openpty()
    with subprocess.Popen(
        [*NEWSFOLD, *args], stdout=subprocess.PIPE, stderr=slave, env=env
    ) as proc:
        os.close(slave)
        err = b""
        while True:
            ready, _, _ = select.select([master], [], [], 180)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal (Linux: EIO)
                break
            if not chunk:
                break
            err += chunk
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert proc.wait(timeout=180) == 0, err
    os.close(master)
    return out, ANSI.sub("", err.decode(errors="replace"))


@pytest.fixture
def env(feed_server: FeedServer, tmp_path: Path) -> dict[str, str]:
    for n in range(4):
        items = [
            {
                "title": f"Report {n}.{i} on the harbour",
                "link": f"https://o{n}.example/{i}",
                "guid": f"{n}-{i}",
                "date": "Tue, 01 Dec 2026 10:00:00 GMT",
                "html": f"<p>Report {n} {i} on the harbour and the port.</p>",
            }
            for i in range(3)
        ]
        feed_server.route(f"/f{n}.xml", Static(rss(f"Outlet {n}", "https://o.example/", items)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    env |= {
        "NEWSFOLD_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "NEWSFOLD_ALLOW_PRIVATE_NETWORKS": "true",
        # One host, a polite delay apart: the poll takes long enough to be watched.
        "NEWSFOLD_FETCH__MIN_HOST_DELAY_S": "0.4",
        "COLUMNS": "120",
        "TERM": "xterm-256color",
    }
    opml = "".join(
        f'<outline type="rss" xmlUrl="{feed_server.url(f"/f{n}.xml")}"/>' for n in range(4)
    )
    (tmp_path / "feeds.opml").write_text(
        f'<?xml version="1.0"?><opml version="2.0"><body>{opml}</body></opml>', encoding="utf-8"
    )
    (tmp_path / "set.jsonl").write_text(
        "".join(
            json.dumps({"id": f"d{i}", "cluster": "c", "title": f"t {i}", "text": "same text"})
            + "\n"
            for i in range(20)
        ),
        encoding="utf-8",
    )
    env["HOME"] = str(tmp_path)
    return env


def test_progress_at_a_terminal_only(env: dict[str, str], tmp_path: Path) -> None:
    _, err = _run(["db", "upgrade"], env, terminal=True)
    assert "upgrading the database" in err, err
    _, err = _run(["feeds", "import", str(tmp_path / "feeds.opml")], env, terminal=True)
    assert "importing" in err and "4/4" in err, err
    out, err = _run(["fetch"], env, terminal=True)
    assert "fetching" in err and "/4" in err, err
    assert "waiting: 127.0.0.1 ×" in err, err  # what the poll is waiting on
    assert "fetching" not in out  # the bar never reaches stdout
    _, err = _run(["eval", str(tmp_path / "set.jsonl")], env, terminal=True)
    assert "placing" in err and "20/20" in err, err
    # Piped, or --json at a terminal: no bar at all.
    _, err = _run(["fetch"], env, terminal=False)
    assert err.strip() == "", err
    out, err = _run(["fetch", "--json"], env, terminal=True)
    assert "fetching" not in err and "━" not in err, err
    assert json.loads(out)["feeds"] == 4
    _, err = _run(["eval", str(tmp_path / "set.jsonl"), "--json"], env, terminal=True)
    assert err.strip() == "", err


def test_the_fetch_bar_fits_80_columns(env: dict[str, str], tmp_path: Path) -> None:
    _run(["feeds", "import", str(tmp_path / "feeds.opml")], env, terminal=False)
    _, err = _run(["fetch"], env | {"COLUMNS": "80"}, terminal=True)
    # Four feeds on one host: what the rest wait on, whole, and no column cut short.
    assert re.search(r"waiting: 127\.0\.0\.1 ×[2-4]", err), err
    assert "…" not in err, err


@pytest.mark.parametrize(
    ("hosts", "width", "expected"),
    [
        (["127.0.0.1"] * 3, 80, "waiting: 127.0.0.1 ×3"),
        (["a.example"] * 3 + ["b.example"], 80, "waiting: a.example ×3 +1 host"),
        (["a.example"] * 3 + ["b.example"], 120, "waiting: a.example ×3, b.example"),
        (
            ["a.example"] * 3 + ["b.example"] * 2 + ["c.example"],
            80,
            "waiting: a.example ×3 +2 hosts",
        ),
        (["a.example"] * 3 + ["b.example"] * 97, 80, "waiting: 2 hosts"),
        (["a.example"] * 3 + ["b.example"] * 97, 100, "waiting: b.example ×97, a.example ×3"),
        (
            ["a-rather-long-host-name.example.com"] * 2,
            80,
            "waiting: a-rather-long-host-name.example.com ×2",
        ),
    ],
)
def test_what_the_poll_waits_on_fits_beside_the_bar(
    hosts: list[str], width: int, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar's other columns take 45 cells and the counts ("0/4"); what is waited on gets
    the rest, less one: a host and its count whole, else how many hosts."""
    from types import SimpleNamespace

    from newsfold.cli._common import err_console
    from newsfold.cli._progress import Bar, PollBar

    monkeypatch.setattr(err_console, "width", width)
    bar = PollBar(Bar(None, None))
    bar.started([SimpleNamespace(url=f"https://{h}/feed") for h in hosts])  # type: ignore[misc]
    assert bar._waiting() == expected
