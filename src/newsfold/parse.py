"""Parse stage: bytes of a feed document → ``ParsedFeed``.

The only importer of feedparser; its untyped dicts end here. feedparser reads
RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and CDF (with its own encoding detection);
JSON Feed 1.0/1.1, which feedparser does not read, is handled here.

Owns: format detection, entry extraction, feed-level poll hints (<ttl>,
sy:updatePeriod). Does not own: HTML cleaning, URL canonicalisation (normalise).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import feedparser

from newsfold.encoding import better_decoding
from newsfold.errors import ParseError
from newsfold.types import ParsedFeed, RawEntry, declared_language

if TYPE_CHECKING:
    from collections.abc import Mapping

# feedparser sanitises and resolves URIs inside HTML; we only keep text and
# resolve links ourselves, so sanitising is work done twice (~3x slower).
_FEEDPARSER_OPTIONS: dict[str, Any] = {"sanitize_html": False, "resolve_relative_uris": False}

# sy:updatePeriod units → minutes (RSS 1.0 syndication module).
_SY_PERIOD_MINUTES = {
    "hourly": 60,
    "daily": 1440,
    "weekly": 10080,
    "monthly": 43200,
    "yearly": 525600,
}

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

# A DOCTYPE is the only way into entity expansion (billion laughs) and external
# entities (XXE: local files, network). Feeds never need one, so it is removed
# before feedparser sees the bytes; anything still declaring an entity after that
# (a DOCTYPE hidden by quoting tricks) is refused outright.
_DOCTYPE = re.compile(rb"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_ENTITY_DECL = re.compile(rb"<!(?:ENTITY|DOCTYPE)\b", re.IGNORECASE)
# Closing tags of RSS items / Atom entries: counted to cut a document with
# thousands of entries before feedparser spends minutes on entries we would drop.
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
# Entries beyond the cap are still counted, but only this many past it are parsed.
_CUT_SLACK = 16
# An entry's HTML beyond this is cut: no article is this long, and cleaning and
# sketching a multi-megabyte body costs ~50x its size in memory.
MAX_ENTRY_HTML = 1 << 20


def parse_feed(
    content: bytes,
    *,
    url: str,
    headers: Mapping[str, str] | None = None,
    max_entries: int | None = None,
) -> ParsedFeed:
    """Parse one feed document; raise ``ParseError`` when nothing usable is in it."""
    if not content.strip():
        raise ParseError("empty document")
    if _looks_like_json(content):
        return _parse_json_feed(content, max_entries=max_entries)
    return _parse_xml_feed(content, url=url, headers=headers, max_entries=max_entries)


def _looks_like_json(content: bytes) -> bool:
    head = content[:64]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    return head.lstrip()[:1] in (b"{", b"[")


def defuse_xml(content: bytes) -> tuple[bytes, str | None]:
    """Remove any DOCTYPE; return the bytes and a warning when one was removed.

    Raises ``ParseError`` when an entity declaration survives the removal.
    """
    if b"<!" not in content:
        return content, None
    stripped, count = _DOCTYPE.subn(b"", content)
    if _ENTITY_DECL.search(stripped):
        raise ParseError("refused: document declares XML entities (entity expansion / XXE risk)")
    return stripped, (
        "DOCTYPE removed (entities and external DTDs are not processed)" if count else None
    )


def cut_entries(content: bytes, max_entries: int | None) -> tuple[bytes, int | None]:
    """Cut the document after entry ``max_entries + slack``; return it and the entry count.

    The count is ``None`` when the document was not cut (feedparser counts then).
    """
    if not max_entries:
        return content, None
    ends = [m.end() for m in _ENTRY_END.finditer(content)]
    if len(ends) <= max_entries + _CUT_SLACK:
        return content, None
    cut_at, total = ends[max_entries + _CUT_SLACK - 1], len(ends)
    # The unclosed channel/feed makes the document ill-formed; feedparser's lenient
    # parser still returns the entries before the cut.
    return content[:cut_at], total


_XML_DECL = re.compile(rb"^\s*<\?xml\b[^>]*\?>", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""\bencoding\s*=\s*["']([\w.:-]+)["']""", re.IGNORECASE)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def redecode(content: bytes, headers: dict[str, str]) -> tuple[bytes, str | None]:
    """Re-encode a document as UTF-8 when its declared (or, undeclared, the default)
    encoding turns it into mojibake; returns the bytes and a warning when it did.

    ``headers`` (lower-case keys) get their charset set to UTF-8 to match.
    """
    if content.startswith(_BOMS) or content.isascii():
        return content, None
    declared = None
    header = _CHARSET.search(headers.get("content-type", ""))
    decl = _XML_DECL.match(content)
    if header:
        declared = header.group(1)
    elif decl:
        found = _XML_ENCODING.search(decl.group(0))
        declared = found.group(1).decode("ascii", "replace") if found else None
    better = better_decoding(content, declared)
    if better is None:
        return content, None
    text, encoding = better
    body = text.encode("utf-8")
    decl = _XML_DECL.match(body)
    body = b'<?xml version="1.0" encoding="utf-8"?>' + (body[decl.end() :] if decl else body)
    media = headers.get("content-type", "application/xml").split(";", 1)[0].strip()
    headers["content-type"] = f"{media or 'application/xml'}; charset=utf-8"
    said = f"declared {declared}" if declared else "declared nowhere"
    return body, f"encoding detected from the content: {encoding} ({said})"


def _parse_xml_feed(
    content: bytes, *, url: str, headers: Mapping[str, str] | None, max_entries: int | None
) -> ParsedFeed:
    content, defused = defuse_xml(content)
    content, counted = cut_entries(content, max_entries)
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.setdefault("content-location", url)
    content, redecoded = redecode(content, response_headers)
    try:
        d = feedparser.parse(content, response_headers=response_headers, **_FEEDPARSER_OPTIONS)
    except Exception as e:  # feedparser is lenient; anything it raises is a bug in the input
        raise ParseError(f"parser failed: {type(e).__name__}: {e}") from e
    feed = d.get("feed", {})
    entries = d.get("entries", [])
    # A cut document is ill-formed by construction: say why instead of the parser's complaint.
    bozo = _bozo_message(d) if d.get("bozo") and not counted else None
    cut = f"{counted} entries: only the first {max_entries} parsed" if counted else None
    warning = "; ".join(w for w in (defused, redecoded, cut, bozo) if w) or None
    if not d.get("version") and not entries:
        # What the document is not comes first; the parser's complaint about it (an
        # encoding override, a syntax error) is detail.
        detail = f"; {warning}" if warning else ""
        raise ParseError(f"not a feed: no RSS, Atom or JSON Feed content found{detail}")
    language = declared_language(feed.get("language"))
    raw = [_entry(e, language) for e in (entries[:max_entries] if max_entries else entries)]
    return ParsedFeed(
        format=str(d.get("version") or "unknown"),
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        entries=tuple(raw),
        ttl_minutes=_positive_int(feed.get("ttl")),
        update_period_minutes=_sy_minutes(feed),
        warning=warning,
        total_entries=max(counted or 0, len(entries)),
        language=language,
    )


def _bozo_message(d: Any) -> str:
    exc = d.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc is not None else "malformed document"


def _entry(e: Any, feed_language: str | None) -> RawEntry:
    content_html = None
    contents = e.get("content") or []
    # Prefer an HTML/XHTML body over plain text when a feed offers several.
    for c in sorted(contents, key=lambda c: "html" not in str(c.get("type", ""))):
        if c.get("value"):
            content_html = str(c["value"])[:MAX_ENTRY_HTML]
            break
    summary = e.get("summary")
    if summary and content_html and summary == content_html:
        summary = None  # feedparser copies the body into summary for some formats
    return RawEntry(
        guid=_text(e.get("id")),
        link=_text(e.get("link")),
        title=_text(e.get("title")),
        summary_html=_html(summary),
        content_html=content_html,
        author=_text(e.get("author")),
        published=_struct_to_utc(e.get("published_parsed")),
        # dict.get: FeedParserDict.get falls back from updated to published (deprecated).
        updated=_struct_to_utc(dict.get(e, "updated_parsed")),
        # An Atom entry's xml:lang (inherited from its feed's) is on its text constructs.
        language=_entry_language(e) or feed_language,
    )


def _entry_language(e: Any) -> str | None:
    for detail in (e.get("title_detail"), e.get("summary_detail"), *(e.get("content") or [])):
        if isinstance(detail, dict) and (found := declared_language(detail.get("language"))):
            return found
    return None


def _struct_to_utc(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        # feedparser's struct_time is already UTC; timegm avoids local time.
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _sy_minutes(feed: Any) -> int | None:
    period = _text(feed.get("sy_updateperiod"))
    if not period or period.lower() not in _SY_PERIOD_MINUTES:
        return None
    frequency = _positive_int(feed.get("sy_updatefrequency")) or 1
    return max(1, _SY_PERIOD_MINUTES[period.lower()] // frequency)


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 10**7 else None


def _html(value: Any) -> str | None:
    text = _text(value)
    return text[:MAX_ENTRY_HTML] if text else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


# --- JSON Feed (https://www.jsonfeed.org/version/1.1/) ---------------------------


def _parse_json_feed(content: bytes, *, max_entries: int | None) -> ParsedFeed:
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ParseError(f"invalid JSON: {e}") from e
    if not isinstance(data, dict) or "jsonfeed.org/version" not in str(data.get("version", "")):
        raise ParseError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items list")
    version = str(data["version"]).rstrip("/").rsplit("/", 1)[-1]
    dicts = [item for item in items if isinstance(item, dict)]
    raw = [_json_item(item, data) for item in (dicts[:max_entries] if max_entries else dicts)]
    return ParsedFeed(
        format="json" + version.replace(".", ""),
        title=_str(data.get("title")),
        link=_str(data.get("home_page_url")),
        entries=tuple(raw),
        total_entries=len(dicts),
        language=declared_language(_str(data.get("language"))),
    )


def _str(value: Any) -> str | None:
    """A JSON Feed string field; wrong types are ignored, as the spec's readers do."""
    return _text(value) if isinstance(value, str) else None


def _json_item(item: dict[str, Any], feed: dict[str, Any]) -> RawEntry:
    content_html = _str(item.get("content_html"))
    if content_html is None and _str(item.get("content_text")):
        content_html = _plain_to_html(str(item["content_text"])[:MAX_ENTRY_HTML])
    content_html = content_html[:MAX_ENTRY_HTML] if content_html else None
    raw_id = item.get("id")
    # Ids must be strings, but numbers are common in the wild and still unique.
    guid = _text(raw_id) if isinstance(raw_id, str | int | float) and raw_id is not True else None
    return RawEntry(
        guid=guid,
        link=_str(item.get("url")) or _str(item.get("external_url")),
        title=_str(item.get("title")),
        summary_html=_html(_str(item.get("summary"))),
        content_html=content_html,
        author=_json_author(item) or _json_author(feed),
        published=_iso_to_utc(item.get("date_published")),
        updated=_iso_to_utc(item.get("date_modified")),
        language=declared_language(_str(item.get("language")) or _str(feed.get("language"))),
    )


def _json_author(obj: dict[str, Any]) -> str | None:
    # 1.1 has "authors" (a list); 1.0 had "author" (an object).
    authors = obj.get("authors")
    if isinstance(authors, list) and authors and isinstance(authors[0], dict):
        return _str(authors[0].get("name"))
    author = obj.get("author")
    return _str(author.get("name")) if isinstance(author, dict) else None


def _iso_to_utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # RFC 3339 requires an offset; assume UTC
    return parsed.astimezone(UTC)


def _plain_to_html(text: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(p)}</p>" for p in text.split("\n") if p.strip())
