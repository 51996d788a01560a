"""Access to ``newsfold serve`` when ``api.token`` is set: every route but the health probe.

Any one of these lets a request in:

* ``Authorization: Bearer <api.token>`` (scripts, the JSON API);
* HTTP basic auth (RFC 7617) with ``api.token`` as password and any user name. Every browser
  asks for it when a page answers 401 with ``WWW-Authenticate: Basic``, and most feed
  readers can send it (``https://reader:TOKEN@host/feeds/stories.atom``);
* ``?token=<api.feed_token>`` on ``/feeds/*`` only: a second secret, good for nothing but
  the read-only output feeds, for readers that can send no header at all.

The gate is ASGI middleware in front of the whole app, not a dependency per router, so a
route added later (and FastAPI's own ``/docs`` and ``/openapi.json``) is closed by default.
Tokens are compared in constant time and never logged: the ``token`` parameter is taken
out of the query the app sees, and masked in the access log (``access.py``, and uvicorn's).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/healthz"})  # container health checks carry no credentials
FEED_PREFIX = "/feeds/"
FEED_TOKEN_PARAM = "token"
REALM = "newsfold"
_TOKEN_IN_QUERY = re.compile(rf"(?<=[?&]){FEED_TOKEN_PARAM}=[^&\s\"]*")


class TokenGate:
    """ASGI middleware: 401 unless the request carries the token (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, token: str, feed_token: str | None = None) -> None:
        self.app = app
        self._token = token.encode()
        self._feed_token = feed_token.encode() if feed_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: no request to check
            await self.app(scope, receive, send)
            return
        path = _app_path(scope)
        query, given = split_feed_token(scope.get("query_string", b""))
        if given is not None:  # the app (and anything it echoes) never sees the token
            scope = {**scope, "query_string": query}
        if path in PUBLIC_PATHS or self._allows(path, scope, given):
            await self.app(scope, receive, send)
            return
        await _refuse(path, send)

    def _allows(self, path: str, scope: Scope, query_token: bytes | None) -> bool:
        given = presented_credential(scope.get("headers", ()))
        # compare_digest: the answer must not leak how much of a guess was right.
        if given is not None and hmac.compare_digest(given, self._token):
            return True
        return (
            path.startswith(FEED_PREFIX)
            and self._feed_token is not None
            and query_token is not None
            and hmac.compare_digest(query_token, self._feed_token)
        )


def presented_credential(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The bearer token, or the password of basic auth, from the request headers."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, rest = value.strip().partition(b" ")
        rest = rest.strip()
        if scheme.lower() == b"bearer":
            return rest or None
        if scheme.lower() == b"basic":
            try:
                decoded = base64.b64decode(rest, validate=True)
            except (binascii.Error, ValueError):
                return None
            _user, colon, password = decoded.partition(b":")
            return password if colon else None
    return None


def split_feed_token(query: bytes) -> tuple[bytes, bytes | None]:
    """(the query without its ``token`` parameter, the token's value or None)."""
    if not query:
        return query, None
    keep: list[bytes] = []
    given: bytes | None = None
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == FEED_TOKEN_PARAM.encode():
            given = unquote_to_bytes(value.replace(b"+", b" "))
        else:
            keep.append(part)
    return b"&".join(keep), given


def mask_feed_token(query: bytes) -> bytes:
    """The query with the value of every ``token`` parameter replaced by ``***``."""
    if not query:
        return query
    parts = []
    for part in query.split(b"&"):
        key, eq, _value = part.partition(b"=")
        secret = unquote_to_bytes(key.replace(b"+", b" ")) == FEED_TOKEN_PARAM.encode()
        parts.append(key + eq + b"***" if secret and eq else part)
    return b"&".join(parts)


def _app_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _refuse(path: str, send: Send) -> None:
    if path.startswith("/api/"):
        challenge, message = "Bearer", "missing or wrong bearer token"
    else:
        # Basic: the challenge browsers and feed readers answer with a password prompt.
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'
        message = "this server wants its token: basic auth, any user name, the token as password"
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RedactFeedToken(logging.Filter):
    """Masks ``token=...`` in a log line's URL (uvicorn's access log prints the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(f"{FEED_TOKEN_PARAM}=***", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(f"{FEED_TOKEN_PARAM}=***", record.msg)
        return True


def redact_access_log() -> None:
    """Put ``RedactFeedToken`` on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactFeedToken) for f in access.filters):
        access.addFilter(RedactFeedToken())


_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "api.token"},
    "basic": {"type": "http", "scheme": "basic", "description": "any user, api.token as password"},
    "feed_token": {
        "type": "apiKey",
        "in": "query",
        "name": FEED_TOKEN_PARAM,
        "description": "api.feed_token (output feeds only)",
    },
}


def describe_security(app: FastAPI) -> None:
    """Name the schemes in the OpenAPI document, so /docs offers to send them."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()  # also cached as app.openapi_schema: edited in place
        schema.setdefault("components", {})["securitySchemes"] = _SCHEMES
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            needs: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]
            if path.startswith(FEED_PREFIX):
                needs.append({"feed_token": []})
            for operation in operations.values():
                operation["security"] = needs
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
