"""Which report stands for a story, and the title it is shown under.

One rule for the CLI, the JSON API, the web page and the output feeds: a story's
representative is its earliest-published report, a tie going to the lower article
id. Its title is the story's title; a report without one (feeds may omit it) is
shown under the opening words of its text instead of a blank, and one without text
either (a bare link post) under its URL's host and path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

DERIVED_TITLE_CHARS = 90


class Report(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def published(self) -> datetime: ...


R = TypeVar("R", bound=Report)


def representative_key(published: datetime, article_id: int) -> tuple[datetime, int]:
    """Sort key under which the representative comes first."""
    return (published, article_id)


def representative(reports: Iterable[R]) -> R:
    """The earliest-published report; a tie goes to the lower id."""
    return min(reports, key=lambda r: representative_key(r.published, r.id))


def display_title(title: str | None, text: str | None, url: str | None = None) -> str:
    """The title, or the opening words of the text (cut at a word) when there is none,
    or the URL's host and path when there is no text either."""
    if title and title.strip():
        return " ".join(title.split())
    words = " ".join((text or "").split())
    if not words:
        return _url_title(url) or "(untitled)"
    first_line = words
    for stop in (". ", "? ", "! "):
        head, found, _ = words.partition(stop)
        if found and len(head) + 1 < len(first_line):
            first_line = head + stop.strip()
    if len(first_line) <= DERIVED_TITLE_CHARS:
        return first_line
    cut = first_line[:DERIVED_TITLE_CHARS].rsplit(" ", 1)[0] or first_line[:DERIVED_TITLE_CHARS]
    return cut.rstrip(",;:") + "…"


def _url_title(url: str | None) -> str | None:
    """``www.example.org/news/2026/dam-gates/?id=3`` → ``example.org/news/2026/dam-gates``."""
    try:
        parts = urlsplit((url or "").strip())
    except ValueError:
        return None
    host = (parts.hostname or "").removeprefix("www.")
    if not host:
        return None
    where = host + parts.path.rstrip("/")
    if len(where) <= DERIVED_TITLE_CHARS:
        return where
    return where[: DERIVED_TITLE_CHARS - 1] + "…"


__all__ = ["DERIVED_TITLE_CHARS", "display_title", "representative", "representative_key"]
