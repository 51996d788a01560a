"""The web page: today's stories with their sources, and a story page with members side by side.

Server-rendered with Jinja2, autoescape on: every feed-provided string is
text, never markup. Links from feeds are kept only when they are http(s), so a
``javascript:`` URL in a feed cannot become a clickable script.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode, urlsplit

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
    from collections.abc import Mapping, Sequence

    from newsfold.config import Settings
    from newsfold.pipeline.service import Service
    from newsfold.storage.published import PublishedMixin, PublishedStory

MAX_ID = 2**63 - 1
MAX_PAGE = 100_000
# The sources filter's choices: "several sources" is where deduplication shows.
SOURCE_CHOICES = (1, 2, 3)
_DEFAULTS = {"hours": 24, "min_size": 1, "min_sources": 1, "page": 1}


@dataclass(frozen=True, slots=True)
class FrontPage:
    """One page of the front page's stories, with what the filter and pager links need."""

    stories: list[PublishedStory]
    total: int  # stories the filter matches, all pages
    page: int
    pages: int
    hours: int
    min_size: int
    min_sources: int
    everything: int  # stories the filter matches whatever their number of sources

    page_size: int

    @property
    def first(self) -> int:
        """1-based position of the first story shown."""
        return (self.page - 1) * self.page_size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.stories) - 1

    def link(self, **changes: int) -> str:
        """This page's URL with ``changes``; parameters at their default are left out."""
        params = {
            "hours": self.hours,
            "min_size": self.min_size,
            "min_sources": self.min_sources,
            "page": self.page,
        }
        params.update(changes)
        query = urlencode({k: v for k, v in params.items() if v != _DEFAULTS[k]})
        return f"/?{query}" if query else "/"


def front_page(
    reader: PublishedMixin, flt: StoryFilter, *, page: int, page_size: int, hours: int
) -> FrontPage:
    # No per-choice counts on the filter: counting sources reads every member of every
    # story in the window (about 0.1 s for 6,000 stories), which the unfiltered page,
    # the one most people see, should not pay for.
    everything = reader.count_published_stories(replace(flt, min_sources=1))
    total = everything if flt.min_sources == 1 else reader.count_published_stories(flt)
    stories = reader.published_stories(flt, limit=page_size, offset=(page - 1) * page_size)
    return FrontPage(
        stories=stories,
        total=total,
        page=page,
        pages=-(-total // page_size),
        hours=hours,
        min_size=flt.min_size,
        min_sources=flt.min_sources,
        everything=everything,
        page_size=page_size,
    )


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


def iso(value: datetime) -> str:
    """A ``<time datetime>`` value (the pages wrap every date in ``<time>``, kept on one
    line in base.html: a narrow window would break it at a hyphen, "2026-" / "12-08")."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_env() -> Environment:
    env = Environment(
        loader=PackageLoader("newsfold.api", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.globals["representative"] = representative
    env.globals["story_summary"] = story_summary
    env.globals["story_title"] = story_title
    env.globals["display_title"] = display_title
    env.globals["plural"] = plural
    env.globals["source_choices"] = SOURCE_CHOICES
    env.globals["snippet_parts"] = snippet_parts
    return env


def is_web_page(path: str) -> bool:
    """Whether ``path`` is one of the pages below (not the API, the feeds or the schema)."""
    return path in ("/", "/search") or path.startswith("/stories/")


def bad_address_page(errors: Sequence[Mapping[str, object]]) -> HTMLResponse:
    """400: what in the address a page could not take ("page: Input should be ...")."""
    problems = []
    for error in errors:
        loc = error.get("loc")
        where = str(loc[-1]) if isinstance(loc, (list, tuple)) and loc else "address"
        problems.append(f"{where}: {error.get('msg', 'not valid')}")
    html = make_env().get_template("invalid.html").render(problems=problems)
    return HTMLResponse(html, status_code=400)


def web_router(settings: Settings, svc: Service, *, reader: PublishedMixin) -> APIRouter:
    router = APIRouter(tags=["web"])
    env = make_env()

    def render(name: str, status: int = 200, **context: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    @router.get("/", response_class=HTMLResponse)
    def index(
        hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24,
        min_size: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        min_sources: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        """Stories seen in the last ``hours`` (today by default), newest first, a page at a time."""
        now = datetime.now(UTC)
        flt = StoryFilter(
            since=now - timedelta(hours=hours), min_size=min_size, min_sources=min_sources
        )
        recent = reader.count_published_stories(replace(flt, min_sources=1)) > 0
        if not recent:  # a quiet day: show the latest rather than an empty page
            flt = replace(flt, since=None)
        view = front_page(reader, flt, page=page, page_size=settings.api.page_size, hours=hours)
        return render(
            "index.html", stories=view.stories, recent=recent, hours=hours, now=now, view=view
        )

    @router.get("/search", response_class=HTMLResponse)
    def search(
        q: Annotated[str, Query()] = "",  # an overlong query is the parser's 400 page
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
