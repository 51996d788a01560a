"""The HTTP face of newsfold: a read-only JSON API, the output feeds and the web page.

    /api/clusters, /api/clusters/{id}, /api/articles/{id}, /api/feeds   JSON
    /feeds/stories.atom, /feeds/stories.json                            deduplicated output feeds
    /, /stories/{id}, /search                                           server-rendered pages
    /openapi.json, /docs                                                the schema
    /healthz                                                            liveness

With ``api.token`` set, every route but /healthz wants it (``newsfold.api.auth``).

Nothing here writes to the database. Routes are plain ``def`` so FastAPI runs
the (synchronous) storage calls in its thread pool.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from newsfold import __version__
from newsfold.api import schemas
from newsfold.api.access import AccessLog
from newsfold.api.auth import TokenGate, describe_security
from newsfold.api.feeds_out import FeedMeta, render_atom, render_json_feed
from newsfold.api.web import bad_address_page, is_web_page, web_router
from newsfold.errors import NewsfoldError, NotFoundError, StorageError
from newsfold.pipeline.service import Service
from newsfold.storage.published import StoryFilter
from newsfold.types import SearchLevel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from newsfold.config import Settings
    from newsfold.storage.published import PublishedStory

# Ids are 64-bit signed in both databases: a larger one is a client error, not a 5xx.
MAX_ID = 2**63 - 1
MAX_OFFSET = 1_000_000
# Query text reaches SQL as a bound value; PostgreSQL refuses NUL, so controls are rejected early.
SAFE_TEXT = r"^[^\x00-\x1f\x7f]*$"
_DURATION = re.compile(r"^\s*(\d{1,9}(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

IdParam = Annotated[int, PathParam(ge=1, le=MAX_ID)]
WhenQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=SAFE_TEXT,
        description="A duration back from now (24h, 7d) or an ISO 8601 date.",
    ),
]
MinSizeQuery = Annotated[int, Query(ge=1, le=MAX_OFFSET, description="At least N articles.")]
MinSourcesQuery = Annotated[
    int, Query(ge=1, le=MAX_OFFSET, description="At least N distinct sources (outlets).")
]
TagQuery = Annotated[
    list[str] | None,
    Query(max_length=20, description="Feed tag (repeatable: any of them)."),
]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def parse_when(text: str | None, *, now: datetime) -> datetime | None:
    """'24h'/'7d' (back from ``now``) or an ISO date (naive means UTC); ValueError otherwise."""
    if not text:
        return None
    m = _DURATION.match(text)
    try:
        if m:
            return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"not a duration (24h) or an ISO date: {text!r}") from e


def story_filter(
    since: str | None,
    until: str | None,
    min_size: int,
    tags: list[str] | None,
    min_sources: int = 1,
) -> StoryFilter:
    now = datetime.now(UTC)
    clean = tuple(t.strip() for t in tags or () if t.strip())
    if any(len(t) > 100 or not re.match(SAFE_TEXT, t) for t in clean):
        raise HTTPException(status_code=422, detail="a tag is at most 100 printable characters")
    try:
        return StoryFilter(
            since=parse_when(since, now=now),
            until=parse_when(until, now=now),
            min_size=min_size,
            tags=clean,
            min_sources=min_sources,
        )
    except ValueError as e:
        raise HTTPException(status_code=422, detail=str(e)) from e


def create_app(settings: Settings, *, service: Service | None = None) -> FastAPI:
    """The app over ``service`` (opened from ``settings`` and closed with the app when None)."""
    owned = service is None
    svc = service or Service.open(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            svc.close()

    app = FastAPI(
        title="newsfold",
        version=__version__,
        description="Deduplicated news stories: each story once, crediting every outlet.",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # A person who edits a page's address (?page=0) reads a page, not a JSON error list.
        if is_web_page(request.url.path):
            return bad_address_page(exc.errors())
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(NotFoundError)
    def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StorageError)
    def _unavailable(_request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(NewsfoldError)
    def _bad_request(_request: Request, exc: NewsfoldError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness, open even when a token is set (container health checks send none)."""
        return {"status": "ok"}

    app.include_router(_api_router(settings, svc))
    app.include_router(_feeds_router(settings, svc))
    app.include_router(web_router(settings, svc, reader=svc.storage))
    if settings.api.token is not None:
        app.add_middleware(TokenGate, token=settings.api.token, feed_token=settings.api.feed_token)
        describe_security(app)
    if settings.api.access_log:  # added last: outermost, so a refused request is logged too
        app.add_middleware(AccessLog)
    return app


def _api_router(settings: Settings, svc: Service) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])
    reader = svc.storage
    page_size = settings.api.page_size

    @router.get("/clusters", response_model=schemas.ClusterPage)
    def list_clusters(
        *,
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        offset: OffsetQuery = 0,
        since: WhenQuery = None,
        until: WhenQuery = None,
        min_size: MinSizeQuery = 1,
        tag: TagQuery = None,
        min_sources: MinSourcesQuery = 1,
    ) -> schemas.ClusterPage:
        """Stories newest first (by last article seen), with their sources and members."""
        flt = story_filter(since, until, min_size, tag, min_sources)
        size = limit or page_size
        total = reader.count_published_stories(flt)
        stories = reader.published_stories(flt, limit=size, offset=offset, with_history=True)
        nxt = offset + len(stories)
        return schemas.ClusterPage(
            total=total,
            limit=size,
            offset=offset,
            next_offset=nxt if nxt < total and stories else None,
            items=[schemas.cluster_out(s) for s in stories],
        )

    @router.get("/clusters/{cluster_id}", response_model=schemas.ClusterDetailOut)
    def get_cluster(cluster_id: IdParam) -> schemas.ClusterDetailOut:
        """One story with every member and the evidence for each join; merged ids resolve."""
        return schemas.cluster_detail_out(svc.storage.cluster_detail(cluster_id))

    @router.get(
        "/search", response_model=list[schemas.SearchHitOut], response_model_exclude_none=True
    )
    def search(
        *,
        # Length and syntax are the parser's to judge: a one-line 400, as for every other
        # malformed query, not a validation error's list.
        q: Annotated[str, Query(description="The search query (at most 500 characters).")] = "",
        level: SearchLevel = SearchLevel.ARTICLES,
        since: WhenQuery = None,
        feed: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Feed id.")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> list[schemas.SearchHitOut]:
        """Full-text search: words, "phrases", -exclusions, OR, (groups); best match first."""
        try:
            start = parse_when(since, now=datetime.now(UTC))
        except ValueError as e:
            raise HTTPException(status_code=422, detail=str(e)) from e
        stories = level is SearchLevel.STORIES
        hits = reader.search(q, stories=stories, since=start, feed_id=feed, limit=limit)
        return [schemas.search_hit_out(h, stories=stories) for h in hits]

    @router.get("/articles/{article_id}", response_model=schemas.ArticleOut)
    def get_article(article_id: IdParam) -> schemas.ArticleOut:
        return schemas.article_out(svc.storage.get_article(article_id))

    @router.get("/feeds", response_model=list[schemas.FeedOut])
    def list_feeds() -> list[schemas.FeedOut]:
        """Subscribed feeds with their health."""
        flag = settings.schedule.flag_after_errors
        return [schemas.feed_out(f, flag_after_errors=flag) for f in svc.storage.list_feeds()]

    return router


def _feeds_router(settings: Settings, svc: Service) -> APIRouter:
    router = APIRouter(prefix="/feeds", tags=["feeds"])
    reader = svc.storage

    def newest(
        since: str | None, min_size: int, tag: list[str] | None, limit: int | None, min_sources: int
    ) -> list[PublishedStory]:
        flt = story_filter(since, None, min_size, tag, min_sources)
        return reader.published_stories(flt, limit=limit or settings.api.page_size)

    def meta(request: Request, name: str) -> FeedMeta:
        base = str(request.base_url).rstrip("/")
        return FeedMeta(
            feed_url=f"{base}/feeds/{name}", home_url=f"{base}/", story_url=f"{base}/stories/{{id}}"
        )

    @router.get("/stories.atom", response_class=Response)
    def atom(
        request: Request,
        *,
        since: WhenQuery = None,
        min_size: MinSizeQuery = 1,
        tag: TagQuery = None,
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        min_sources: MinSourcesQuery = 1,
    ) -> Response:
        """The deduplicated Atom feed: one entry per story, crediting every source."""
        stories = newest(since, min_size, tag, limit, min_sources)
        body = render_atom(stories, meta(request, "stories.atom"), now=datetime.now(UTC))
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @router.get("/stories.json", response_class=Response)
    def json_feed(
        request: Request,
        *,
        since: WhenQuery = None,
        min_size: MinSizeQuery = 1,
        tag: TagQuery = None,
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        min_sources: MinSourcesQuery = 1,
    ) -> Response:
        """The deduplicated JSON Feed 1.1."""
        stories = newest(since, min_size, tag, limit, min_sources)
        doc = render_json_feed(stories, meta(request, "stories.json"), now=datetime.now(UTC))
        body = json.dumps(doc, ensure_ascii=False).encode()
        return Response(body, media_type="application/feed+json; charset=utf-8")

    return router
