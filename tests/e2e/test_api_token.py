"""``api.token`` closes the whole server: every route the app has, bar /healthz.

The routes are read from ``app.routes``, so a route added later is checked without
editing this file. Each is requested without credentials, with a wrong token, with the
bearer token and with basic auth; the output feeds also with the read-only feed token.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import socket
import threading
import time
from typing import TYPE_CHECKING

import feedparser
import httpx
import pytest
import uvicorn
from fastapi.routing import iter_route_contexts

from newsfold.api.app import create_app
from newsfold.api.auth import PUBLIC_PATHS, presented_credential, split_feed_token
from newsfold.config import Settings, load_settings
from newsfold.errors import ConfigError
from tests.e2e.test_api import Seeded, seed, seeded, serve_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

__all__ = ["seed", "seeded"]
TOKEN = "s3cret-tøken"  # not ASCII: basic auth passwords arrive as UTF-8
FEED_TOKEN = "feed-only-7f3a"
# Routes that must exist (a sanity floor for the enumeration, not the list checked).
KNOWN = {
    "/",
    "/stories/{story_id}",
    "/api/clusters",
    "/api/clusters/{cluster_id}",
    "/api/articles/{article_id}",
    "/api/feeds",
    "/feeds/stories.atom",
    "/feeds/stories.json",
    "/docs",
    "/openapi.json",
    "/healthz",
    "/search",
    "/api/search",
}
# Routes whose answer needs a query: the token test asks each one a valid question.
QUERIES = {"/search": "?q=report", "/api/search": "?q=report"}


def _with_tokens(settings: Settings, **api: str | None) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def _basic(password: str, user: str = "reader") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _bearer(token: str) -> dict[str, bytes]:
    return {"Authorization": f"Bearer {token}".encode()}


def _paths(app: FastAPI, seeded: Seeded) -> dict[str, str]:
    """Every route's template → a concrete GET path (ids point at the seeded story)."""
    out: dict[str, str] = {}
    # iter_route_contexts walks included routers too: app.routes holds them unexpanded.
    for route in iter_route_contexts(app.routes):
        assert route.path, route  # a mount or a websocket would need its own check here
        assert route.methods is not None, route.path
        assert "GET" in route.methods, route.path  # the app is read-only
        path = re.sub(r"\{[^}]+\}", str(seeded.story_id), route.path)
        out[route.path] = path + QUERIES.get(route.path, "")
    return out


@pytest.fixture(scope="module")
def closed(seeded: Seeded) -> Iterator[tuple[FastAPI, httpx.Client]]:
    settings = _with_tokens(seeded.settings, token=TOKEN, feed_token=FEED_TOKEN)
    app = create_app(settings, service=seeded.service)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield app, client


def test_every_route_but_healthz_wants_the_token(
    closed: tuple[FastAPI, httpx.Client], seeded: Seeded
) -> None:
    app, client = closed
    paths = _paths(app, seeded)
    assert set(paths) >= KNOWN, sorted(KNOWN - set(paths))
    bearer = _bearer(TOKEN)
    for template, path in paths.items():
        if template in PUBLIC_PATHS:
            assert client.get(path).status_code == 200, path
            continue
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            _bearer(TOKEN[:-1]),
            _basic("wrong"),
            {"Authorization": f"Basic {TOKEN}".encode()},  # not base64
        ):
            refused = client.get(path, headers=headers)
            assert refused.status_code == 401, (path, headers)
            assert TOKEN not in refused.text
        for headers in (bearer, _basic(TOKEN), _basic(TOKEN, user="")):
            reply = client.get(path, headers=headers)
            assert reply.status_code == 200, (path, headers, reply.text[:200])


def test_without_a_token_everything_stays_open(seeded: Seeded) -> None:
    app = create_app(_with_tokens(seeded.settings, token=None), service=seeded.service)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for path in _paths(app, seeded).values():
            assert client.get(path).status_code == 200, path


def test_browsers_get_a_basic_auth_prompt(closed: tuple[FastAPI, httpx.Client]) -> None:
    _app, client = closed
    for path in ("/", "/feeds/stories.atom", "/docs", "/openapi.json"):
        challenge = client.get(path).headers["www-authenticate"]
        assert challenge.startswith('Basic realm="newsfold"'), path
    # Scripts on /api/* are told to send a bearer token.
    assert client.get("/api/clusters").headers["www-authenticate"] == "Bearer"
    # What a browser sends once the user typed the token into the prompt.
    page = client.get("/", auth=("anyone", TOKEN))
    assert page.status_code == 200
    assert "Russia and Syria launch" in page.text


def test_feed_token_opens_the_feeds_only(
    closed: tuple[FastAPI, httpx.Client], seeded: Seeded
) -> None:
    _app, client = closed
    atom = client.get("/feeds/stories.atom", params={"token": FEED_TOKEN, "min_size": 2})
    assert atom.status_code == 200
    parsed = feedparser.parse(atom.content)
    # The other parameters still apply once the token is taken out of the query.
    assert [e.id for e in parsed.entries] == [f"urn:newsfold:story:{seeded.story_id}"]
    assert FEED_TOKEN not in atom.text  # no self link carries it on to others
    assert client.get("/feeds/stories.json", params={"token": FEED_TOKEN}).status_code == 200
    # Read-only and for the feeds alone: the pages and the API stay closed to it.
    for path in ("/", f"/stories/{seeded.story_id}", "/api/clusters", "/openapi.json"):
        assert client.get(path, params={"token": FEED_TOKEN}).status_code == 401, path
    # The main token never works in a URL (URLs end up in histories and proxy logs).
    assert client.get("/feeds/stories.atom", params={"token": TOKEN}).status_code == 401
    assert client.get("/feeds/stories.atom", params={"token": ""}).status_code == 401
    assert client.get("/feeds/stories.atom", headers=_basic(FEED_TOKEN)).status_code == 401


def test_openapi_names_the_schemes(closed: tuple[FastAPI, httpx.Client]) -> None:
    _app, client = closed
    doc = client.get("/openapi.json", headers=_bearer(TOKEN)).json()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "basic", "feed_token"}
    assert {"feed_token": []} in doc["paths"]["/feeds/stories.atom"]["get"]["security"]
    assert {"feed_token": []} not in doc["paths"]["/api/clusters"]["get"]["security"]
    assert "security" not in doc["paths"]["/healthz"]["get"]


@contextlib.contextmanager
def _serve_logged(app: FastAPI) -> Iterator[tuple[str, list[str]]]:
    """Like ``serve_app``, with uvicorn's access log on and collected."""
    from newsfold.api.auth import redact_access_log

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    redact_access_log()  # as `newsfold serve` does, before uvicorn configures its loggers
    config = uvicorn.Config(app, log_level="info", access_log=True, lifespan="on")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", lines
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        access.removeHandler(handler)


def test_tokens_never_reach_the_access_log(seeded: Seeded) -> None:
    settings = _with_tokens(seeded.settings, token=TOKEN, feed_token=FEED_TOKEN)
    with (
        _serve_logged(create_app(settings, service=seeded.service)) as (base, lines),
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        assert client.get(f"/feeds/stories.atom?min_size=2&token={FEED_TOKEN}").status_code == 200
        assert client.get(f"/feeds/stories.json?token={FEED_TOKEN}x").status_code == 401
        assert client.get("/", headers=_bearer(TOKEN)).status_code == 200
        deadline = time.monotonic() + 5
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(lines) == 3, lines
    assert not [ln for ln in lines if FEED_TOKEN in ln or TOKEN in ln], lines
    assert "/feeds/stories.atom?min_size=2&token=***" in lines[0]


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer   abc ", b"abc"),
        (b"Basic " + base64.b64encode(b"u:p:w"), b"p:w"),  # RFC 7617: the first colon splits
        (b"Basic " + base64.b64encode(b":tok"), b"tok"),
        (b"Basic " + base64.b64encode(b"no-colon"), None),
        (b"Basic not*base64", None),
        (b"Bearer", None),
        (b"Digest abc", None),
    ],
)
def test_presented_credential(header: bytes, credential: bytes | None) -> None:
    assert presented_credential([(b"authorization", header)]) == credential


@pytest.mark.parametrize(
    ("query", "rest", "token"),
    [
        (b"", b"", None),
        (b"min_size=2", b"min_size=2", None),
        (b"token=abc", b"", b"abc"),
        (b"min_size=2&token=a%2Bb+c&tag=x", b"min_size=2&tag=x", b"a+b c"),
        (b"to%6Ben=abc", b"", b"abc"),  # an encoded name is the same parameter
        (b"tokens=abc", b"tokens=abc", None),
    ],
)
def test_split_feed_token(query: bytes, rest: bytes, token: bytes | None) -> None:
    assert split_feed_token(query) == (rest, token)


@pytest.mark.parametrize(
    ("api", "problem"),
    [
        ({"feed_token": "x"}, "api.feed_token needs api.token"),
        ({"token": "same", "feed_token": "same"}, "must differ from api.token"),
    ],
)
def test_feed_token_settings_are_checked(api: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(None, read_file=False, api=api)


def test_a_blank_token_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # What Compose passes for an unset ${NEWSFOLD_API_TOKEN:-}.
    monkeypatch.setenv("NEWSFOLD_API__TOKEN", "")
    monkeypatch.setenv("NEWSFOLD_API__FEED_TOKEN", "  ")
    api = load_settings(None, read_file=False).api
    assert api.token is None
    assert api.feed_token is None
