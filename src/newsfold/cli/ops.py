"""`newsfold fetch|run|prune|demo|extract|db`: operate the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from newsfold.cli._common import (
    ConfigOpt,
    JsonOpt,
    console,
    iso,
    open_service,
    plural,
    print_json,
    say,
    settings_from,
    stamp,
    text,
)
from newsfold.cli._common import table as make_table
from newsfold.cli._progress import PollBar, progress, shown
from newsfold.cli._tables import Col, kv_grid

if TYPE_CHECKING:
    from collections.abc import Mapping

    from newsfold.pipeline.retention import PruneReport
    from newsfold.types import PollSummary

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def poll_json(summary: PollSummary) -> dict[str, object]:
    return {
        "feeds": len(summary.feeds),
        "new_articles": summary.new_articles,
        "duplicates": summary.duplicates,
        "clusters_touched": summary.clusters_touched,
        "errors": summary.errors,
        "duration_s": round(summary.duration_s, 3),
        "write_s": round(summary.write_s, 3),
        "results": [
            {
                "feed_id": f.feed_id,
                "url": f.url,
                "status": f.status,
                "http_status": f.http_status,
                "new_articles": f.new_articles,
                "updated_articles": f.updated_articles,
                "duplicates": f.duplicates,
                "near_duplicates": f.near_duplicates,
                "clusters_touched": f.clusters_touched,
                "error_kind": str(f.error_kind) if f.error_kind else None,
                "error": f.error,
                "duration_s": round(f.duration_s, 3),
                "write_s": round(f.write_s, 3),
                "bytes": f.bytes,
            }
            for f in summary.feeds
        ],
    }


def print_poll(summary: PollSummary, titles: Mapping[int, str | None] | None = None) -> None:
    """One row a feed, named by its title (its URL when it has none)."""
    titles = titles or {}
    table = make_table(
        Col("id", kind="fixed"),
        Col("feed", weight=2, min_width=16),
        Col("status", kind="fixed"),
        Col("new", kind="fixed", justify="right"),
        Col("dup", kind="fixed", justify="right"),
        Col("near", kind="fixed", justify="right", drop=1),
        Col("clusters", kind="fixed", justify="right", drop=2),
        Col("error", kind="fold", max_width=50, drop=3, into="feed"),
    )
    for f in summary.feeds:
        table.add_row(
            str(f.feed_id),
            text(titles.get(f.feed_id) or f.url),
            f.status if f.status != "error" else f"[red]error ({f.error_kind})[/red]",
            str(f.new_articles),
            str(f.duplicates),
            str(f.near_duplicates),
            str(f.clusters_touched),
            text(f.error or ""),
        )
    console.print(table)
    say(
        f"{plural(len(summary.feeds), 'feed')}, {plural(summary.new_articles, 'new article')}, "
        f"{plural(summary.duplicates, 'duplicate')}, "
        f"{plural(summary.clusters_touched, 'cluster')} touched, "
        f"{plural(summary.errors, 'error')} in {summary.duration_s:.2f}s"
    )


def fetch(
    ctx: typer.Context,
    feed: Annotated[
        list[str] | None, typer.Option("--feed", help="Only this feed (id or URL); repeatable.")
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Poll feeds now (all enabled feeds, or the ones named) and print a summary."""
    service = open_service(ctx, config)
    with progress("fetching", None, enabled=shown(json_out)) as bar:
        summary = service.poll(feed or None, watch=PollBar(bar))
    # The alerts this poll raised (and any left from before), for a bounded time:
    # what is left goes out with the next fetch or from the daemon.
    alerts = None
    if service.settings.alerts or service.storage.pending_alerts():
        alerts = service.deliver_alerts(within_s=service.settings.alerting.deliver_within_s)
    if json_out:
        data = poll_json(summary)
        if alerts is not None:
            data["alerts"] = {
                "delivered": alerts.delivered,
                "failed": alerts.failed,
                "pending": alerts.pending,
            }
        print_json(data)
    else:
        print_poll(summary, {f.id: f.title for f in service.storage.list_feeds()})
        if alerts is not None and (alerts.delivered or alerts.failed or alerts.pending):
            say(
                f"alerts: {alerts.delivered} delivered, {alerts.failed} failed, "
                f"{alerts.pending} pending"
            )


def run(
    ctx: typer.Context,
    http: Annotated[
        str | None,
        typer.Option(
            help="Serve /healthz, /readyz and /metrics on HOST:PORT (e.g. 127.0.0.1:8080)."
        ),
    ] = None,
    once: Annotated[bool, typer.Option(help="Run one poll cycle of due feeds, then exit.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run the daemon: poll feeds when due until SIGTERM/SIGINT."""
    from newsfold.config import find_config
    from newsfold.daemon.scheduler import run_daemon

    path = find_config(config or (ctx.obj or {}).get("config"))
    settings = settings_from(ctx, config)
    raise typer.Exit(run_daemon(settings, config_path=path, http=http, once=once))


def prune_json(report: PruneReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "retention": report.cutoff is not None,
        "cutoff": iso(report.cutoff),
        "open_since": iso(report.open_since),
        "articles": report.articles,
        "copies": report.copies,
        "stories": report.stories,
        "fetch_log": report.fetch_log,
        "batches": report.batches,
        "duration_s": round(report.duration_s, 3),
    }


def prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Delete what [retention] no longer keeps: old articles (and the copy groups and
    stories they empty) and old fetch-log lines, in small batches."""
    service = open_service(ctx, config, read_only=dry_run)
    report = service.prune(dry_run=dry_run)
    if json_out:
        print_json(prune_json(report))
        return
    verb = "would delete" if report.dry_run else "deleted"
    if report.cutoff is None:
        say("retention.days is not set: every article is kept")
    else:
        say(
            f"articles with a story time before {stamp(report.cutoff)} go, unless their story "
            f"has one since {stamp(report.open_since)}"
        )
    say(
        f"{verb} {report.articles} articles, {report.copies} emptied copy groups, "
        f"{report.stories} emptied stories, {report.fetch_log} fetch-log lines"
    )


def demo(
    ctx: typer.Context,
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo (a fresh one each run).")
    ] = Path("newsfold-demo.db"),
    json_out: JsonOpt = False,
) -> None:
    """Serve the bundled sample feeds locally, ingest them and print the story clusters."""
    from newsfold.cli.demo import run_demo

    run_demo(database, json_out=json_out)


def extract(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="A URL, or a local file (feed or HTML page).")],
    url: Annotated[
        str | None, typer.Option(help="Base URL for a local file (resolves relative links).")
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show what the normaliser makes of a page or of a feed's entries."""
    from newsfold.fetch import fetch_sync
    from newsfold.normalise import extract_report
    from newsfold.normalise.extract import looks_like_feed

    settings = settings_from(ctx, config)
    path = Path(source)
    if "://" not in source and path.exists():
        data = path.read_bytes()
        base = url or path.resolve().as_uri()
    else:
        result = fetch_sync(
            source, settings.fetch, allow_private_networks=settings.allow_private_networks
        )
        data, base = result.content, result.url
    if not looks_like_feed(data):
        from newsfold.normalise.page import unreported_extractor_problem

        problem = unreported_extractor_problem()
        if problem is not None:
            say(f"warning: {problem}; this is the plain page text", err=True)
    reports = extract_report(data, base, settings.normalise)
    if json_out:
        print_json(reports)
        return
    for n, report in enumerate(reports):
        if n:
            console.rule(style="dim")
        _print_report(report)


def _print_report(report: Mapping[str, object]) -> None:
    """One entry's report: its fields as key/value lines (values wrapped under their column),
    then its text, and the comparison text when it differs (the ``--json`` keys)."""
    body = str(report.get("text") or "")
    compared = str(report.get("comparison_text") or "")
    where = "the text" if compared == body else "below the text"
    pairs = [
        (key, text(where if key == "comparison_text" else _field(value)))
        for key, value in report.items()
        if key != "text"
    ]
    console.print(kv_grid(pairs))
    for heading, block in (("text", body), ("comparison_text", compared)):
        if heading == "text" or compared != body:
            console.print()
            console.print(Text(heading, style="bold"))
            console.print(block or "-", markup=False, highlight=False)
    console.print()


def _field(value: object) -> str:
    """A report value for people: ``-`` for missing, lists joined, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None or value == "" else str(value)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Create or upgrade the database schema to the current version."""
    from newsfold.storage import Storage

    settings = settings_from(ctx, config)
    storage = Storage(settings.database_url)
    with progress("upgrading the database", None, enabled=shown()) as bar:
        revision = storage.upgrade(lambda what: bar.update(doing=what))
    say(f"database at revision {revision}")
