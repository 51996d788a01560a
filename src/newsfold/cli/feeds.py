"""`newsfold feeds …`: subscribe, list, inspect, import/export OPML."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import typer
from rich.text import Text

from newsfold.cli._common import (
    ConfigOpt,
    JsonOpt,
    ago,
    console,
    iso,
    open_service,
    open_store,
    parse_duration,
    plural,
    print_json,
    say,
    settings_from,
    stamp,
    text,
)
from newsfold.cli._common import table as make_table
from newsfold.cli._progress import progress, shown
from newsfold.cli._tables import Brief, Col, kv_grid
from newsfold.errors import ConfigError, FetchError, ParseError

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsfold.config import Settings
    from newsfold.storage.records import FeedInfo
    from newsfold.types import ParsedFeed

app = typer.Typer(help="Manage feed subscriptions.", no_args_is_help=True)


def _status(feed: FeedInfo, settings: Settings) -> str:
    from newsfold.pipeline.policy import status_of
    from newsfold.storage.feeds import health_of

    return status_of(
        health_of(feed),
        now=datetime.now(UTC),
        settings=settings.schedule,
        fetched=feed.last_fetch_at is not None,
    )


# ``feeds … --json`` keys, in order; four name ``FeedInfo`` fields as the CLI always has.
_JSON_KEYS = {
    "id": "id",
    "url": "url",
    "title": "title",
    "site_url": "site_url",
    "tags": "tags",
    "full_text": "full_text",
    "status": "status",
    "articles": "article_count",
    "interval_s": "interval_s",
    "configured_interval_s": "configured_interval_s",
    "last_fetch": "last_fetch_at",
    "last_success": "last_success_at",
    "next_fetch": "next_fetch_at",
    "error_count": "error_count",
    "error_since": "error_since",
    "last_error_kind": "last_error_kind",
    "last_error": "last_error",
    "disabled_reason": "disabled_reason",
    "etag": "etag",
    "last_modified": "last_modified",
}


def feed_json(
    feed: FeedInfo,
    settings: Settings,
    *,
    times: Callable[[datetime], str | None] = iso,  # ``stamp`` for people
) -> dict[str, object]:
    fields = dataclasses.asdict(feed) | {"status": _status(feed, settings)}
    out: dict[str, object] = {}
    for key, name in _JSON_KEYS.items():
        value = fields[name]
        out[key] = times(value) if isinstance(value, datetime) else value
    out["tags"] = list(feed.tags)
    return out


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Feed URL, or a web page that links to its feed.")],
    title: Annotated[str | None, typer.Option(help="Display title.")] = None,
    interval: Annotated[
        str | None, typer.Option(help="Fixed poll interval (e.g. 15m, 2h); default adaptive.")
    ] = None,
    full_text: Annotated[
        bool, typer.Option("--full-text", help="Fetch each article's page for its full text.")
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Fetch the URL first; if it is an HTML page, subscribe to the feed it links to.",
        ),
    ] = True,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Subscribe to a feed. It is fetched first; a feed that cannot be fetched is not
    subscribed (``--no-check`` subscribes anyway)."""
    interval_s = int(parse_duration(interval)) if interval else None
    url = url.strip()
    if not _is_http_url(url):
        raise FetchError(f"not an http(s) URL: {url!r}", url=url)
    parsed = None
    if check:  # before the database is opened: a refused URL leaves nothing behind
        url, parsed = _resolve_feed_url(url, settings_from(ctx, config))
    service = open_service(ctx, config)
    # What the check parsed names the feed at once (``feeds list``), not at its first poll.
    feed = service.add_feed(
        url,
        title=title or (parsed.title if parsed else None),
        site_url=parsed.link if parsed else None,
        interval_s=interval_s,
        full_text=full_text,
        tags=tag or (),
    )
    if json_out:
        print_json(feed_json(feed, service.settings))
    else:
        say(f"added feed {feed.id}: {feed.url}")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False


def _resolve_feed_url(url: str, settings: Settings) -> tuple[str, ParsedFeed | None]:
    """Check what the URL serves: a feed is subscribed to (with what it parsed to), a web
    page is followed to the feed it advertises with <link rel=alternate> (autodiscovery;
    that feed is read at its first poll), anything else is refused.

    The check parses what it fetched, as a poll would: an image, a JSON document that is
    not a JSON Feed or a spreadsheet answers 200 like a feed, and only a parse tells them
    apart. A feed shown as "ok" until its first poll fails would hide the mistake.
    """
    from newsfold.fetch import HTMLPageError, fetch_sync
    from newsfold.parse import parse_feed

    try:
        result = fetch_sync(
            url,
            settings.fetch,
            allow_private_networks=settings.allow_private_networks,
            as_feed=True,
        )
    except HTMLPageError as e:
        if not e.feeds:
            raise
        chosen = e.feeds[0].url
        others = ", ".join(f.url for f in e.feeds[1:])
        say(
            f"{url} is an HTML page; subscribing to the feed it links to: {chosen}"
            + (f" (also offered: {others})" if others else ""),
            err=True,
        )
        return chosen, None
    except FetchError as e:
        why = str(e) if url in str(e) else f"{url}: {e}"
        raise FetchError(
            f"not subscribed: {why} (--no-check subscribes anyway)", url=url, kind=e.kind
        ) from e
    try:
        parsed = parse_feed(
            result.content,
            url=result.url,
            headers=result.headers,
            max_entries=settings.fetch.max_entries,
        )
    except ParseError as e:
        # A parser's message may span lines; an error is one.
        why = " ".join(str(e).split()).removeprefix("not a feed: ")
        media = result.headers.get("content-type", "").split(";", 1)[0].strip()
        served = f"HTTP {result.status}, {plural(len(result.content), 'byte')}" + (
            f", {media}" if media else ""
        )
        raise ParseError(
            f"not subscribed: {url} is not a feed ({served}): {why} (--no-check subscribes anyway)"
        ) from e
    return url, parsed


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List feeds with their health: status, errors, last and next poll."""
    store = open_store(ctx, config)
    feeds = store.storage.list_feeds()
    if json_out:
        print_json([feed_json(f, store.settings) for f in feeds])
        return
    table = make_table(
        Col("id", kind="fixed"),
        Col("feed", weight=3, min_width=16),
        Col("url", kind="fold", min_width=40, weight=3, drop=3),
        Col("status", weight=1),
        Col("articles", kind="fixed"),
        Col("errors", kind="fixed"),
        Col("last error", kind="fold", min_width=24, max_width=48, drop=2),
        Col("next poll", kind="fixed"),
    )
    now = datetime.now(UTC)
    for f in feeds:
        status = _status(f, store.settings)
        style = "red" if f.disabled_reason or f.error_count else ""
        table.add_row(
            str(f.id),
            text(f.title or f.url),
            Text(f.url if f.title else "", style="dim"),
            Brief(Text(status, style=style), Text(_brief_status(status), style=style)),
            str(f.article_count),
            str(f.error_count),
            text(f"{f.last_error_kind}: {f.last_error}" if f.last_error else "-"),
            _next_poll(f, now),
        )
    console.print(table)


def _next_poll(feed: FeedInfo, now: datetime) -> str:
    """``in 12m``; ``due now`` once the time has come (the next tick polls it, so a time
    in the past is not "2s ago"); ``-`` for a disabled feed, which is not polled."""
    if feed.disabled_reason:
        return "-"
    return "due now" if feed.next_fetch_at <= now else ago(feed.next_fetch_at, now)


def _brief_status(status: str) -> str:
    """``erroring since … (…)`` → ``erroring``: the count and kind have columns of their own."""
    return status.split(" since ", 1)[0]


@app.command("show")
def show(
    ctx: typer.Context,
    feed: Annotated[str, typer.Argument(help="Feed id or URL.")],
    limit: Annotated[int, typer.Option(help="How many recent fetches to show.")] = 20,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show one feed and the history of its last fetches."""
    store = open_store(ctx, config)
    info = store.storage.get_feed(feed)
    history = store.storage.fetch_history(info.id, limit)
    if json_out:
        data = feed_json(info, store.settings)
        data["history"] = [
            {
                "started_at": iso(h.started_at),
                "outcome": h.outcome,
                "http_status": h.http_status,
                "bytes": h.bytes,
                # Its fetch, parse and normalise, its wait for the host's turn included.
                "duration_ms": h.duration_ms,
                "wait_ms": h.wait_ms,
                "new_items": h.new_items,
                "error": h.error,
            }
            for h in history
        ]
        print_json(data)
        return
    console.print(
        kv_grid(
            (key, text(value if value is not None else "-"))
            for key, value in feed_json(info, store.settings, times=stamp).items()
        )
    )
    table = make_table(
        Col("when", kind="fixed"),
        Col("outcome", kind="fixed"),
        Col("status", kind="fixed"),
        Col("bytes", kind="fixed", justify="right", drop=2),
        Col("fetch ms", kind="fixed", justify="right"),
        Col("wait ms", kind="fixed", justify="right"),
        Col("new", kind="fixed", justify="right", drop=1),
        Col("error", kind="fold", min_width=20),
        title="recent fetches",
    )
    for h in history:
        table.add_row(
            stamp(h.started_at),
            h.outcome,
            str(h.http_status or "-"),
            str(h.bytes),
            str(max(h.duration_ms - h.wait_ms, 0)),
            str(h.wait_ms),
            str(h.new_items),
            text(h.error or ""),
        )
    console.print(table)


@app.command("remove")
def remove(
    ctx: typer.Context,
    feed: Annotated[str, typer.Argument(help="Feed id or URL.")],
    config: ConfigOpt = None,
) -> None:
    """Unsubscribe and delete the feed's articles."""
    store = open_store(ctx, config, read_only=False)
    info = store.storage.remove_feed(feed)
    say(f"removed feed {info.id}: {info.url}")


@app.command("enable")
def enable(
    ctx: typer.Context,
    feed: Annotated[str, typer.Argument(help="Feed id or URL.")],
    config: ConfigOpt = None,
) -> None:
    """Re-enable a disabled feed (e.g. after 410 Gone) and poll it at the next cycle."""
    store = open_store(ctx, config, read_only=False)
    info = store.storage.set_enabled(feed, now=datetime.now(UTC))
    say(f"enabled feed {info.id}: {info.url}")


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="OPML file.", exists=True, dir_okay=False)],
    config: ConfigOpt = None,
) -> None:
    """Subscribe to every feed in an OPML file (already subscribed ones are skipped)."""
    service = open_service(ctx, config)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ConfigError(f"{path}: not valid OPML: {e}") from e
    added = skipped = 0
    outlines = [o for o in root.iter("outline") if o.get("xmlUrl")]
    with progress("importing", len(outlines), enabled=shown()) as bar:
        for outline in outlines:
            url = outline.get("xmlUrl") or ""
            bar.update(doing=url)
            try:
                title = outline.get("title") or outline.get("text")
                service.add_feed(url, title=title, origin="opml")
                added += 1
            except Exception as e:
                skipped += 1
                # "already subscribed: URL" would name the URL twice on the line.
                say(f"skipped {url}: {str(e).removesuffix(f': {url}')}", err=True)
            bar.advance()
    say(f"imported {plural(added, 'feed')}, skipped {skipped}")


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default stdout).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write all subscriptions as OPML 2.0."""
    store = open_store(ctx, config)
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = "newsfold subscriptions"
    body = ET.SubElement(opml, "body")
    for f in store.storage.list_feeds():
        attrs = {"type": "rss", "text": f.title or f.url, "xmlUrl": f.url}
        if f.title:
            attrs["title"] = f.title
        if f.site_url:
            attrs["htmlUrl"] = f.site_url
        ET.SubElement(body, "outline", attrs)
    ET.indent(opml)
    data = ET.tostring(opml, encoding="unicode", xml_declaration=True) + "\n"
    if output:
        output.write_text(data, encoding="utf-8")
    else:
        typer.echo(data, nl=False)
