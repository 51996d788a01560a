"""Full-text mode: what an article page says about itself.

Metadata (canonical address, title, dates, deck, site name) comes from the page
head and JSON-LD through selectolax; the main text from trafilatura after the
structural boilerplate and the deck are removed. Only fetched pages come here:
trafilatura costs milliseconds, far too much for the feed path.

The canonical address is the page's ``rel=canonical`` or ``og:url`` when it is on
the same site (a page cannot claim another site's article); an AMP page is
followed to its canonical, and AMP-cache addresses to the publisher's.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsfold.encoding import better_decoding
from newsfold.normalise.dates import parse_date
from newsfold.normalise.html import (
    inline_text,
    normalise_text,
    parse_html,
    strip_structural,
    tree_text,
)
from newsfold.normalise.urls import canonical_url, same_site

if TYPE_CHECKING:
    from datetime import datetime

    from selectolax.lexbor import LexborHTMLParser

log = logging.getLogger(__name__)

# Past this size trafilatura's tree building dominates; the plain fallback is linear.
MAX_EXTRACTOR_CHARS = 2_000_000
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_DECK_SELECTOR = (
    ".deck,.dek,.standfirst,.subtitle,.sub-title,.subheadline,.article-summary,"
    ".article__summary,.article-dek,.excerpt,.summary,[itemprop=description]"
)
_PUBLISHED_META = (
    'meta[property="article:published_time"]',
    'meta[property="og:published_time"]',
    'meta[itemprop="datePublished"]',
    'meta[name="pubdate"]',
    'meta[name="publishdate"]',
    'meta[name="parsely-pub-date"]',
    'meta[name="sailthru.date"]',
    'meta[name="dc.date.issued"]',
    'meta[name="DC.date.issued"]',
    'meta[name="date"]',
)
_UPDATED_META = ('meta[property="article:modified_time"]', 'meta[itemprop="dateModified"]')
_AMP_PATH = re.compile(r"/amp/?$|/amp(?=/)")
_AMP_QUERY = re.compile(r"(?:^|&)(?:amp|outputType=amp|amp=1|amp=true)(?=&|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageExtract:
    """What one fetched article page says about itself."""

    url: str | None  # canonical address (same-site rel=canonical / og:url, AMP followed)
    title: str | None
    text: str  # main text, one paragraph per line; "" when nothing was found
    published: datetime | None = None
    updated: datetime | None = None
    description: str | None = None  # deck / og:description
    site_name: str | None = None
    lang: str | None = None  # <html lang>, as declared
    is_amp: bool = False
    # "trafilatura", "fallback" when it found nothing, or "fallback (extractor unavailable)"
    extractor: str = "trafilatura"


@functools.cache
def extractor_problem() -> str | None:
    """Why the main-text extractor cannot run in this installation, or ``None``.

    A broken install (an optional dependency of trafilatura's missing) must be said,
    not hidden behind the plain fallback: the daemon logs it at start, ``/readyz``
    and ``newsfold extract`` show it, and the first page that needs it logs it once.
    """
    try:
        import trafilatura  # heavy: full-text mode only

        trafilatura.extract("<html><body><article><p>newsfold</p></article></body></html>")
    except Exception as e:  # an import chain can fail with anything; the message is the point
        return f"trafilatura cannot run: {type(e).__name__}: {e}"
    return None


_reported = threading.Event()


def unreported_extractor_problem() -> str | None:
    """The extractor's problem the first time it is asked for, then ``None``: whoever
    gets it says it (a log line, a CLI warning), and nobody says it again."""
    problem = extractor_problem()
    if problem is None or _reported.is_set():
        return None
    with _report_lock:
        if _reported.is_set():
            return None
        _reported.set()
    return problem


_report_lock = threading.Lock()


def decode_html(data: bytes) -> str:
    """Bytes → str: BOM, then <meta charset>, then UTF-8, then Windows-1252 unless that
    reads as mojibake and another encoding detected from the content reads cleaner."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    match = _CHARSET.search(data[:4096])
    if match:
        name = match.group(1).decode("ascii", "replace").lower()
        # Pages labelled Latin-1 are cp1252 in practice (WHATWG Encoding standard).
        name = "cp1252" if name in {"iso-8859-1", "latin-1", "latin1", "us-ascii"} else name
        try:
            return data.decode(name, "replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        better = better_decoding(data, None)  # declared nowhere and not UTF-8
        return better[0] if better else data.decode("cp1252", "replace")


def _meta(tree: LexborHTMLParser, selectors: tuple[str, ...]) -> str | None:
    for selector in selectors:
        node = tree.css_first(selector)
        if node is not None:
            value = node.attributes.get("content") or node.attributes.get("datetime")
            if value and value.strip():
                return value.strip()
    return None


def _json_ld(tree: LexborHTMLParser) -> dict[str, str]:
    """headline/datePublished/dateModified from the first Article-like JSON-LD object."""
    found: dict[str, str] = {}
    for node in tree.css('script[type="application/ld+json"]')[:10]:
        try:
            data = json.loads(node.text(deep=True) or "null")
        except (ValueError, RecursionError):
            continue
        stack = [data]
        seen = 0
        while stack and seen < 200:
            seen += 1
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                for key in ("headline", "datePublished", "dateModified"):
                    value = item.get(key)
                    if isinstance(value, str) and key not in found:
                        found[key] = value
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(graph)
    return found


def _is_amp(tree: LexborHTMLParser) -> bool:
    node = tree.css_first("html")
    return node is not None and ("amp" in node.attributes or "⚡" in node.attributes)


def _deamp(url: str) -> str:
    """An AMP address without its AMP markers, for AMP pages that name no canonical."""
    path_end = url.find("?")
    path, query = (url, "") if path_end < 0 else (url[:path_end], url[path_end + 1 :])
    path = _AMP_PATH.sub("", path) or "/"
    query = _AMP_QUERY.sub("", query).strip("&")
    return f"{path}?{query}" if query else path


def _canonical(tree: LexborHTMLParser, url: str, *, is_amp: bool) -> str | None:
    page_url = canonical_url(url)
    for selector, attr in (
        ('link[rel~="canonical"]', "href"),
        ('meta[property="og:url"]', "content"),
    ):
        node = tree.css_first(selector)
        href = node.attributes.get(attr) if node is not None else None
        candidate = canonical_url(href, base=page_url or url)
        if candidate and (page_url is None or same_site(candidate, page_url)):
            return candidate
    if page_url and (is_amp or ".amp." in page_url or "/amp" in page_url):
        return canonical_url(_deamp(page_url))
    return page_url


def _title(tree: LexborHTMLParser, ld: dict[str, str], site_name: str | None) -> str | None:
    candidates = [
        _meta(tree, ('meta[property="og:title"]', 'meta[name="twitter:title"]')),
        ld.get("headline"),
    ]
    h1 = tree.css_first("article h1") or tree.css_first("main h1") or tree.css_first("h1")
    candidates.append(h1.text(deep=True) if h1 is not None else None)
    title_node = tree.css_first("title")
    candidates.append(title_node.text(deep=True) if title_node is not None else None)
    for raw in candidates:
        title = inline_text(raw)
        if title:
            return _strip_site_suffix(title, site_name)
    return None


def _strip_site_suffix(title: str, site_name: str | None) -> str:
    """ "Headline | Example News" → "Headline" when the tail names the site."""
    for sep in (" | ", " – ", " — ", " - ", " :: ", " · "):
        head, found, tail = title.rpartition(sep)
        if (
            found
            and head
            and (
                (site_name and tail.strip().casefold() == site_name.casefold())
                or ("." in tail and " " not in tail.strip())
            )
        ):
            return head.strip()
    return title


def _main_text(tree: LexborHTMLParser, url: str) -> tuple[str, str]:
    strip_structural(tree)
    for node in reversed(tree.css(f"{_DECK_SELECTOR},h1")):
        node.decompose()
    cleaned = tree.html or ""
    problem = extractor_problem()
    if problem is not None:
        unsaid = unreported_extractor_problem()
        if unsaid:
            log.error("%s; full-text pages fall back to plain page text", unsaid)
    elif len(cleaned) <= MAX_EXTRACTOR_CHARS:
        import trafilatura

        try:
            text = trafilatura.extract(
                cleaned,
                url=url,
                favor_precision=True,
                include_comments=False,
                include_images=False,
                include_tables=True,
                deduplicate=False,
                output_format="txt",
            )
        # The extractor's parser fails in many ways on hostile pages; the plain
        # fallback below is the answer to all of them, so nothing is re-raised.
        except Exception:
            text = None
        if text and text.strip():
            return normalise_text(text), "trafilatura"
    fallback = "fallback" if problem is None else "fallback (extractor unavailable)"
    root = tree.css_first("article") or tree.css_first("main") or tree.body
    if root is None:
        return "", fallback
    raw = tree_text(root).replace("\n", " ").replace("\u2029", "\n")
    return normalise_text(raw), fallback


def extract_page(html: bytes | str, url: str) -> PageExtract:
    """Main text and metadata of an article page. Never raises on bad HTML."""
    text_html = decode_html(html) if isinstance(html, bytes) else html
    tree = parse_html(text_html)
    is_amp = _is_amp(tree)
    ld = _json_ld(tree)
    site_name = inline_text(_meta(tree, ('meta[property="og:site_name"]',))) or None
    published = parse_date(_meta(tree, _PUBLISHED_META) or ld.get("datePublished"))
    if published is None:
        node = tree.css_first("article time[datetime]") or tree.css_first("time[datetime]")
        published = parse_date(node.attributes.get("datetime") if node is not None else None)
    updated = parse_date(_meta(tree, _UPDATED_META) or ld.get("dateModified"))
    description = inline_text(
        _meta(tree, ('meta[property="og:description"]', 'meta[name="description"]'))
    )
    if not description:
        deck = tree.css_first(_DECK_SELECTOR)
        description = inline_text(deck.html if deck is not None else None)
    html_node = tree.css_first("html")
    lang = (html_node.attributes.get("lang") or None) if html_node is not None else None
    canonical = _canonical(tree, url, is_amp=is_amp)
    title = _title(tree, ld, site_name)
    text, extractor = _main_text(tree, canonical or url)
    return PageExtract(
        url=canonical,
        title=title,
        text=text,
        published=published,
        updated=updated,
        description=description or None,
        site_name=site_name,
        lang=lang,
        is_amp=is_amp,
        extractor=extractor,
    )


__all__ = [
    "PageExtract",
    "decode_html",
    "extract_page",
    "extractor_problem",
    "unreported_extractor_problem",
]
