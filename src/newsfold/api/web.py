"""The web page: today's stories with their sources, and a story page with members side by side.

Server-rendered with Jinja2, autoescape on: every feed-provided string is
text, never markup. Links from feeds are kept only when they are http(s), so a
``javascript:`` URL in a feed cannot become a clickable script.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from newsfold.api.feeds_out import plural, representative, story_summary, story_title
from newsfold.errors import NotFoundError
from newsfold.representative import display_title
from newsfold.search_query import QueryError, snippet_parts
from newsfold.storage.published import StoryFilter
from newsfold.types import SearchLevel

if TYPE_CHECKING:
    from newsfold.config import Settings
    from newsfold.pipeline.service import Service
    from newsfold.storage.published import PublishedMixin, PublishedStory

MAX_ID = 2**63 - 1


def safe_url(url: str | None) -> str | None:
    """The URL when it is http(s); anything else (javascript:, data:) is dropped."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in {"http", "https"} else None


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def make_env() -> Environment:
    env = Environment(
        loader=PackageLoader("newsfold.api", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["when"] = when
    env.globals["representative"] = representative
    env.globals["story_summary"] = story_summary
    env.globals["story_title"] = story_title
    env.globals["display_title"] = display_title
    env.globals["plural"] = plural
    env.globals["snippet_parts"] = snippet_parts
    return env


def web_router(settings: Settings, svc: Service, *, reader: PublishedMixin) -> APIRouter:
    router = APIRouter(tags=["web"])
    env = make_env()

    def render(name: str, status: int = 200, **context: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    @router.get("/", response_class=HTMLResponse)
    def index(
        hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24,
        min_size: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        """Stories seen in the last ``hours`` (today by default), newest first."""
        now = datetime.now(UTC)
        flt = StoryFilter(since=now - timedelta(hours=hours), min_size=min_size)
        stories: list[PublishedStory] = reader.published_stories(flt, limit=settings.api.page_size)
        recent = bool(stories)
        if not stories:  # a quiet day: show the latest rather than an empty page
            stories = reader.published_stories(
                StoryFilter(min_size=min_size), limit=settings.api.page_size
            )
        return render("index.html", stories=stories, recent=recent, hours=hours, now=now)

    @router.get("/search", response_class=HTMLResponse)
    def search(
        q: Annotated[str, Query(max_length=500)] = "",
        level: Annotated[SearchLevel, Query()] = SearchLevel.STORIES,
    ) -> HTMLResponse:
        """The search box's results: stories (or articles) matching ``q``, best first."""
        if not q.strip():
            return render(
                "search.html", q=q, level=level, hits=[], error="Type words to search for."
            )
        try:
            hits = svc.storage.search(q, stories=level is SearchLevel.STORIES, limit=50)
        except QueryError as e:
            return render("search.html", status=400, q=q, level=level, hits=[], error=str(e))
        return render("search.html", q=q, level=level, hits=hits, error=None)

    @router.get("/stories/{story_id}", response_class=HTMLResponse)
    def story(story_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> HTMLResponse:
        try:
            found = reader.published_story(story_id)
        except NotFoundError:
            return render("missing.html", status=404, story_id=story_id)
        by_id = {m.id: m for m in found.members}
        return render("story.html", story=found, by_id=by_id, requested_id=story_id)

    return router
