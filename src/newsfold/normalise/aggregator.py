"""Aggregator wrappers (Google-News-style): "<a>Title</a>&nbsp;&nbsp;<font>Source</font>".

Such an entry carries no article text, only linked headlines each followed by the
outlet's name. The names are taken out (and returned, to trim "Title - Source"
titles) so the headlines read as plain lines.
"""

from __future__ import annotations

import html as html_lib
import re

_SOURCE_AFTER_LINK = re.compile(
    r"(</a>)(?:\s|&nbsp;|&#160;|\xa0)*<font\b[^>]*>(.*?)</font>", re.IGNORECASE | re.DOTALL
)
_TAGS = re.compile(r"<[^>]*>")


def unwrap_aggregator(html: str) -> tuple[str, tuple[str, ...]]:
    """(HTML without the source labels, the labels in order)."""
    if "<font" not in html and "<FONT" not in html:
        return html, ()
    sources: list[str] = []

    def take(match: re.Match[str]) -> str:
        name = " ".join(html_lib.unescape(_TAGS.sub("", match.group(2))).split())
        if name:
            sources.append(name)
        return match.group(1)

    return _SOURCE_AFTER_LINK.sub(take, html), tuple(sources)


def strip_source_suffix(title: str, sources: tuple[str, ...]) -> str:
    """ "Headline - Example Times" → "Headline" when the suffix is the entry's source label."""
    for source in sources[:1]:
        for sep in (" - ", " – ", " — ", " | "):
            suffix = sep + source
            if title.endswith(suffix) and len(title) > len(suffix):
                return title[: -len(suffix)].rstrip()
    return title


__all__ = ["strip_source_suffix", "unwrap_aggregator"]
