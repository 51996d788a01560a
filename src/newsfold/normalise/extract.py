"""The report behind ``newsfold extract URL|FILE``: what the normaliser makes of a
document, for users tuning their feeds.

A feed gives one report per entry; an HTML page gives one report (full-text
mode's view of it). Boilerplate learned across the feed's own entries is shown
too, as the service would learn it over time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from newsfold.normalise.boilerplate import BoilerplateModel
from newsfold.normalise.dates import iso_utc
from newsfold.normalise.entry import normalise_entry
from newsfold.normalise.page import extract_page
from newsfold.types import FeedSource, RawEntry

if TYPE_CHECKING:
    from newsfold.config import NormaliseSettings
    from newsfold.normalise.page import PageExtract
    from newsfold.types import Article

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_FEED_ROOTS = (b"<rss", b"<feed", b"<rdf:rdf", b"<channel")


def looks_like_feed(data: bytes) -> bool:
    """RSS/Atom/RDF or JSON Feed, as opposed to an HTML page."""
    head = data[:4096]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.lstrip()
    if head[:1] in (b"{", b"["):
        return True
    lowered = head.lower()
    html_at = lowered.find(b"<html")
    roots = [i for i in (lowered.find(root) for root in _FEED_ROOTS) if i >= 0]
    return bool(roots) and (html_at < 0 or min(roots) < html_at)


def _report(article: Article, *, kind: str, page: PageExtract | None = None) -> dict[str, object]:
    report: dict[str, object] = {
        "kind": kind,
        "title": article.title,
        "canonical_url": article.url,
        "published": iso_utc(article.published),
        "date_source": str(article.date_source),
        "updated": iso_utc(article.updated) if article.updated else None,
        "language": article.language,
        "entry_key": article.entry_key,
        "summary": article.summary,
        "rules_fired": list(article.rules_fired),
        "words": len(article.text.split()),
    }
    if page is not None:
        report["extractor"] = page.extractor
        report["amp"] = page.is_amp
    report["text"] = article.text
    report["comparison_text"] = article.comparison_text
    return report


def extract_report(
    data: bytes,
    url: str | None,
    settings: NormaliseSettings,
    *,
    now: datetime | None = None,
) -> list[dict[str, object]]:
    """One dict per feed entry (or one for a page): title, canonical_url, published
    (ISO UTC), date_source, language, text, rules_fired and a few more."""
    fetched_at = now or datetime.now(UTC)
    if looks_like_feed(data):
        # Only feeds need the parser (and feedparser behind it).
        from newsfold.parse import parse_feed

        parsed = parse_feed(data, url=url or "")
        feed = FeedSource(id=0, url=url or "", title=parsed.title, site_url=parsed.link)
        model = BoilerplateModel.from_settings(settings)
        # First pass teaches the model the feed's recurring lines; the second uses it.
        for entry in parsed.entries:
            normalise_entry(
                entry,
                feed,
                fetched_at=fetched_at,
                settings=settings,
                boilerplate=model,
                observe=True,
            )
        return [
            _report(
                normalise_entry(
                    entry, feed, fetched_at=fetched_at, settings=settings, boilerplate=model
                ),
                kind="entry",
            )
            for entry in parsed.entries
        ]
    page = extract_page(data, url or "")
    entry = RawEntry(
        guid=None,
        link=page.url or url,
        title=page.title,
        published=page.published,
        updated=page.updated,
    )
    feed = FeedSource(id=0, url=url or "", title=page.site_name, site_url=page.url or url)
    article = normalise_entry(entry, feed, fetched_at=fetched_at, settings=settings, page=page)
    return [_report(article, kind="page", page=page)]


__all__ = ["extract_report", "looks_like_feed"]
