"""The one exception hierarchy of newsfold.

    NewsfoldError
    ├── ConfigError          bad settings file, unknown key, bad value
    ├── FetchError           one feed could not be fetched (carries url, kind, status)
    │   └── BlockedURLError  refused before any request (scheme, private address)
    ├── ParseError           the bytes are not a feed we can read
    ├── StorageError         the database failed or refused
    └── NotFoundError        a feed/article/cluster id or url that does not exist

Third-party exceptions are wrapped where they enter (``raise … from e``) so
callers handle only these. A 304 is a result, never an exception.
"""

from __future__ import annotations

from newsfold.types import ErrorKind


class NewsfoldError(Exception):
    """Root of every error newsfold raises on purpose."""


class ConfigError(NewsfoldError):
    pass


class FetchError(NewsfoldError):
    def __init__(
        self,
        message: str,
        *,
        url: str,
        kind: ErrorKind = ErrorKind.TRANSIENT,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def message(self) -> str:
        return str(self.args[0])


class BlockedURLError(FetchError):
    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message, url=url, kind=ErrorKind.PERMANENT)


class ParseError(NewsfoldError):
    def __init__(self, message: str, *, kind: ErrorKind = ErrorKind.PERMANENT) -> None:
        super().__init__(message)
        self.kind = kind


class StorageError(NewsfoldError):
    pass


class NotFoundError(NewsfoldError):
    pass


__all__ = [
    "BlockedURLError",
    "ConfigError",
    "FetchError",
    "NewsfoldError",
    "NotFoundError",
    "ParseError",
    "StorageError",
]
