"""Crash safety: SIGKILL the real ``newsfold fetch`` process at random points of ingest.

Three feeds on the local server grow by two real articles (ECB+ reports, so
near-copies and shared stories occur) on every request. Each round starts a
fresh ``newsfold fetch`` subprocess and, once its first request reaches the
server, kills it after a random delay drawn over the measured length of an
ingest (fetch, parse, dedup and the write transaction). After at least
``KILLS`` kills, one clean run catches up; then:

* every article any response ever carried is stored exactly once;
* every article sits in exactly one cluster per level, every cluster's size is
  its membership count, and no membership or cluster is orphaned;
* a rebuilt index (``Service.rebuild_index``) holds exactly the stored signatures
  and cluster ids.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import text

from newsfold.dedup import minhash
from newsfold.pipeline.service import Service
from tests.conftest import REPO, SHARED
from tests.support.server import Reply, Request

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsfold.config import Settings
    from tests.support.server import FeedServer

KILLS = 20
FEEDS = 3
PER_REQUEST = 2
NEWSFOLD = str(Path(sys.executable).with_name("newsfold"))


def _docs() -> list[dict[str, Any]]:
    with (SHARED / "data" / "dedup-dev.jsonl").open() as fh:
        return [json.loads(line) for line in fh]


class GrowingFeed:
    """An RSS feed that gains ``PER_REQUEST`` items per request; remembers what it served."""

    def __init__(self, name: str, docs: list[dict[str, Any]]) -> None:
        self.name, self.docs = name, docs
        self.count = 0
        self.served: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            self.count = min(self.count + PER_REQUEST, len(self.docs))
            items = self.docs[: self.count]
            self.served.update(d["id"] for d in items)
        body = "".join(
            f"<item><title>{escape(d['title'] or d['id'])}</title>"
            f"<link>https://{self.name}.example/{escape(d['id'].replace(':', '/'))}</link>"
            f'<guid isPermaLink="false">{escape(d["id"])}</guid>'
            f"<pubDate>Sun, 01 Dec 2024 10:{i % 60:02d}:00 GMT</pubDate>"
            f"<description>{escape(''.join(f'<p>{p}</p>' for p in d['text'].split(chr(10))))}"
            "</description></item>"
            for i, d in enumerate(reversed(items))
        )
        doc = (
            f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{self.name}</title><link>https://{self.name}.example/</link>"
            f"<description>d</description>{body}</channel></rss>"
        )
        # No validators: every poll must parse (no 304 short cut).
        return Reply(200, doc.encode(), {"Content-Type": "application/rss+xml"})


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    env.update(
        NEWSFOLD_DATABASE_URL=database_url,
        NEWSFOLD_ALLOW_PRIVATE_NETWORKS="1",
        NEWSFOLD_FETCH__MIN_HOST_DELAY_S="0",
        NEWSFOLD_FETCH__READ_TIMEOUT_S="5",
        NEWSFOLD_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO / "src"),
    )
    return env


# A pre-imported interpreter that forks one ``newsfold fetch`` (``newsfold.cli.main``) per
# round: each round is a separate process killed with SIGKILL, without paying the
# interpreter start-up that is no part of ingest. Protocol on stdin/stdout:
# "fork" → child pid; "wait PID" → its exit status (negative: killed by that signal).
ZYGOTE = """
import os, sys
from newsfold.cli import main
import newsfold.pipeline.service, newsfold.cli.ops  # noqa: F401 - imported once, before forking
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "fork":
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os._exit(main(["fetch", "--json"]))
        print(pid, flush=True)
    elif cmd == "wait":
        _, status = os.waitpid(int(arg[0]), 0)
        print(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status), flush=True)
"""


class Runner:
    """Runs ``newsfold fetch`` rounds and kills them at chosen points after their first request."""

    def __init__(self, cwd: Path, env: dict[str, str], server: FeedServer) -> None:
        self.cwd, self.env, self.server = cwd, env, server
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            cwd=cwd,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _ask(self, line: str) -> int:
        assert self.zygote.stdin and self.zygote.stdout
        self.zygote.stdin.write(line + "\n")
        self.zygote.stdin.flush()
        return int(self.zygote.stdout.readline())

    def _first_request(self, seen: int, alive: Callable[[], bool]) -> float:
        deadline = time.monotonic() + 60
        while len(self.server.requests) == seen and alive():
            assert time.monotonic() < deadline, "fetch never reached the server"
            time.sleep(0.002)
        return time.monotonic()

    def cli(self) -> float:
        """One run of the installed ``newsfold fetch`` to completion; seconds from first request."""
        seen = len(self.server.requests)
        proc = subprocess.Popen(
            [NEWSFOLD, "fetch", "--json"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = self._first_request(seen, lambda: proc.poll() is None)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
        summary = json.loads(out)
        assert summary["errors"] == 0, [r["error"] for r in summary["results"]]
        return time.monotonic() - first

    def kill_after(self, delay: float) -> tuple[bool, float]:
        """Fork a fetch, SIGKILL it ``delay`` s after its first request.

        Returns whether it was killed, and the seconds from its first request to its end.
        """
        seen = len(self.server.requests)
        pid = self._ask("fork")
        done: dict[str, int | None] = {"status": None}

        def alive() -> bool:
            # A zombie still answers kill(pid, 0); /proc tells a finished child apart.
            try:
                with Path(f"/proc/{pid}/stat").open() as fh:
                    return fh.read().split(") ", 1)[1][0] != "Z"
            except FileNotFoundError:
                return False

        first = self._first_request(seen, alive)
        time.sleep(max(0.0, delay - (time.monotonic() - first)))
        if alive():
            os.kill(pid, signal.SIGKILL)
        done["status"] = self._ask(f"wait {pid}")
        assert done["status"] in (0, -signal.SIGKILL), done
        return done["status"] == -signal.SIGKILL, time.monotonic() - first

    def close(self) -> None:
        assert self.zygote.stdin
        self.zygote.stdin.close()
        self.zygote.wait(timeout=10)


def crash_and_recover(
    tmp_path: Path, database_url: str, server: FeedServer, settings: Settings, seed: int
) -> dict[str, Any]:
    docs = _docs()
    feeds = [GrowingFeed(f"outlet{i}", docs[i::FEEDS]) for i in range(FEEDS)]
    service = Service.open(settings)
    for i, feed in enumerate(feeds):
        server.route(f"/f{i}.xml", feed)
        service.add_feed(server.url(f"/f{i}.xml"))
    service.close()
    runner = Runner(tmp_path, _env(database_url), server)
    rng = random.Random(seed)
    window = runner.cli()  # calibration: how long one ingest takes, first request to exit
    kills, rounds, delays = 0, 0, []
    try:
        while kills < KILLS:
            rounds += 1
            delay = rng.uniform(0.0, window)
            killed, took = runner.kill_after(delay)
            if killed:
                kills += 1
                delays.append(delay / window)
            else:  # finished first: later rounds aim inside the shorter window
                window = min(window, took)
    finally:
        runner.close()
    runner.cli()  # recovery by the installed command
    served = set().union(*(f.served for f in feeds))
    return {
        "kills": kills,
        "rounds": rounds,
        "served": served,
        "window_s": window,
        "delays": delays,
    }


def check_invariants(service: Service, served: set[str]) -> dict[str, int]:
    engine = service.storage.engine
    with engine.connect() as conn:

        def q(sql: str) -> list[Any]:
            return list(conn.execute(text(sql)).all())

        keys = [k for (k,) in q("SELECT entry_key FROM articles")]
        assert len(keys) == len(set(keys)), "an article is stored twice"
        assert {k.removeprefix("guid:") for k in keys} == served, "articles lost or invented"
        for level in ("copies", "stories"):
            wrong = q(
                "SELECT a.id, COUNT(m.article_id) FROM articles a LEFT JOIN memberships m "
                f"ON m.article_id = a.id AND m.level = '{level}' GROUP BY a.id "
                "HAVING COUNT(m.article_id) <> 1"
            )
            assert wrong == [], f"articles not in exactly one {level} cluster: {wrong[:5]}"
        assert (
            q(
                "SELECT c.level, c.id, c.size, COUNT(m.article_id) FROM clusters c LEFT JOIN memberships m "
                "ON m.level = c.level AND m.cluster_id = c.id GROUP BY c.level, c.id, c.size "
                "HAVING c.size <> COUNT(m.article_id)"
            )
            == []
        ), "cluster size differs from its memberships (or an empty cluster)"
        assert (
            q(
                "SELECT m.article_id, m.level FROM memberships m LEFT JOIN clusters c "
                "ON c.level = m.level AND c.id = m.cluster_id WHERE c.id IS NULL"
            )
            == []
        ), "membership of a missing cluster"
        assert (
            q(
                "SELECT m.article_id FROM memberships m LEFT JOIN articles a ON a.id = m.article_id "
                "WHERE a.id IS NULL"
            )
            == []
        ), "membership of a missing article"
        stored = {
            aid: (bytes(sig), copy, story)
            for aid, sig, copy, story in q(
                "SELECT a.id, a.signature, c.cluster_id, s.cluster_id FROM articles a "
                "JOIN memberships c ON c.article_id = a.id AND c.level = 'copies' "
                "JOIN memberships s ON s.article_id = a.id AND s.level = 'stories'"
            )
        }
        clusters = q("SELECT COUNT(*) FROM clusters WHERE level = 'stories'")[0][0]
    # The rebuilt index holds exactly the stored signatures and cluster ids.
    assert service.rebuild_index() == len(stored)
    dedup = service.index.dedup  # the index itself: no public accessor exposes its arrays
    assert dedup is not None
    table, slots = dedup.copies.table, dedup.copies.slot_of
    assert set(slots) == set(stored)
    for aid, (sig, copy, story) in stored.items():
        slot = slots[aid]
        assert np.array_equal(table.sig[slot], minhash.decode(sig)[0]), aid
        assert (int(table.copy[slot]), int(table.story[slot])) == (copy, story), aid
    return {"articles": len(stored), "stories": clusters}


def test_sigkill_during_ingest_loses_and_duplicates_nothing(
    feed_server: FeedServer,
    database_url: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> None:
    t0 = time.perf_counter()
    settings = make_settings(database_url)
    run = crash_and_recover(tmp_path, database_url, feed_server, settings, seed=9)
    service = Service(settings)
    figures = check_invariants(service, run["served"])
    service.close()
    assert run["kills"] >= KILLS
    spread = sorted(run["delays"])
    print(
        f"\nCRASH {database_url.split(':', maxsplit=1)[0]}: {run['kills']} kills in {run['rounds']} rounds, "
        f"ingest window {run['window_s']:.2f}s, kill points {spread[0]:.2f}..{spread[-1]:.2f} "
        f"of it; {len(run['served'])} served = {figures['articles']} stored, "
        f"{figures['stories']} stories, {time.perf_counter() - t0:.1f}s"
    )
