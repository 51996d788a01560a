"""HTML → plain text: one paragraph per line, NFC, tidy whitespace, quotes and dashes.

Owns the structural layer of boilerplate removal (layer 1): scripts,
styles, media, figures and their captions, navigation, share widgets, credit and
byline elements are dropped before any text is read. Line-level rules live in
``boilerplate``. Nothing here knows about feeds or sources.

``html_to_text`` is idempotent: its output, fed back in, comes out unchanged
(plain text skips the HTML parser, and markup-looking output is re-parsed until
it stops changing).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from selectolax.lexbor import LexborHTMLParser

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

# A paragraph break we insert around block elements. U+2029 in the input is
# turned into a space first, so every one left after parsing is ours.
_BREAK = "\u2029"

# Dropped with their content: never article prose.
DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "canvas",
    "img",
    "picture",
    "video",
    "audio",
    "source",
    "figure",
    "figcaption",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "button",
    "input",
    "select",
    "textarea",
    "head",
    "title",
    "meta",
    "link",
)

# Elements that end a paragraph. ``td``/``th`` only get a space (a table row is one line).
_FLOW_BLOCKS = (
    "p|div|br|hr|li|dt|dd|h[1-6]|blockquote|pre|ul|ol|dl|section|article|main|address|center|"
    "details|summary"
)
_BLOCK_SELECTOR = _FLOW_BLOCKS.replace("h[1-6]", "h1|h2|h3|h4|h5|h6").replace("|", ",")
# Table parts: text between rows would be moved out of the table by the parser
# ("foster parenting"), so their breaks are inserted into the tree instead.
_TABLE_SELECTOR = "tr,table,caption"
# Breaks go into the markup itself before flow block tags (open or close): one
# regex pass instead of a tree insertion per element, which matters on huge bodies.
_BLOCK_TAG_RE = re.compile(rf"(?=</?(?:{_FLOW_BLOCKS})[\s/>])", re.IGNORECASE)
_DROP_RE = re.compile(rf"<({'|'.join(DROP_TAGS)})(?=[\s/>])", re.IGNORECASE)
_CLASS_OR_ID_RE = re.compile(r"\s(?:class|id)\s*=", re.IGNORECASE)

# Class/id words marking widgets and credits (matched as whole words of the
# attribute, split on space, "-" and "_", so "shadow" or "header-image" never match "ad").
_WIDGET_WORDS = frozenset(
    {
        "share",
        "shares",
        "sharing",
        "sharedaddy",
        "social",
        "socials",
        "sociable",
        "addtoany",
        "a2a",
        "byline",
        "bylines",
        "credit",
        "credits",
        "caption",
        "related",
        "relatedposts",
        "newsletter",
        "subscribe",
        "subscription",
        "advert",
        "advertisement",
        "ad",
        "ads",
        "adsbygoogle",
        "sponsored",
        "promo",
        "breadcrumb",
        "breadcrumbs",
        "comments",
        "disqus",
        "tags",
        "tagcloud",
        "sr-only",
        "screen-reader-text",
        "visually-hidden",
    }
)
_WORD_SPLIT = re.compile(r"[\s_\-]+")
# A widget element holding more text than this is probably a wrapper around the
# article that happens to carry a matching class: keep it.
_WIDGET_MAX_CHARS = 600
_WIDGET_MAX_NODES = 2000

_TAG_RE = re.compile(r"<(?:[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|/[A-Za-z][A-Za-z0-9:-]*\s*>|!--)")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SURROGATES = re.compile(r"[\ud800-\udfff]")

# C0/C1 controls (kept: tab/newlines, handled as whitespace), zero-width marks,
# soft hyphen, BOM; typographic quotes and dash variants folded to one form each.
_TRANSLATE: dict[int, str | None] = {c: None for c in range(32) if chr(c) not in "\t\n\r\x0b\x0c"}
_TRANSLATE.update({c: None for c in range(0x7F, 0xA0) if c != 0x85})
_TRANSLATE.update(
    {
        0x00AD: None,  # soft hyphen
        0x200B: None,  # zero width space
        0x2060: None,  # word joiner
        0xFEFF: None,  # BOM / zero width no-break space
        0x00A0: " ",
        0x2007: " ",
        0x202F: " ",
        0x2018: "'",
        0x2019: "'",
        0x201A: "'",
        0x201B: "'",
        0x2032: "'",
        0x201C: '"',
        0x201D: '"',
        0x201E: '"',
        0x201F: '"',
        0x2033: '"',
        0x2010: "-",
        0x2011: "-",
        0x2012: "–",
        0x2015: "—",
        0xFE58: "—",
        0x2E3A: "—",
    }
)

_TRANSLATE_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in _TRANSLATE) + "]")


def _translate(text: str) -> str:
    # Same result as ``text.translate(_TRANSLATE)``, which is slow on non-ASCII text
    # (a dict lookup per character): one C-speed replace per character present.
    for char in set(_TRANSLATE_RE.findall(text)):
        text = text.replace(char, _TRANSLATE[ord(char)] or "")
    return text


# cp1252 bytes 0x80-0x9F that decoders wrongly left as C1 controls or as their
# cp1252 characters inside UTF-8-read-as-cp1252 mojibake ("â€™" for "’").
_CP1252_SPECIALS = {
    chr(0x80 + i): ch
    for i, ch in enumerate(bytes(range(0x80, 0xA0)).decode("cp1252", errors="replace"))
    if ch != "\ufffd"
}
_C1_TO_CP1252 = {ord(k): v for k, v in _CP1252_SPECIALS.items()}
_C1_RE = re.compile("[\u0080-\u009f]")
_MOJIBAKE_BYTES = {v: ord(k) for k, v in _CP1252_SPECIALS.items()}
_CONT = "[\u0080-\u00bf" + re.escape("".join(_MOJIBAKE_BYTES)) + "]"
# One UTF-8 sequence seen through cp1252: a lead byte and its exact number of continuations.
_MOJIBAKE_RE = re.compile(
    f"[\u00c2-\u00df]{_CONT}|[\u00e0-\u00ef]{_CONT}{{2}}|[\u00f0-\u00f4]{_CONT}{{3}}"
)
_MOJIBAKE_HINTS = ("Ã", "â", "Â", "Å", "Ä", "Ð", "Ñ", "Î", "Ï", "Ø", "Ù", "ã", "ä", "å", "ð")


def _fix_mojibake_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        raw = bytes(_MOJIBAKE_BYTES.get(ch, ord(ch)) for ch in run)
        return raw.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return run


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 text that was decoded as cp1252/latin-1 ("Ã©" → "é"), and C1 controls
    that stand for cp1252 punctuation ("\\x92" → "’"). Repeats for double encodings."""
    if text.isascii():
        return text
    if _C1_RE.search(text):
        text = text.translate(_C1_TO_CP1252)
    # Each repair shortens the text, so this ends; double encodings need two rounds.
    while any(hint in text for hint in _MOJIBAKE_HINTS):
        fixed = _MOJIBAKE_RE.sub(_fix_mojibake_run, text)
        if fixed == text:
            break
        text = fixed
    return text


def _fold_chars(text: str) -> str:
    # Folding a dash can complete a mojibake sequence and NFC can create a
    # foldable character, so repeat until stable (one round in practice).
    for _ in range(4):
        text = unicodedata.normalize("NFC", _translate(fix_mojibake(text)))
        if not _TRANSLATE_RE.search(text) and not _C1_RE.search(text) and not _has_mojibake(text):
            break
    return text


def _has_mojibake(text: str) -> bool:
    return any(hint in text for hint in _MOJIBAKE_HINTS) and _MOJIBAKE_RE.search(text) is not None


def sanitise_input(text: str) -> str:
    """Remove what no parser or encoder should see: NUL and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATES.sub("", text)
    return text


def normalise_line(line: str) -> str:
    return " ".join(line.split())


def normalise_text(text: str) -> str:
    """Plain text → tidy text: NFC, one paragraph per line, no blank lines. Idempotent."""
    text = sanitise_input(text)
    text = _translate(text) if text.isascii() else _fold_chars(text)
    lines = (normalise_line(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def looks_like_html(text: str) -> bool:
    return ("<" in text and _TAG_RE.search(text) is not None) or (
        "&" in text and _ENTITY_RE.search(text) is not None
    )


# The HTML parser's time grows with the square of nesting depth (50k nested <div>s take
# seconds, 100k minutes). Markup nested deeper than any real article is flattened to its
# text first; counting depth is only worth it once a document has many tags.
_DEPTH_CHECK_TAGS = 20_000
_MAX_DEPTH = 512
_OPEN_CLOSE_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*?(/?)>")
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


def too_deep(html: str, limit: int = _MAX_DEPTH) -> bool:
    depth = 0
    for m in _OPEN_CLOSE_RE.finditer(html):
        if m.group(1):
            depth -= 1
        elif not m.group(3) and m.group(2).lower() not in _VOID:
            depth += 1
            if depth > limit:
                return True
    return False


def parse_html(html: str, *, breaks: bool = False) -> LexborHTMLParser:
    """Parse; with ``breaks``, mark flow block boundaries for ``tree_text(marked=True)``."""
    # U+2029 is our paragraph marker, so an input one becomes a plain space.
    html = sanitise_input(html).replace(_BREAK, " ")
    if breaks:
        html = _BLOCK_TAG_RE.sub(_BREAK, html)
    if html.count("<") > _DEPTH_CHECK_TAGS and too_deep(html):
        html = _TAG_RE.sub(" ", html)
    return LexborHTMLParser(html)


def _class_words(node: LexborNode) -> set[str]:
    attrs = node.attributes
    value = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()
    words = set(_WORD_SPLIT.split(value))
    # Whole values too, for multi-word names such as "screen-reader-text".
    words.update(value.split())
    return words


def strip_structural(root: LexborNode | LexborHTMLParser, html: str | None = None) -> None:
    """Drop the structural boilerplate (layer 1 of boilerplate removal) in place.

    ``html``, the markup the tree was parsed from, lets us skip the tree walks for
    tags and attributes it does not contain (each walk costs a pass over the tree).
    """
    tags = list(DROP_TAGS) if html is None else sorted({t.lower() for t in _DROP_RE.findall(html)})
    if tags:
        root.strip_tags(tags)
    if html is not None and _CLASS_OR_ID_RE.search(html) is None:
        return
    candidates = root.css("[class],[id]")
    if len(candidates) > _WIDGET_MAX_NODES:
        candidates = candidates[:_WIDGET_MAX_NODES]
    # Reverse document order removes descendants before their ancestors, so no
    # node is touched after an enclosing element has been freed.
    for node in reversed(candidates):
        if node.tag in {"html", "body", "main", "article"}:
            continue
        if not _class_words(node) & _WIDGET_WORDS:
            continue
        if len(node.text(deep=True)) <= _WIDGET_MAX_CHARS:
            node.decompose()


def tree_text(root: LexborNode, *, marked: bool = False) -> str:
    """Text of an already cleaned tree with paragraph breaks, before normalisation.

    ``marked``: the tree came from ``parse_html(..., breaks=True)``.
    """
    selector = _TABLE_SELECTOR if marked else f"{_BLOCK_SELECTOR},{_TABLE_SELECTOR}"
    for node in root.css(selector):
        if node.tag == "br":
            node.insert_after(_BREAK)
        else:
            node.insert_before(_BREAK)
            node.insert_after(_BREAK)
    for node in root.css("td,th"):
        node.insert_after(" ")
    return root.text(deep=True, separator="")


def _parse_to_text(html: str) -> str:
    tree = parse_html(html, breaks=True)
    strip_structural(tree, html)
    body = tree.body
    if body is None:
        return ""
    raw = tree_text(body, marked=True)
    # Inside HTML, source newlines are plain spaces; only our breaks split lines.
    raw = raw.replace("\r", " ").replace("\n", " ").replace(_BREAK, "\n")
    return normalise_text(raw)


def html_to_text(html: str) -> str:
    """HTML (or plain text) → clean text, one paragraph per line. Never raises on a str."""
    if not html:
        return ""
    if not looks_like_html(html):
        return normalise_text(html)
    text = _parse_to_text(html)
    # Double-escaped feeds ("&lt;p&gt;") decode to markup: parse again until the
    # text stops changing, which also makes the function idempotent.
    for _ in range(4):
        if not looks_like_html(text):
            break
        again = _parse_to_text(text)
        if again == text:
            break
        text = again
    return text


def inline_text(html: str | None) -> str:
    """A title or name: HTML → one line of text."""
    if not html:
        return ""
    return " ".join(html_to_text(html).splitlines())


__all__ = [
    "DROP_TAGS",
    "fix_mojibake",
    "html_to_text",
    "inline_text",
    "looks_like_html",
    "normalise_line",
    "normalise_text",
    "parse_html",
    "sanitise_input",
    "strip_structural",
    "tree_text",
]
