"""`newsfold alerts list|test`: the webhook rules and their deliveries."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from newsfold.cli._common import (
    ConfigOpt,
    JsonOpt,
    console,
    iso,
    open_store,
    print_json,
    say,
    settings_from,
    text,
    when,
)
from newsfold.cli._common import table as make_table
from newsfold.errors import ConfigError, NewsfoldError

alerts_app = typer.Typer(help="Webhook alerts ([[alerts]] in the settings).", no_args_is_help=True)


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Recent deliveries to show.")] = 20,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show the alert rules and their recent deliveries."""
    store = open_store(ctx, config)
    rules = store.settings.alerts
    recent = store.storage.recent_alerts(limit)
    by_key = {r.key: n for n, r in enumerate(rules, 1)}
    deliveries = [
        {
            "id": a.id,
            "rule": by_key.get(a.rule_key),
            "rule_key": a.rule_key,
            "story_id": a.story_id,
            "url": a.url,
            "title": json.loads(a.payload).get("story", {}).get("title"),
            "created_at": iso(a.created_at),
            "attempts": a.attempts,
            "status": "delivered"
            if a.delivered_at
            else ("failed" if a.next_attempt_at is None else "pending"),
            "delivered_at": iso(a.delivered_at),
            "next_attempt_at": iso(a.next_attempt_at) if not a.delivered_at else None,
            "last_status": a.last_status,
            "last_error": a.last_error,
        }
        for a in recent
    ]
    if json_out:
        print_json(
            {
                "rules": [
                    {
                        "rule": n,
                        "key": r.key,
                        "url": r.url,
                        "min_sources": r.min_sources,
                        "query": r.query,
                        "signed": r.secret is not None,
                    }
                    for n, r in enumerate(rules, 1)
                ],
                "deliveries": deliveries,
            }
        )
        return
    if not rules:
        say("no alert rules: add [[alerts]] tables to the settings file")
    else:
        table = make_table("rule:fixed", "url:fold", "min sources:fixed", "query", "signed:fixed")
        for n, r in enumerate(rules, 1):
            table.add_row(
                str(n),
                text(r.url),
                str(r.min_sources),
                text(r.query or "-"),
                "yes" if r.secret else "no",
            )
        console.print(table)
    if deliveries:
        table = make_table(
            "story:fixed",
            "rule:fixed",
            "status",
            "tries:fixed",
            "when:fixed",
            "title",
            "error:fold:40",
        )
        for a, d in zip(recent, deliveries, strict=True):
            table.add_row(
                str(d["story_id"]),
                str(d["rule"] or "-"),
                str(d["status"]),
                str(d["attempts"]),
                when(a.delivered_at or a.created_at),
                text(d["title"]),
                text(d["last_error"] or ""),
            )
        console.print(table)


@alerts_app.command("test")
def alerts_test(
    ctx: typer.Context,
    rule: Annotated[
        int | None, typer.Option(min=1, help="Only rule N (as numbered by `alerts list`).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Send a sample alert to each rule's URL (or to one) and print what it answered."""
    from newsfold.pipeline.alerts import AlertSender

    settings = settings_from(ctx, config)
    rules = list(enumerate(settings.alerts, 1))
    if not rules:
        raise ConfigError("no alert rules: add [[alerts]] tables to the settings file")
    if rule is not None:
        if rule > len(rules):
            raise ConfigError(f"no alert rule {rule}: there are {len(rules)}")
        rules = [rules[rule - 1]]
    sender = AlertSender(settings)
    failed = []
    for n, r in rules:
        status, error = asyncio.run(sender.send_test(r))
        if error:
            failed.append(n)
            console.print(text(f"rule {n}: {r.url}: failed: {error}"))
        else:
            console.print(text(f"rule {n}: {r.url}: delivered (HTTP {status})"))
    if failed:
        raise NewsfoldError(f"test alert not delivered to rule {', '.join(map(str, failed))}")
