"""`newsfold search`: full-text search over articles and stories."""

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
    print_json,
    since_to_datetime,
    text,
    when,
)
from newsfold.cli._common import table as make_table
from newsfold.cli._tables import Col
from newsfold.search_query import snippet_html, snippet_parts
from newsfold.types import SearchLevel

if TYPE_CHECKING:
    from newsfold.storage.search import SearchHit


def hit_json(hit: SearchHit, level: SearchLevel) -> dict[str, object]:
    """One result as the CLI's --json and the API show it; ``snippet`` is HTML (escaped
    text, each match in <mark>)."""
    if level is SearchLevel.ARTICLES:
        return {
            "id": hit.id,
            "title": hit.title,
            "url": hit.url,
            "feed": hit.feed,
            "snippet": snippet_html(hit.snippet),
            "published": iso(hit.published),
            "score": round(hit.score, 6),
        }
    return {
        "id": hit.id,
        "title": hit.title,
        "size": hit.size,
        "sources": list(hit.sources),
        "snippet": snippet_html(hit.snippet),
        "published": iso(hit.published),
        "matches": hit.matches,
        "article_id": hit.article_id,
        "score": round(hit.score, 6),
    }


def _snippet_text(snippet: str) -> Text:
    out = Text()
    for piece, hit in snippet_parts(snippet):
        out.append(piece, style="bold reverse" if hit else "")
    return out


def search(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            help='Words (all must match), "a phrase", -excluded, a OR b, (groups).',
            show_default=False,
        ),
    ],
    level: Annotated[
        SearchLevel, typer.Option(help="articles: matching articles; stories: their stories.")
    ] = SearchLevel.ARTICLES,
    since: Annotated[
        str | None,
        typer.Option(help="Only articles published within (24h, 7d) or since an ISO date."),
    ] = None,
    feed: Annotated[
        str | None, typer.Option(help="Only articles of this feed (id or URL).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most N results.")] = 20,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Search articles or stories, best match first."""
    store = open_store(ctx, config)
    storage = store.storage
    feed_id = storage.get_feed(feed).id if feed else None
    hits = storage.search(
        query,
        stories=level is SearchLevel.STORIES,
        since=since_to_datetime(since),
        feed_id=feed_id,
        limit=limit,
    )
    if json_out:
        print_json([hit_json(h, level) for h in hits])
        return
    if not hits:
        console.print("no matches")
        return
    # Narrow terminals lose the secondary columns before any column gets narrower than its
    # longest word: the feed or sources go under the title, then the date goes.
    if level is SearchLevel.ARTICLES:
        table = make_table(
            Col("id", kind="fixed"),
            Col("published", kind="fixed", drop=1),
            Col("feed", drop=2, into="title"),
            Col("title", weight=2),
            Col("snippet", weight=3),
        )
        for h in hits:
            table.add_row(
                str(h.id), when(h.published), text(h.feed), text(h.title), _snippet_text(h.snippet)
            )
    else:
        table = make_table(
            Col("id", kind="fixed"),
            Col("size", kind="fixed", justify="right"),
            Col("published", kind="fixed", drop=1),
            Col("title", weight=2),
            Col("sources", drop=2, into="title"),
            Col("snippet", weight=3),
        )
        for h in hits:
            table.add_row(
                str(h.id),
                str(h.size),
                when(h.published),
                text(h.title),
                text(", ".join(h.sources)),
                _snippet_text(h.snippet),
            )
    console.print(table)
