"""Line rules for the leftovers of scraped news (boilerplate removal, layer 2).

Each rule looks at the cleaned lines of one article and removes what is not
prose: the site's own banner, photo credits, empty or name-only bylines,
"Read more"/"Share"/"Subscribe" lines, copyright notices and trailing one-word
residue. ``text_rules`` shape the stored text; ``comparison_rules`` go further for
the text near-duplicate detection compares (agency datelines, reporting
credits, subheads): two sites running the same wire copy differ mostly there.

Rules are deliberately conservative: each matches short lines only, so a
paragraph of prose is never removed because it happens to start like a credit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from newsfold.normalise.urls import site_key, urlsplit_host

# A "short" line: banners, bylines and credits are never longer.
SHORT_WORDS = 12
# Past this many words a line is prose for every rule (credits and captions included).
LONG_WORDS = 45
_END_PUNCT = re.compile(r"[.!?…:;]['\"”’»)]*$")
_ALNUM = re.compile(r"\w")
_NON_WORD = re.compile(r"[\W_]+")

_TITLE_SPLIT = re.compile(r"\s+[—–|:·•»/-]+\s+|\s*[|·•»]\s*")
# Domain labels too generic to mark a banner on their own.
_GENERIC_LABELS = frozenset(
    {"news", "www", "the", "blog", "blogs", "feed", "feeds", "rss", "home", "amp", "mobile", "api"}
)

_AGENCY = (
    r"AFP|AP|Reuters|EPA|EFE|EPA-EFE|dpa|ANSA|UPI|Getty Images|Getty|Shutterstock|iStock|Alamy|"
    r"Bloomberg|Xinhua|TASS|Sipa|Anadolu|Kyodo|Yonhap|PA|PA Wire|NurPhoto|ZUMA|"
    r"[A-Z][A-Z.&-]{1,9}(?: (?:Images|Photos?|Wire|Press|Agency|Pool))?"
)
_NAMED_AGENCY = r"AFP|AP|Reuters|EPA-EFE|EPA|Getty Images|Shutterstock|Bloomberg|Anadolu"
_PHOTO_CREDIT = (
    # "Photo: Jane Doe", "Image via Example", "Foto: X", "(Photo by X/Getty Images)"
    re.compile(
        r"^[(\[]?(?:photo(?:graph)?s?|images?|pictures?|pics?|fotos?|illustrations?|graphics?|"
        r"video|credits?|photo credit|image credit|image source)"
        r"(?:\s*[:|/—–-]\s*|\s+(?:by|via|courtesy(?: of)?)\s+)\S.{0,150}$",
        re.IGNORECASE,
    ),
    # Caption text glued to "Name Surname / AGENCY" (or "Name/Getty Images") at its end.
    re.compile(
        rf"\w[\w.'’ -]{{0,60}}(?:\s/\s(?:{_AGENCY})|/(?:{_NAMED_AGENCY}))"
        r"(?: via [\w ]{2,30})?\)?$"
    ),
    re.compile(r"\((?:AP|AFP|Reuters|EPA|Getty)?\s?Photos?\s?/[^)]{2,60}\)$"),
)
_BYLINE = (
    # Empty or name-only "Published by", "Posted on …", "Updated: …", "Story by …"
    re.compile(
        r"^(?:(?:published|posted|written|reported|edited|updated|modified)"
        r"(?:\s+(?:by|on|at)\b.{0,60}|\s*:.{0,60}|\s+\d.{0,40})?"
        r"|(?:story|text|words|photos?|reporting) by\s.{1,60})$",
        re.IGNORECASE,
    ),
    re.compile(r"^(?:last|first) (?:updated|published|modified)\b.{0,60}$", re.IGNORECASE),
    # "By Jane Doe", "BY JANE DOE, Staff Writer", "By Jane Doe | Dec 1, 2024": names are
    # capitalised, which keeps "By the end of the year, …" out.
    re.compile(
        r"^(?:[Bb]y|BY):?\s+[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|da|van|von|del|la|le|bin|al|"
        r"and|&)){0,5}\s*(?:[,|•·—–]\s*.{0,80})?$"
    ),
    # A line that is only a date/time or a reading time.
    re.compile(
        r"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|"
        r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4}|"
        r"\d{1,2}\.? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,? \d{4})"
        r"(?:,? (?:at )?\d{1,2}[:.]\d{2}(?:\s?[ap]\.?m\.?)?(?: [A-Z]{2,4})?)?$",
        re.IGNORECASE,
    ),
    re.compile(
        r"^(?:\d+ (?:min(?:ute)?s?|hours?|days?) (?:read|ago)|reading time:.{0,20})$", re.IGNORECASE
    ),
)
_CTA_EXACT = frozenset(
    {
        "share",
        "share this",
        "share this article",
        "share this story",
        "share this post",
        "share article",
        "share on facebook",
        "share on twitter",
        "share on x",
        "share on linkedin",
        "share via email",
        "tweet",
        "email",
        "e-mail",
        "print",
        "whatsapp",
        "facebook",
        "twitter",
        "linkedin",
        "copy link",
        "comments",
        "comment",
        "advertisement",
        "advertising",
        "sponsored",
        "sponsored content",
        "subscribe",
        "subscribe now",
        "sign up",
        "sign in",
        "log in",
        "register",
        "read more",
        "read next",
        "read also",
        "also read",
        "see also",
        "more",
        "related",
        "related articles",
        "related stories",
        "related posts",
        "related coverage",
        "recommended",
        "continue reading",
        "keep reading",
        "loading",
        "skip to content",
        "skip to main content",
        "follow us",
        "back to top",
        "listen",
        "listen to this article",
        "top stories",
        "most read",
    }
)
_CTA_PREFIX = re.compile(
    r"^(?:read more\s*(?::|at|about|on|here|»|›|→)|read (?:the )?full (?:story|article|report)|"
    r"continue reading|keep reading|read (?:also|next)\s*:|(?:also read|see also|related|more)\s*:|"
    r"share (?:on|via|this)\b|subscribe (?:to|for|now|today|here)\b|sign up (?:for|to|now|here)\b|"
    r"click here\b|follow (?:us|@)|download (?:the|our) app|get (?:the|our) app|"
    r"listen to this article|join (?:the conversation|our)|leave a (?:comment|reply)|"
    r"view comments|\d+ comments?$|this (?:article|story|post) (?:was )?(?:originally|first) "
    r"(?:appeared|published)|originally published (?:at|on|in|by)|"
    r"support (?:our|independent) journalism|become a (?:member|subscriber))",
    re.IGNORECASE,
)
_WP_FOOTER = re.compile(r"^the post .{1,300} appeared first on .{1,120}$", re.IGNORECASE)
_COPYRIGHT = re.compile(
    r"^(?:©|\(c\)|copyright\s*(?:©|\(c\)|\d{4}))|all rights reserved", re.IGNORECASE
)
_READ_MORE_TAIL = re.compile(
    r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|(?:read more|continue reading|read the full story)\s*[»›→…]*"
    r"(?:\.\.\.)?)$",
    re.IGNORECASE,
)

_READ_MORE_ENDS = frozenset("]»›→…eEgGyY")
_AGENCY_PREFIX = re.compile(
    r"^(?:[A-Z][A-Z .'’-]{1,40}(?:,\s*[A-Z][\w .’'-]{1,30}?)?"
    r"(?:,\s*[A-Z][a-z]{2,8}\.? \d{1,2})?\s*)?"
    r"\((?:AP|AFP|Reuters|UPI|dpa|EFE|ANSA|Bloomberg|CNN|Xinhua|PTI|IANS|ANI|TASS|Kyodo|Yonhap|"
    r"CP|AAP|RTTNews|The Canadian Press|Europa Press|AP Photo)\)\s*[-—–:]+\s*"
)
# "WASHINGTON —": an upper-case dateline without an agency.
_DATELINE = re.compile(r"^[A-Z][A-Z .'’]{2,30}(?:,\s*[A-Z][\w .]{1,25}?)?\s+[—–-]{1,2}\s+(?=\S)")
_REPORTING_CREDIT = re.compile(
    r"^\(?(?:(?:additional )?reporting|writing|editing|compiled|produced|research|translated)"
    r"(?: by| from)\b.{0,200}$|^\(?[\w.' -]{3,60} contributed (?:reporting|to this report).{0,80}$"
    r"|^_{3,}$|^(?:follow|contact) [\w.' -]{3,40} (?:on|at) .{1,80}$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SiteNames:
    """How a source names itself, learned from its feed title and addresses."""

    pattern: re.Pattern[str] | None

    def matches(self, line: str) -> bool:
        return self.pattern is not None and self.pattern.search(line) is not None


@lru_cache(maxsize=4096)
def site_names(title: str | None, *urls: str | None) -> SiteNames:
    """Site names and domains, e.g. ("Voz.us — World", "https://voz.us/en/world") → voz.us, voz."""
    names: set[str] = set()
    labels: set[str] = set()
    for url in urls:
        key = site_key(url)
        if key is None:
            continue
        names.add(key)
        # Every label left of the public suffix: "metro.example.co.uk" names
        # both "metro" and "example" (a subdomain is often the brand).
        host_labels = (urlsplit_host(url) or key).split(".")
        for label in host_labels[: -key.count(".")]:
            if len(label) >= 3 and label not in _GENERIC_LABELS:
                labels.add(label)
    names |= labels
    if title:
        for segment in _TITLE_SPLIT.split(title):
            squashed = _NON_WORD.sub("", segment.lower())
            if len(squashed) >= 3 and any(lab in squashed or squashed in lab for lab in labels):
                names.add(segment.strip().lower())
    if not names:
        return SiteNames(None)
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return SiteNames(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))


def _words(line: str) -> int:
    return line.count(" ") + 1


def _squash(text: str) -> str:
    return _NON_WORD.sub(" ", text.casefold()).strip()


def is_subhead(line: str) -> bool:
    return _words(line) <= 8 and _END_PUNCT.search(line) is None


def is_site_banner(line: str, site: SiteNames) -> bool:
    return (
        _words(line) <= 8 and len(line) <= 80 and not _END_PUNCT.search(line) and site.matches(line)
    )


def is_photo_credit(line: str) -> bool:
    if len(line) > 300 or line.endswith(".") or _words(line) > 40:
        return False
    if _PHOTO_CREDIT[0].match(line):
        return True
    # The other two shapes need a slash; most lines have none, so skip the searches.
    return "/" in line and any(p.search(line) for p in _PHOTO_CREDIT[1:])


def is_byline(line: str) -> bool:
    if _words(line) > SHORT_WORDS or line.endswith(("!", "?")):
        return False
    return any(p.match(line) for p in _BYLINE)


def is_call_to_action(line: str) -> bool:
    if _words(line) > 20:
        return False
    bare = line.strip(" :|»›→>…-—–•·*[]()").casefold()
    return (
        bare in _CTA_EXACT
        or _CTA_PREFIX.match(line) is not None
        or _WP_FOOTER.match(line) is not None
    )


def is_copyright(line: str) -> bool:
    return _words(line) <= 25 and _COPYRIGHT.search(line) is not None


def is_residue(line: str) -> bool:
    """No letters or digits at all ("***", "—"), or one bare word at the end ("tracking")."""
    return _ALNUM.search(line) is None


def is_trailing_word(line: str) -> bool:
    return " " not in line and len(line) <= 30 and _END_PUNCT.search(line) is None


def strip_read_more(line: str) -> str:
    """Drop a trailing "Read more »" or "[…]" (WordPress excerpts, teaser feeds)."""
    if len(line) <= 20 or (line[-1] not in _READ_MORE_ENDS and not line.endswith("...")):
        return line
    # Only the tail can match; searching it alone keeps long paragraphs cheap.
    head, tail = line[:-40], line[-40:]
    return (head + _READ_MORE_TAIL.sub("", tail)).rstrip()


def strip_agency_prefix(line: str) -> tuple[str, str | None]:
    """("WASHINGTON (AP) — The …" → "The …", rule name) for the comparison text."""
    match = _AGENCY_PREFIX.match(line) or _DATELINE.match(line)
    if match is None or match.end() >= len(line):
        return line, None
    return line[match.end() :], "agency_prefix"


def is_reporting_credit(line: str) -> bool:
    return _REPORTING_CREDIT.match(line) is not None


def same_text(a: str, b: str) -> bool:
    return bool(a) and _squash(a) == _squash(b)


__all__ = [
    "SiteNames",
    "is_byline",
    "is_call_to_action",
    "is_copyright",
    "is_photo_credit",
    "is_reporting_credit",
    "is_residue",
    "is_site_banner",
    "is_subhead",
    "is_trailing_word",
    "same_text",
    "site_names",
    "strip_agency_prefix",
    "strip_read_more",
]
