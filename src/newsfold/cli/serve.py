"""`newsfold serve` (the API, output feeds and web page over HTTP) and `newsfold export`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from newsfold.cli._common import ConfigOpt, open_service, settings_from, since_to_datetime
from newsfold.errors import ConfigError


class Format(StrEnum):
    atom = "atom"
    json = "json"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: api.port, 8000).")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log one line a request (default: api.access_log, on).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the JSON API, the deduplicated feeds and the web page (read-only)."""
    import uvicorn

    from newsfold.api.app import create_app
    from newsfold.api.auth import redact_access_log
    from newsfold.logs import setup_logging

    settings = settings_from(ctx, config)
    if access_log is not None:
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"access_log": access_log})}
        )
    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    redact_access_log()  # a feed token in a URL must not reach a log, whatever the level
    bind_host = host or settings.api.host
    bind_port = settings.api.port if port is None else port
    logging.getLogger("newsfold.serve").info(
        "serving on http://%s:%s/ (API at /api, feeds at /feeds)",
        bind_host,
        bind_port,
        extra={"event": "serving", "host": bind_host, "port": bind_port},
    )
    try:
        # The app logs its own access lines (``api/access.py``), in the project's format.
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)
    except OSError as e:  # port in use, address not available
        raise ConfigError(f"cannot listen on {bind_host}:{bind_port}: {e}") from e


def export(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Argument(help="atom (RFC 4287) or json (JSON Feed 1.1).")],
    since: Annotated[
        str | None,
        typer.Option(help="Only stories with a report within (24h, 7d) or since an ISO date."),
    ] = None,
    min_size: Annotated[
        int, typer.Option(min=1, help="Only stories with at least N articles.")
    ] = 1,
    tag: Annotated[
        list[str] | None, typer.Option(help="Only stories from feeds with this tag (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most N stories (0: all).")] = 100,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the deduplicated feed: one entry per story, crediting every source."""
    from newsfold.api.feeds_out import FeedMeta, render_atom, render_json_feed
    from newsfold.storage.published import StoryFilter

    service = open_service(ctx, config, read_only=True)
    try:
        flt = StoryFilter(since=since_to_datetime(since), min_size=min_size, tags=tuple(tag or ()))
        stories = service.storage.published_stories(flt, limit=limit or None)
    finally:
        service.close()
    now = datetime.now(UTC)
    if fmt is Format.atom:
        body = render_atom(stories, FeedMeta(), now=now)
    else:
        doc = render_json_feed(stories, FeedMeta(), now=now)
        body = (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
    if output is None:
        typer.echo(body.decode(), nl=False)
        return
    try:
        output.write_bytes(body)
    except OSError as e:
        raise ConfigError(f"cannot write {output}: {e}") from e
