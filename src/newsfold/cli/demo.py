"""``newsfold demo``: serve the bundled sample feeds on 127.0.0.1, ingest them, show the stories.

The sample feeds (``demo_data/``) are four invented outlets carrying wire copy
with their own banners, captions, tracking links and pixels, independent
reports of one event, a look-alike event, and unrelated news.
"""

from __future__ import annotations

import functools
import shutil
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from newsfold.cli._common import console, plural, print_json, say, text, when
from newsfold.cli._common import table as make_table
from newsfold.cli._tables import Col
from newsfold.config import load_settings
from newsfold.pipeline.service import Service
from newsfold.types import Level

DEMO_FILES = ("harbor-gazette.xml", "valley-courier.xml", "northwire.atom", "metro-daily.json")


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - class-level table, as in the base class
        ".xml": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".json": "application/feed+json",
    }

    def log_message(self, *args: object) -> None:
        pass


def serve_demo_data() -> tuple[ThreadingHTTPServer, str]:
    directory = str(resources.files("newsfold") / "demo_data")
    handler = functools.partial(_QuietHandler, directory=directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host!s}:{port}"


def run_demo(database: Path, *, json_out: bool = False) -> None:
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    server, base = serve_demo_data()
    try:
        # The demo server is on loopback, which the fetcher refuses by default.
        settings = load_settings(
            None,
            read_file=False,
            database_url=f"sqlite:///{database}",
            allow_private_networks=True,
        )
        # One local host serves every sample feed: no politeness delay needed.
        settings = settings.model_copy(
            update={"fetch": settings.fetch.model_copy(update={"min_host_delay_s": 0.0})}
        )
        service = Service.open(settings)
        for name in DEMO_FILES:
            service.add_feed(f"{base}/{name}")
        t0 = time.perf_counter()
        summary = service.poll()
        elapsed = time.perf_counter() - t0
        again = service.poll()
        stories = service.storage.list_clusters(level=Level.STORIES, limit=None)
        copies = service.storage.list_clusters(level=Level.COPIES, min_size=2, limit=None)
    finally:
        server.shutdown()
    if json_out:
        print_json(
            {
                "database": str(database),
                "feeds": len(summary.feeds),
                "articles": summary.new_articles,
                "errors": summary.errors,
                "seconds": round(elapsed, 3),
                "second_poll_new_articles": again.new_articles,
                "stories": [
                    {"id": c.id, "title": c.title, "size": c.size, "sources": list(c.sources)}
                    for c in stories
                ],
                "copy_groups": [{"id": c.id, "title": c.title, "size": c.size} for c in copies],
            }
        )
        return
    say(
        f"ingested {plural(summary.new_articles, 'article')} from "
        f"{plural(len(summary.feeds), 'feed')} in {elapsed:.2f}s "
        f"({summary.new_articles / elapsed:.0f} articles/s), "
        f"{plural(summary.errors, 'error')}; polling again added {again.new_articles}"
    )
    table = make_table(
        Col("story", kind="fixed"),
        Col("size", kind="fixed", justify="right"),
        Col("title", weight=3, min_width=20),
        Col("sources", min_width=12),
        Col("first report", kind="fixed"),
        title="stories",
    )
    for c in sorted(stories, key=lambda c: (-c.size, c.id)):
        table.add_row(
            str(c.id), str(c.size), text(c.title), text(", ".join(c.sources)), when(c.first_seen)
        )
    console.print(table)
    say(f"{plural(len(copies), 'near-duplicate copy group')}; database: {database}")
    # A command that works where it is printed: this very executable and database path.
    say(
        f"inspect it: NEWSFOLD_DATABASE_URL=sqlite:///{_relative(database)} "
        f"{_command()} clusters show ID"
    )


def _command() -> str:
    """How to run this very ``newsfold`` from here: its bare name when the shell finds it
    on PATH, else its path (``.venv/bin/newsfold`` from the repository root)."""
    script = Path(sys.argv[0])
    exe = script if script.name == "newsfold" else Path(sys.executable).with_name("newsfold")
    on_path = shutil.which("newsfold")
    if on_path and Path(on_path).resolve() == exe.resolve():
        return "newsfold"
    return _relative(exe)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())
