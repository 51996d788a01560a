"""Webhook alerts: raised with the placement (outbox), delivered at least once, once per
story and rule across replicas, signed, behind the SSRF guard; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import main
from newsfold.config import load_settings
from newsfold.pipeline.service import Service
from tests.conftest import REPO
from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.server import FeedServer

DATE = "Tue, 17 Nov 2026 08:00:00 +0000"
FLOOD = (
    "Heavy rain flooded the harbour district on Monday night. Emergency crews pumped water "
    "out of cellars while the river kept rising past the old stone bridge near the market."
)


def item(site: str, guid: str, title: str, body: str) -> dict[str, str]:
    return {
        "title": title,
        "link": f"https://{site}/{guid}",
        "guid": guid,
        "date": DATE,
        "html": f"<p>{body}</p>",
    }


FEED_A = rss("Daily A", "https://a.example/", [item("a.example", "f", "Harbour flooded", FLOOD)])
FEED_B = rss(
    "Daily B",
    "https://b.example/",
    [
        item("b.example", "f", "Storm floods harbour", FLOOD + " More rain is expected."),
        item(
            "b.example",
            "x",
            "Council approves budget",
            "The council approved the budget for schools and roads after a long debate "
            "about taxes, parks and the new tram line across the city centre.",
        ),
    ],
)


class Hook:
    """A webhook receiver on 127.0.0.1 that records every POST and answers ``status``
    after ``delay_s``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.delay_s = 0.0
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.received.append((self.path, dict(self.headers.items()), body))
                time.sleep(hook.delay_s)
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def posts(self, path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(h, json.loads(b)) for p, h, b in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def write_config(tmp_path: Path, database_url: str, hook: Hook, **alerting: float) -> Path:
    knobs = {"deliver_within_s": 3, "lease_s": 1, "retry_base_s": 0.2} | alerting
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(
        f"""
database_url = "{database_url}"
allow_private_networks = true
[fetch]
min_host_delay_s = 0
[alerting]
{chr(10).join(f"{k} = {v}" for k, v in knobs.items())}
[[alerts]]
url = "{hook.url("/signed")}"
min_sources = 2
secret = "s3cret"
[[alerts]]
url = "{hook.url("/budget")}"
min_sources = 2
query = "budget"
[[alerts]]
url = "{hook.url("/harbour")}"
min_sources = 2
query = '"harbour district" -tram'
[[alerts]]
url = "{hook.url("/three")}"
min_sources = 3
"""
    )
    return cfg


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def feeds(feed_server: FeedServer) -> FeedServer:
    feed_server.route("/a.xml", Static(FEED_A))
    feed_server.route("/b.xml", Static(FEED_B))
    return feed_server


def subscribe(capsys: pytest.CaptureFixture[str], cfg: Path, feeds: FeedServer) -> None:
    for name in ("/a.xml", "/b.xml"):
        assert cli(capsys, "--config", str(cfg), "feeds", "add", feeds.url(name))[0] == 0


def test_alert_fires_once_signed_with_the_story(
    database_url: str,
    tmp_path: Path,
    hook: Hook,
    feeds: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(tmp_path, database_url, hook)
    subscribe(capsys, cfg, feeds)
    code, out, err = cli(capsys, "--config", str(cfg), "fetch", "--json")
    assert code == 0, err
    assert json.loads(out)["alerts"] == {"delivered": 2, "failed": 0, "pending": 0}
    (signed,) = hook.posts("/signed")
    headers, body = signed
    raw = next(b for p, _, b in hook.received if p == "/signed")
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Newsfold-Signature"] == expected
    story = body["story"]
    assert (
        headers["Idempotency-Key"] == f"{story['id']}-" + headers["Idempotency-Key"].split("-")[1]
    )
    assert story["size"] == 2 and sorted(story["sources"]) == ["Daily A", "Daily B"]
    assert set(story) >= {"id", "title", "sources", "size", "first_published", "articles"}
    assert {a["outlet"] for a in story["articles"]} == {"Daily A", "Daily B"}
    assert all(a["title"] and a["url"] for a in story["articles"])
    assert body["rule"]["min_sources"] == 2
    # The query rule fires for the matching story only; the unmatched query and the higher
    # threshold never fire; an unsigned rule carries no signature.
    (harbour,) = hook.posts("/harbour")
    assert "X-Newsfold-Signature" not in harbour[0]
    assert hook.posts("/budget") == [] and hook.posts("/three") == []
    # A second poll (nothing new) raises nothing again.
    assert cli(capsys, "--config", str(cfg), "fetch")[0] == 0
    assert len(hook.received) == 2
    code, out, _ = cli(capsys, "--config", str(cfg), "alerts", "list", "--json")
    listed = json.loads(out)
    assert [r["rule"] for r in listed["rules"]] == [1, 2, 3, 4]
    assert sorted(d["status"] for d in listed["deliveries"]) == ["delivered", "delivered"]
    assert cli(capsys, "--config", str(cfg), "alerts", "list")[0] == 0


def test_failing_endpoint_is_retried_and_never_holds_the_fetch(
    database_url: str,
    tmp_path: Path,
    hook: Hook,
    feeds: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(tmp_path, database_url, hook, deliver_within_s=1)
    subscribe(capsys, cfg, feeds)
    hook.status = 503
    t0 = time.monotonic()
    code, out, err = cli(capsys, "--config", str(cfg), "fetch", "--json")
    assert code == 0, err
    assert time.monotonic() - t0 < 20
    assert json.loads(out)["alerts"]["pending"] == 2
    assert json.loads(out)["new_articles"] == 3  # the poll was stored whatever the endpoint did
    hook.status = 200
    time.sleep(0.5)  # past the first back-off
    code, out, _ = cli(capsys, "--config", str(cfg), "fetch", "--json")
    assert json.loads(out)["alerts"]["pending"] == 0
    listed = json.loads(cli(capsys, "--config", str(cfg), "alerts", "list", "--json")[1])
    assert all(d["status"] == "delivered" and d["attempts"] >= 2 for d in listed["deliveries"])
    keys = [h["Idempotency-Key"] for p, h, _ in hook.received if p == "/signed"]
    assert len(keys) >= 2 and len(set(keys)) == 1  # the same key on every retry


def test_crash_between_placement_and_delivery_still_alerts(
    database_url: str,
    tmp_path: Path,
    hook: Hook,
    feeds: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(tmp_path, database_url, hook, deliver_within_s=60)
    subscribe(capsys, cfg, feeds)
    hook.delay_s = 30  # the endpoint hangs: the fetch is killed while delivering
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsfold", "--config", str(cfg), "fetch"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not hook.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hook.received, "the fetch never tried to deliver"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    hook.delay_s = 0
    with hook.lock:
        hook.received.clear()
    time.sleep(1.2)  # the dead worker's lease runs out
    code, out, err = cli(capsys, "--config", str(cfg), "fetch", "--json")
    assert code == 0, err
    assert json.loads(out)["new_articles"] == 0  # the killed fetch had stored the poll
    assert len(hook.posts("/signed")) == 1 and len(hook.posts("/harbour")) == 1


def test_replicas_deliver_each_alert_once(
    database_url: str,
    tmp_path: Path,
    hook: Hook,
    feeds: FeedServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(tmp_path, database_url, hook, lease_s=30)
    subscribe(capsys, cfg, feeds)
    settings = load_settings(cfg)
    replicas = [Service.open(settings) for _ in range(4)]
    hook.delay_s = 0.3  # deliveries overlap
    try:
        # Two replicas place the two outlets' reports at once, each polling one feed.
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda r: r[0].poll([r[1]]), zip(replicas, ["1", "2"], strict=False)))
        # Then every replica delivers at once.
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda r: r.deliver_alerts(within_s=10), replicas))
    finally:
        for r in replicas:
            r.close()
    assert len(hook.posts("/signed")) == 1
    assert len(hook.posts("/harbour")) == 1
    assert len(hook.received) == 2


def test_alerts_test_and_the_ssrf_guard(
    tmp_path: Path, hook: Hook, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", hook)
    code, out, err = cli(capsys, "--config", str(cfg), "alerts", "test", "--rule", "1")
    assert code == 0, err
    (sent,) = hook.posts("/signed")
    assert sent[1]["test"] is True and "X-Newsfold-Signature" in sent[0]
    guarded = tmp_path / "guarded.toml"
    guarded.write_text(cfg.read_text().replace("allow_private_networks = true", ""))
    code, out, err = cli(capsys, "--config", str(guarded), "alerts", "test", "--rule", "1")
    assert code == 1 and "refused" in out and err.startswith("error: ")
    assert len(hook.received) == 1  # the guarded request never left
    bad = tmp_path / "bad.toml"
    bad.write_text('[[alerts]]\nurl = "http://x.example/"\nquery = "\\"open"\n')
    code, _, err = cli(capsys, "--config", str(bad), "alerts", "list")
    assert code == 1 and "unclosed quote" in err and len(err.strip().splitlines()) == 1
