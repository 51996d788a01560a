"""The worker pool dies with its owner: after ``kill -9`` of ``newsfold run`` or ``newsfold fetch``
in the middle of a poll, the forkserver and the worker processes exit within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.test_daemon import daemon_env, rss, wait_for
from tests.support.server import Stall, Static

if TYPE_CHECKING:
    from tests.support.server import FeedServer

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]


def _parents() -> dict[int, int]:
    """pid → parent pid of every live (not zombie) process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out[int(entry.name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    parents = _parents()
    return {p for p in pids if p in parents}


@pytest.mark.parametrize("command", ["run", "fetch"])
def test_worker_pool_exits_when_its_owner_is_killed(
    feed_server: FeedServer, tmp_path: Path, command: str
) -> None:
    config = tmp_path / "feeds.toml"
    feeds = []
    for i in range(6):
        doc = rss(f"o{i}", [(f"o{i}-1", f"Story {i}", f"Words of story {i}. " * 40)])
        feed_server.route(f"/o{i}.xml", Static(doc))
        feeds.append(feed_server.url(f"/o{i}.xml"))
    feed_server.route("/stall.xml", Stall(60))
    feeds.append(feed_server.url("/stall.xml"))
    config.write_text("".join(f'[[feeds]]\nurl = "{u}"\n\n' for u in feeds), encoding="utf-8")
    env = daemon_env(
        f"sqlite:///{tmp_path / 'nf.db'}",
        pipeline__workers=2,
        pipeline__pool_min_feeds=1,
        fetch__read_timeout_s=90,
        fetch__total_timeout_s=90,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsfold", command, "--config", str(config)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "err.log").open("wb"),
    )
    children: set[int] = set()
    try:
        # Mid-poll: the quick feeds went through the pool, the stalled one is still in flight.
        wait_for(lambda: feed_server.hits("/stall.xml"), timeout=60)
        wait_for(lambda: len(_descendants(proc.pid)) >= 3, timeout=60)  # forkserver + 2 workers
        time.sleep(1.0)
        children = _descendants(proc.pid)
        assert proc.poll() is None, (tmp_path / "err.log").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5.0
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _alive(children)
        assert not left, [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in _alive(children):  # never leave strays behind, even on failure
            os.kill(pid, signal.SIGKILL)
