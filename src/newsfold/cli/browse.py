"""`newsfold clusters|articles|stats`: read what was ingested."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from newsfold.cli._common import (
    ConfigOpt,
    JsonOpt,
    console,
    iso,
    open_store,
    plural,
    print_json,
    say,
    since_to_datetime,
    stamp,
    text,
    when,
)
from newsfold.cli._common import table as make_table
from newsfold.cli._tables import Col
from newsfold.types import Level

if TYPE_CHECKING:
    from newsfold.storage.history import StoryHistory
    from newsfold.storage.records import ArticleInfo, ClusterSummary

clusters_app = typer.Typer(help="Inspect story clusters.", no_args_is_help=True)
articles_app = typer.Typer(help="Inspect stored articles.", no_args_is_help=True)


LevelOpt = Annotated[
    Level,
    typer.Option(help="stories: same event; copies: near-duplicate copies of one text."),
]


def cluster_json(c: ClusterSummary, past: StoryHistory | None = None) -> dict[str, object]:
    history = {}
    if past is not None:  # a story's merges and splits, as ``clusters show`` gives them
        history = {
            "merged_from": list(past.merged_from),
            "split_from": [{"id": i, "split_at": iso(at)} for i, at in past.split_from],
            "split_into": [{"id": i, "split_at": iso(at)} for i, at in past.split_into],
        }
    return {
        "id": c.id,
        "level": c.level,
        "title": c.title,
        "size": c.size,
        "first_seen": iso(c.first_seen),
        "last_seen": iso(c.last_seen),
        # The story's time span: its members' story times (publication when credible).
        "first_published": iso(c.first_seen),
        "last_published": iso(c.last_seen),
        "span_days": round((c.last_seen - c.first_seen).total_seconds() / 86400, 2),
        "sources": list(c.sources),
        **({"copy_groups": c.copy_groups} if c.level is Level.STORIES else {"story": c.story}),
        **history,
    }


@clusters_app.command("list")
def clusters_list(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Only clusters with a report within (24h, 7d) or since an ISO date."),
    ] = None,
    min_size: Annotated[
        int, typer.Option(min=1, help="Only clusters with at least N articles.")
    ] = 1,
    level: LevelOpt = Level.STORIES,
    limit: Annotated[int, typer.Option(min=0, help="At most N clusters (0: all).")] = 100,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List clusters, newest first."""
    store = open_store(ctx, config)
    after = since_to_datetime(since)
    rows = store.storage.list_clusters(
        level=level, since=after, min_size=min_size, limit=limit or None
    )
    if json_out:
        from newsfold.storage.history import StoryHistory

        past = store.storage.story_histories([c.id for c in rows]) if level is Level.STORIES else {}
        print_json([cluster_json(c, past.get(c.id, StoryHistory())) for c in rows])
        return
    groups = "copy groups" if level is Level.STORIES else "story"
    table = make_table(
        Col("id", kind="fixed"),
        Col("size", kind="fixed", justify="right"),
        Col(groups, kind="fixed", justify="right", drop=1),
        Col("title", weight=3, min_width=20),
        Col("sources", min_width=12),
        Col("latest", kind="fixed"),
    )
    for c in rows:
        extra = str(c.copy_groups) if level is Level.STORIES else str(c.story or "-")
        table.add_row(
            str(c.id),
            str(c.size),
            extra,
            text(c.title),
            text(", ".join(c.sources)),
            when(c.last_seen),
        )
    console.print(table)
    if limit and len(rows) == limit:
        total = store.storage.count_clusters(level=level, since=after, min_size=min_size)
        _say_cut(len(rows), total, "stories" if level is Level.STORIES else "copy groups")


@clusters_app.command("show")
def clusters_show(
    ctx: typer.Context,
    cluster_id: Annotated[
        int, typer.Argument(help="Cluster id (a merged id resolves to its survivor).")
    ],
    level: LevelOpt = Level.STORIES,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show a cluster's articles with the evidence that put each one there."""
    store = open_store(ctx, config)
    detail = store.storage.cluster_detail(cluster_id, level=level)
    members = [
        {
            "id": m.id,
            "title": m.title,
            "url": m.url,
            "feed": m.feed,
            "feed_id": m.feed_id,
            "published": iso(m.published),
            "similarity": round(m.similarity, 4),
            "tier": m.tier,
            "matched_article_id": m.matched_article_id,
            "copy_group": m.copy_group,
        }
        for m in detail.articles
    ]
    if json_out:
        data = cluster_json(detail.summary) | {"articles": members}
        data["merged_from"] = list(detail.merged_from)
        data["split_from"] = [{"id": i, "split_at": iso(at)} for i, at in detail.split_from]
        data["split_into"] = [{"id": i, "split_at": iso(at)} for i, at in detail.split_into]
        print_json(data)
        return
    s = detail.summary
    noun = "story" if s.level is Level.STORIES else "copy group"
    if detail.requested_id != s.id:
        console.print(f"[dim]{noun} {detail.requested_id} was merged into {s.id}[/dim]")
    past = [f"split from #{i} ({when(at)})" for i, at in detail.split_from]
    past += [f"split into #{i} ({when(at)})" for i, at in detail.split_into]
    if detail.merged_from:
        past.insert(0, "merged from " + ", ".join(f"#{i}" for i in detail.merged_from))
    console.print(
        Text(s.title, style="bold") + Text(f"  ({noun} {s.id}, {plural(s.size, 'article')})")
    )
    console.print(Text(f"sources: {', '.join(s.sources)}"))
    span = (s.last_seen - s.first_seen).total_seconds() / 86400
    console.print(
        Text(f"published {stamp(s.first_seen)} .. {stamp(s.last_seen)} ({span:.1f} days)")
    )
    if past:
        console.print(Text("history: " + "; ".join(past)))
    table = make_table(
        Col("id", kind="fixed"),
        Col("copy group", kind="fixed", drop=2),
        Col("published", kind="fixed"),
        Col("feed", min_width=10),
        Col("tier", kind="fixed"),
        Col("sim", kind="fixed"),
        Col("via", kind="fixed", drop=1),
        Col("title", weight=3, min_width=20),
    )
    for m in detail.articles:
        table.add_row(
            str(m.id),
            str(m.copy_group or "-"),
            when(m.published),
            text(m.feed),
            m.tier,
            f"{m.similarity:.2f}",
            str(m.matched_article_id or "-"),
            text(m.title),
        )
    console.print(table)


def article_json(a: ArticleInfo, *, with_text: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "id": a.id,
        "title": a.title,
        "url": a.url,
        "feed": a.feed,
        "feed_id": a.feed_id,
        "published": iso(a.published),
        "date_source": a.date_source,
        "language": a.language,
        "cluster": a.cluster,
        "copy_group": a.copy_group,
    }
    if with_text:
        data |= {
            "author": a.author,
            "fetched_at": iso(a.fetched_at),
            "entry_key": a.entry_key,
            "revision": a.revision,
            "summary": a.summary,
            "text": a.text,
        }
    return data


@articles_app.command("list")
def articles_list(
    ctx: typer.Context,
    feed: Annotated[str | None, typer.Option(help="Only this feed (id or URL).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most N articles (0: all).")] = 50,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List articles, newest first."""
    store = open_store(ctx, config)
    feed_id = store.storage.get_feed(feed).id if feed else None
    rows = store.storage.list_articles(feed_id=feed_id, limit=limit or None)
    if json_out:
        print_json([article_json(a, with_text=False) for a in rows])
        return
    table = make_table(
        Col("id", kind="fixed"),
        Col("published", kind="fixed"),
        Col("feed", min_width=10),
        Col("cluster", kind="fixed", drop=1),
        Col("title", weight=3, min_width=20),
    )
    for a in rows:
        table.add_row(
            str(a.id), when(a.published), text(a.feed), str(a.cluster or "-"), text(a.title)
        )
    console.print(table)
    if limit and len(rows) == limit:
        _say_cut(len(rows), store.storage.count_articles(feed_id=feed_id), "articles")


def _say_cut(shown: int, total: int, what: str) -> None:
    """A list the limit cut says so under its table (a full list says nothing)."""
    if total > shown:
        say(f"{shown} of {total} {what} shown (--limit 0 for all)")


@articles_app.command("show")
def articles_show(
    ctx: typer.Context,
    article_id: Annotated[int, typer.Argument(help="Article id.")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show one article with its normalised text."""
    store = open_store(ctx, config)
    a = store.storage.get_article(article_id)
    if json_out:
        print_json(article_json(a, with_text=True))
        return
    console.print(Text(a.title or "(untitled)", style="bold"))
    console.print(Text(a.url or "-", overflow="fold"))
    details = (
        ("feed", a.feed),
        ("published", f"{stamp(a.published)} (date from {a.date_source})"),
        ("author", a.author or "-"),
        ("language", a.language or "-"),
        ("story", a.cluster or "-"),
        ("copy group", a.copy_group or "-"),
    )
    for key, value in details:
        console.print(Text(f"{key:>10}  ", style="dim") + Text(str(value)))
    if a.summary:
        console.print(Text("\nsummary", style="bold"))
        console.print(Text(a.summary, style="italic"))
    console.print(Text("\ntext", style="bold"))
    console.print(a.text, markup=False, highlight=False)


def stats(ctx: typer.Context, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Counts of feeds, articles, clusters, duplicates and errors."""
    store = open_store(ctx, config)
    st = store.storage.stats()
    data = {
        "feeds": st.feeds,
        "feeds_erroring": st.feeds_erroring,
        "feeds_disabled": st.feeds_disabled,
        "articles": st.articles,
        "clusters": st.clusters,
        "copy_groups": st.copy_groups,
        "multi_article_clusters": st.multi_article_clusters,
        "duplicates": st.duplicates,
        "exact_duplicates": st.exact_duplicates,
        "near_duplicates": st.near_duplicates,
        "story_joins": st.story_joins,
        "errors": st.errors,
    }
    if json_out:
        print_json(data)
        return
    table = make_table("what", Col("count", kind="fixed", justify="right"))
    for k, v in data.items():
        table.add_row(k.replace("_", " "), str(v))
    console.print(table)
