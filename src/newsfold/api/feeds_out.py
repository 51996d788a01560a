"""The deduplicated output feeds: one entry per story, crediting every source.

Pure functions from stored stories (``PublishedStory``) to an Atom document
(RFC 4287) or a JSON Feed 1.1 object; no I/O, the caller passes ``now``.

Representative rule: the earliest-published member (ties broken by the lower
article id, i.e. the one stored first) represents the story. Its title is the
entry title, and its summary — or, when the feed gave none, the first ~300
characters of its text, cut at a word — is the entry summary. The earliest
report is the one the others copied or followed, so its headline is the least
likely to be a rewrite, and the choice is stable as later members arrive.

An entry's id is its story's and its updated time is when the story's articles
last changed (``PublishedStory.updated``): re-clustering that leaves a story as it
was rewrites nothing a reader sees, and a story merged away leaves the feed (its
id resolves to the survivor's page).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from newsfold.representative import display_title
from newsfold.representative import representative as pick_representative

if TYPE_CHECKING:
    from collections.abc import Sequence

    from newsfold.storage.published import PublishedMember, PublishedStory

ATOM_NS = "http://www.w3.org/2005/Atom"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
SUMMARY_CHARS = 300
GENERATOR = "newsfold"
# XML 1.0 forbids most C0 controls even as character references (section 2.2).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What the output feed says about itself."""

    title: str = "newsfold: deduplicated stories"
    feed_url: str | None = None  # where this document is served (rel="self")
    home_url: str | None = None  # the web page
    story_url: str | None = None  # "{base}/stories/{id}"-style template with "{id}"
    feed_id: str = "urn:newsfold:stories"


def representative(story: PublishedStory) -> PublishedMember:
    """The story's representative report (``newsfold.representative``'s one rule)."""
    return pick_representative(story.members)


def story_title(story: PublishedStory) -> str:
    """The title a story is shown under everywhere: its representative's, or derived."""
    rep = representative(story)
    return display_title(rep.title, rep.snippet, rep.url)


def story_summary(member: PublishedMember, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join((member.summary or member.snippet).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(",;:") + "…"


def story_id_uri(story_id: int) -> str:
    return f"urn:newsfold:story:{story_id}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def members_html(story: PublishedStory) -> str:
    """A small HTML list of every member, every value escaped (feed text is untrusted)."""
    items = []
    for m in story.members:
        # dir="auto": a right-to-left headline (Urdu, Arabic, Hebrew) reads the right way.
        title = f'<span dir="auto">{html.escape(display_title(m.title, m.snippet, m.url))}</span>'
        link = f'<a href="{html.escape(m.url)}">{title}</a>' if m.url else title
        items.append(f"<li>{link} — {html.escape(m.feed)}, {_iso(m.published)}</li>")
    sources = html.escape(", ".join(story.sources))
    count = plural(len(story.sources), "source")
    return f"<p>Reported by {count}: {sources}</p><ul>{''.join(items)}</ul>"


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 source", "2 sources"; ``words`` for irregular plurals ("stories")."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def render_atom(stories: Sequence[PublishedStory], meta: FeedMeta, *, now: datetime) -> bytes:
    """An Atom feed: feed id/title/updated/author, one entry per story, newest first."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, "id", meta.feed_id)
    _sub(feed, "title", meta.title)
    updated = max((s.updated for s in stories), default=now)
    _sub(feed, "updated", _iso(updated))
    # A feed-level author satisfies RFC 4287 4.1.1 for entries that credit no person.
    _sub(_sub(feed, "author"), "name", GENERATOR)
    _sub(feed, "generator", GENERATOR)
    if meta.feed_url:
        _sub(feed, "link", rel="self", href=meta.feed_url, type="application/atom+xml")
    if meta.home_url:
        _sub(feed, "link", rel="alternate", href=meta.home_url, type="text/html")
    for story in stories:
        if story.members:
            _entry(feed, story, meta)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def _entry(feed: ET.Element, story: PublishedStory, meta: FeedMeta) -> None:
    rep = representative(story)
    entry = _sub(feed, "entry")
    _sub(entry, "id", story_id_uri(story.id))
    _sub(entry, "title", story_title(story), type="text")
    _sub(entry, "updated", _iso(story.updated))
    _sub(entry, "published", _iso(story.first_seen))
    # Every outlet that carried the story is credited as a contributor; the
    # representative's outlet is the author.
    _sub(_sub(entry, "author"), "name", rep.feed)
    for source in story.sources:
        if source != rep.feed:
            _sub(_sub(entry, "contributor"), "name", source)
    story_page = meta.story_url.replace("{id}", str(story.id)) if meta.story_url else None
    alternate = rep.url or story_page
    if alternate:
        _sub(entry, "link", rel="alternate", href=alternate, type="text/html")
    for m in story.members:
        if m.url and m.url != alternate:
            _sub(entry, "link", rel="related", href=m.url, title=f"{m.feed}: {m.title}")
    if story_page and story_page != alternate:
        _sub(entry, "link", rel="via", href=story_page, type="text/html")
    summary = story_summary(rep)
    if summary:
        _sub(entry, "summary", summary, type="text")
    _sub(entry, "content", members_html(story), type="html")


def render_json_feed(
    stories: Sequence[PublishedStory], meta: FeedMeta, *, now: datetime
) -> dict[str, object]:
    """A JSON Feed 1.1 object; story details ride in the ``_newsfold`` extension."""
    items = [_item(s, meta) for s in stories if s.members]
    out: dict[str, object] = {
        "version": JSONFEED_VERSION,
        "title": meta.title,
        "authors": [{"name": GENERATOR}],
        "items": items,
    }
    if meta.home_url:
        out["home_page_url"] = meta.home_url
    if meta.feed_url:
        out["feed_url"] = meta.feed_url
    out["_newsfold"] = {"generated_at": _iso(now), "stories": len(items)}
    return out


def _item(story: PublishedStory, meta: FeedMeta) -> dict[str, object]:
    rep = representative(story)
    story_page = meta.story_url.replace("{id}", str(story.id)) if meta.story_url else None
    item: dict[str, object] = {
        "id": story_id_uri(story.id),
        "title": story_title(story),
        "content_html": members_html(story),
        "summary": story_summary(rep),
        "date_published": _iso(story.first_seen),
        "date_modified": _iso(story.updated),
        "authors": [{"name": s} for s in story.sources],
    }
    if rep.url or story_page:
        item["url"] = rep.url or story_page
    if story_page and rep.url:
        item["external_url"] = story_page
    item["_newsfold"] = {
        "story_id": story.id,
        "size": story.size,
        "sources": list(story.sources),
        "first_seen": _iso(story.first_seen),
        "last_seen": _iso(story.last_seen),
        "members": [
            {
                "id": m.id,
                "title": m.title,
                "url": m.url,
                "source": m.feed,
                "published": _iso(m.published),
                "tier": m.tier,
                "similarity": round(m.similarity, 4),
            }
            for m in story.members
        ],
    }
    return item
