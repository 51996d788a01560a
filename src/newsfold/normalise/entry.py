"""The entry pipeline: ``normalise_entry`` builds a first ``Article`` from what the
feed said, then runs ``STEPS`` in order. Each step has one signature,
``(Article, Context) -> Article``, and returns a copy, so a step can be tested,
reordered or dropped on its own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from newsfold.normalise import rules
from newsfold.normalise.aggregator import strip_source_suffix, unwrap_aggregator
from newsfold.normalise.boilerplate import BoilerplateModel, clean_lines, comparison_lines
from newsfold.normalise.dates import resolve_published, to_utc
from newsfold.normalise.html import html_to_text, inline_text, normalise_text, sanitise_input
from newsfold.normalise.language import article_language
from newsfold.normalise.urls import canonical_url
from newsfold.types import Article, declared_language

if TYPE_CHECKING:
    from datetime import datetime

    from newsfold.config import NormaliseSettings
    from newsfold.normalise.page import PageExtract
    from newsfold.normalise.template import FeedTemplate
    from newsfold.types import FeedSource, RawEntry

_HASH_SPLIT = re.compile(r"[\W_]+")
# ASCII punctuation, deleted from the UTF-8 bytes (no multi-byte sequence contains these).
_ASCII_PUNCT = bytes(c for c in range(128) if not chr(c).isalnum() and not chr(c).isspace())
_FALLBACK_TITLE_CHARS = 120
TEMPLATE_RULE = "template"


def content_hash(text: str) -> str:
    """Stable hex digest of text as compared: case, punctuation, spacing and Unicode
    compatibility forms do not change it."""
    folded = unicodedata.normalize("NFKC", text).casefold().encode("utf-8", "replace")
    words = b" ".join(folded.translate(None, _ASCII_PUNCT).split())
    return hashlib.blake2b(words, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Context:
    """What the steps need besides the article itself."""

    feed: FeedSource
    settings: NormaliseSettings
    body_html: str  # feed content (or summary when there is no content)
    summary_html: str  # feed summary when the body came from elsewhere, else ""
    page: PageExtract | None = None
    boilerplate: BoilerplateModel | None = None
    observe: bool = False
    sources: tuple[str, ...] = ()  # aggregator source labels
    feed_title: bool = True  # the title came from the feed or page (not from the text)
    declared_language: str | None = None  # the entry's or its feed's, ISO 639-1


Step = Callable[[Article, Context], Article]


def _add_rules(article: Article, fired: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    new = tuple(name for name in fired if name not in article.rules_fired)
    return article.rules_fired + new


def clean_body(article: Article, ctx: Context) -> Article:
    """HTML → text, then the line rules (structural removal happens inside ``html_to_text``)."""
    if ctx.page is not None and ctx.page.text:
        text = normalise_text(ctx.page.text)
    else:
        text = html_to_text(ctx.body_html)
    site = rules.site_names(ctx.feed.title, ctx.feed.site_url, ctx.feed.url)
    lines, fired = clean_lines(
        text.splitlines(), site=site, title=article.title if ctx.feed_title else ""
    )
    return replace(article, text="\n".join(lines), rules_fired=_add_rules(article, fired))


def learned_boilerplate(article: Article, ctx: Context) -> Article:
    model = ctx.boilerplate
    if model is None:
        return article
    if ctx.observe:
        model.observe(article.text)
    text, fired = model.clean(article.text)
    if not fired:
        return article
    return replace(article, text=text, rules_fired=_add_rules(article, fired))


def fallback_title(article: Article, ctx: Context) -> Article:
    """Untitled entries (micro-posts) are named by their first line."""
    if article.title or not article.text:
        return article
    first = article.text.split("\n", 1)[0]
    if len(first) > _FALLBACK_TITLE_CHARS:
        first = first[:_FALLBACK_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return replace(article, title=first)


def summary(article: Article, ctx: Context) -> Article:
    """The deck, kept only when it says something the body does not start with."""
    raw = ctx.summary_html
    text = html_to_text(raw) if raw else ""
    if not text and ctx.page is not None and ctx.page.description:
        text = ctx.page.description
    if not text:
        return article
    site = rules.site_names(ctx.feed.title, ctx.feed.site_url, ctx.feed.url)
    lines, _ = clean_lines(text.splitlines(), site=site)
    deck = "\n".join(lines)
    squashed_deck = " ".join(_HASH_SPLIT.sub(" ", deck.casefold()).split())
    squashed_body = " ".join(_HASH_SPLIT.sub(" ", article.text[: len(deck) * 2].casefold()).split())
    # Teaser feeds cut the first paragraph ("…", "[…]"): a prefix is not a deck.
    if not squashed_deck or squashed_body.startswith(
        squashed_deck[: max(40, len(squashed_deck) - 3)]
    ):
        return article
    if rules.same_text(deck, article.title):
        return article
    return replace(article, summary=deck)


def comparison(article: Article, ctx: Context) -> Article:
    lines, fired = comparison_lines(article.text.splitlines())
    text = "\n".join(lines) or article.title
    return replace(
        article,
        comparison_text=text,
        content_hash=content_hash(text),
        rules_fired=_add_rules(article, fired),
    )


def without_template(article: Article, template: FeedTemplate) -> Article:
    """``article`` compared without its feed's template (see ``template``): its
    ``comparison_text`` and ``content_hash`` are those of its own words, or of its
    title when the template was all its text."""
    if not article.text:
        return article  # compared by its title already
    text = template.strip(article.comparison_text)
    if text == article.comparison_text:
        return article
    text = text or article.title
    return replace(
        article,
        comparison_text=text,
        content_hash=content_hash(text),
        rules_fired=_add_rules(article, (TEMPLATE_RULE,)),
    )


def language(article: Article, ctx: Context) -> Article:
    if not ctx.settings.detect_language:
        return article
    lang = article_language(
        article.title, article.comparison_text, min_chars=ctx.settings.language_min_chars
    )
    # Too short to identify (a headline, a link post): the article page's declared
    # language, else the entry's or its feed's. Declarations come second because many
    # feeds keep a CMS default (en-us) whatever they publish.
    if lang is None and ctx.page is not None:
        lang = declared_language(ctx.page.lang)
    if lang is None:
        lang = ctx.declared_language
    return replace(article, language=lang) if lang != article.language else article


def entry_key(article: Article, ctx: Context) -> Article:
    """GUID → canonical link → content hash: stable per feed across polls."""
    if article.guid:
        key = f"guid:{article.guid}"
    elif article.url:
        key = f"url:{article.url}"
    else:
        key = f"hash:{article.content_hash}"
    return replace(article, entry_key=key)


STEPS: tuple[Step, ...] = (
    clean_body,
    learned_boilerplate,
    fallback_title,
    summary,
    comparison,
    language,
    entry_key,
)


def normalise_entry(
    entry: RawEntry,
    feed: FeedSource,
    *,
    fetched_at: datetime,
    settings: NormaliseSettings,
    boilerplate: BoilerplateModel | None = None,
    page: PageExtract | None = None,
    observe: bool = False,
) -> Article:
    """Clean one entry. ``page`` (full-text mode) replaces the feed body when it has
    text; ``observe=True`` also teaches ``boilerplate`` this article (new entries
    only); the model is otherwise only read."""
    content = entry.content_html or ""
    summary_html = entry.summary_html or ""
    body, deck = (content, summary_html) if content.strip() else (summary_html, "")
    if page is not None and page.text:
        # The page is the body now, so the feed's description can only be a deck.
        deck = summary_html
    sources: tuple[str, ...] = ()
    if body:
        body, sources = unwrap_aggregator(body)
    title = inline_text(entry.title) or (page.title if page is not None and page.title else "")
    if sources:
        title = strip_source_suffix(title, sources)
    url = canonical_url(
        entry.link, base=feed.url, extra_tracking=settings.extra_tracking_params
    ) or canonical_url(entry.guid, extra_tracking=settings.extra_tracking_params)
    if page is not None and page.url:
        url = page.url
    published = entry.published
    if published is None and page is not None:
        published = page.published
    updated = entry.updated or (page.updated if page is not None else None)
    when, source = resolve_published(
        published, updated, now=fetched_at, future_tolerance_s=settings.future_tolerance_s
    )
    # Keys are stored and compared: no NUL (PostgreSQL refuses it), no lone surrogates.
    guid = sanitise_input(entry.guid).strip() or None if entry.guid else None
    article = Article(
        feed_id=feed.id,
        entry_key="",
        url=url,
        title=title,
        summary="",
        text="",
        comparison_text="",
        content_hash="",
        published=when,
        fetched_at=to_utc(fetched_at),
        date_source=source,
        updated=to_utc(updated) if updated is not None else None,
        author=inline_text(entry.author) or None,
        guid=guid,
    )
    ctx = Context(
        feed=feed,
        settings=settings,
        body_html=body,
        summary_html=deck,
        page=page,
        boilerplate=boilerplate,
        observe=observe,
        sources=sources,
        feed_title=bool(title),
        declared_language=entry.language,
    )
    for step in STEPS:
        article = step(article, ctx)
    return article
