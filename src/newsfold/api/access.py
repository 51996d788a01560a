"""The access log of ``newsfold serve``: one line a request, through the project's logging.

ASGI middleware outside everything else (the token gate included), so a refused request
is logged too. The line holds the method, the path with its query (a ``token`` parameter
masked, see ``auth.mask_feed_token``), the status and the time to the last byte of the
answer. ``api.access_log = false`` (or ``serve --no-access-log``) leaves it out.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from newsfold.api.auth import PUBLIC_PATHS, mask_feed_token

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("newsfold.access")


class AccessLog:
    """ASGI middleware: log each HTTP request once its answer is sent (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts one

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = round((time.perf_counter() - t0) * 1000)
            # The health probe asks every few seconds (container health checks): debug only.
            level = logging.DEBUG if scope["path"] in PUBLIC_PATHS else logging.INFO
            log.log(
                level,
                "%s %s",
                scope["method"],
                request_target(scope),
                extra={"event": "access", "status": status, "duration_ms": ms},
            )


def request_target(scope: Scope) -> str:
    """The path and query as the client sent them (still percent-encoded, so a line break
    or a control character in a path cannot forge a log line), the token masked."""
    raw = scope.get("raw_path")
    path = raw.decode("ascii", "backslashreplace") if raw else scope["path"]
    query = mask_feed_token(scope.get("query_string", b""))
    return f"{path}?{query.decode('ascii', 'backslashreplace')}" if query else path
