"""Tell an HTML page from a feed, and find the feeds an HTML page links to.

Owns: sniffing fetched bytes (``looks_like_html``) and feed autodiscovery from
``<link rel="alternate" type="application/rss+xml" href="…">`` (the RSS
autodiscovery convention, also used for Atom and JSON Feed). Does not fetch
anything: ``fetch.py`` calls this on bytes it already holds.

Content types are checked leniently because feeds are often mislabelled
(``text/html`` for RSS is common): the document's first element decides, and
the header only breaks ties when the bytes are inconclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

# How much of the body to sniff: the root element of any real document appears
# well within this, after an XML declaration, comments and a doctype.
_SNIFF_BYTES = 4096

# Skips the prolog (XML declaration, processing instructions, comments, a
# doctype, with or without an internal subset) and captures the first element.
_FIRST_ELEMENT = re.compile(
    r"""\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>|<![^>]*>)*"""
    r"""<([A-Za-z_][\w:.-]*)""",
    re.DOTALL | re.IGNORECASE,
)
# Local names (any namespace prefix dropped) of feed and page root elements.
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_HTML_ROOTS = frozenset({"html", "head", "body", "meta", "title", "div", "script", "link"})
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_MARKERS = re.compile(r"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
_FEED_MARKERS = re.compile(r"<(?:[\w.-]+:)?(?:rss|feed|RDF)[\s>]")

# MIME types that mark a ``<link rel="alternate">`` as a feed, and the short
# name we report for each.
_FEED_TYPES = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    # JSON Feed's own type only: WordPress pages carry a rel="alternate"
    # "application/json" link to their REST API, which is not a feed.
    "application/feed+json": "json",
    "application/rdf+xml": "rdf",
    "application/xml": "xml",
    "text/xml": "xml",
}


@dataclass(frozen=True, slots=True)
class DiscoveredFeed:
    """A feed an HTML page advertises."""

    url: str  # absolute
    title: str | None
    type: str  # "rss" | "atom" | "json" | "rdf" | "xml"


def _sniff_text(content: bytes) -> str:
    """Just enough of the body, as text, to read its markup whatever the encoding."""
    head = content[:_SNIFF_BYTES]
    if b"\x00" in head[:64]:
        # UTF-16/32 (with or without a BOM): markup is ASCII, so dropping the
        # zero bytes leaves readable tags; the BOM's remains are stripped below.
        head = head.replace(b"\x00", b"")
    return head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf\xfe\xff \t\r\n")


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    """True when ``content`` is a web page rather than a feed.

    The document wins over the header: RSS served as ``text/html`` is a feed,
    and an HTML page served as ``application/rss+xml`` is a page. The header
    only decides when the first element is neither (a fragment, plain text).
    """
    text = _sniff_text(content)
    if text.startswith(("{", "[")):
        return False  # JSON Feed (or JSON of some kind): never an HTML page
    match = _FIRST_ELEMENT.match(text)
    if match:
        root = match.group(1).lower().rpartition(":")[2]
        if root in _FEED_ROOTS:
            return False
        if root in _HTML_ROOTS:
            return True
    if _FEED_MARKERS.search(text):
        return False  # a feed root further in (after a long comment, say)
    if _HTML_MARKERS.search(text):
        return True
    if match is None or text.startswith("<?xml"):
        # Nothing recognisable, or XML of another kind: not a page; the parser
        # will say what is wrong with it.
        return False
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in _HTML_TYPES


def _rel_tokens(value: str | None) -> set[str]:
    return {t.lower() for t in (value or "").split()}


def discover_feeds(html: bytes | str, base_url: str) -> list[DiscoveredFeed]:
    """Feeds advertised by ``<link rel="alternate">`` (or ``rel="feed"``), in page order.

    Relative ``href``s are resolved against ``<base href>`` when present, else
    ``base_url``. Duplicates and non-http(s) links are dropped.
    """
    tree = LexborHTMLParser(html if isinstance(html, str) else html.decode("utf-8", "replace"))
    base = base_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        href = base_node.attributes.get("href")
        if href:
            base = urljoin(base_url, href.strip())
    found: list[DiscoveredFeed] = []
    seen: set[str] = set()
    for node in tree.css("link[href]"):
        attrs = node.attributes
        rel = _rel_tokens(attrs.get("rel"))
        mime = (attrs.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel and mime in _FEED_TYPES:
            kind = _FEED_TYPES[mime]
        elif "feed" in rel and "alternate" not in rel:
            kind = _FEED_TYPES.get(mime, "xml")
        else:
            continue
        href = (attrs.get("href") or "").strip()
        if not href:
            continue
        url = urljoin(base, href)
        if urlsplit(url).scheme not in ("http", "https") or url in seen:
            continue
        seen.add(url)
        title = (attrs.get("title") or "").strip() or None
        found.append(DiscoveredFeed(url=url, title=title, type=kind))
    return found


__all__ = ["DiscoveredFeed", "discover_feeds", "looks_like_html"]
