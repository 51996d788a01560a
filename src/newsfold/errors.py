"""The one exception hierarchy of newsfold.

    NewsfoldError
    ├── ConfigError          bad settings file, unknown key, bad value
    ├── FetchError           one feed could not be fetched (carries url, kind, status)
    │   ├── BlockedURLError  refused before any request (scheme, private address)
    │   ├── InvalidURLError  not an http(s) URL at all: nothing to subscribe to
    │   └── HTMLPageError    a web page, not a feed (carries the feeds it links to)
    ├── ParseError           the bytes are not a feed we can read
    ├── StorageError         the database failed or refused
    │   └── FeedExistsError  a feed is already subscribed at that URL
    ├── NotFoundError        a feed/article/cluster id or url that does not exist
    └── DatasetError         a labelled evaluation file we cannot read

``HTMLPageError`` lives in ``fetch.client`` and ``DatasetError`` in ``evaluation.datasets``,
beside the code that raises them.

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
        size: int = 0,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s
        # Seconds the request queued for its turn (politeness, concurrency) before it failed.
        self.wait_s = 0.0
        self.size = size  # bytes of the answer, when one came and was refused

    @property
    def message(self) -> str:
        return str(self.args[0])


class BlockedURLError(FetchError):
    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message, url=url, kind=ErrorKind.PERMANENT)


class InvalidURLError(FetchError):
    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message, url=url, kind=ErrorKind.PERMANENT)


class ParseError(NewsfoldError):
    def __init__(self, message: str, *, kind: ErrorKind = ErrorKind.PERMANENT) -> None:
        super().__init__(message)
        self.kind = kind


class StorageError(NewsfoldError):
    pass


class FeedExistsError(StorageError):
    def __init__(self, url: str) -> None:
        super().__init__(f"already subscribed: {url}")
        self.url = url


class NotFoundError(NewsfoldError):
    pass


__all__ = [
    "BlockedURLError",
    "ConfigError",
    "FeedExistsError",
    "FetchError",
    "InvalidURLError",
    "NewsfoldError",
    "NotFoundError",
    "ParseError",
    "StorageError",
]
