"""What a feed's titles say beyond the feed's own naming: the title evidence for a same-feed join.

A feed names its items in its own pattern: "ISC Stormcast For Monday, …", "Pluralistic: …", an
agency's product-name advisories, a weekly "Round-Up". Two of its items are one story only when
their titles share a term that is not that pattern: the subject (*Red Dead Redemption 2*,
*iPhone XR*). A title term held by at least half of the feed's titles in the window is the
feed's, not the item's. Numbers tell a series' items apart: two titles that each carry a number
the other lacks (a date, an issue, an amount, a version) are two items ("… Round-Up, November 24
2025" / "… November 26 2025", "Raises $36 Million" / "Raises $20 Million"). Language-aware terms
(``terms.term_weights``) make *iPhone* and *iPhones* one term.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from newsfold.dedup.terms import term_weights

if TYPE_CHECKING:
    from collections.abc import Iterable


_SAMPLE = 5  # titles of a feed before its naming can be told from its subjects
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def title_terms(
    title: str, language: str | None, terms: Iterable[str] | None = None
) -> frozenset[str]:
    """The title's terms, and its numbers as written (``#`` + digits: *26*, *36*, *1.30*).

    ``terms``: the title's terms, when ``term_weights`` has read them already.
    """
    if terms is None:
        terms = term_weights(title, "", title_boost=1.0, name_boost=1.0, language_code=language)
    return frozenset(terms) | frozenset("#" + n for n in _NUMBER.findall(title))


class FeedTitles:
    """Per feed, the title terms of its articles in the window, and how many hold each."""

    __slots__ = ("_counts", "_n", "_of")

    def __init__(self) -> None:
        self._of: dict[int, tuple[int, frozenset[str]]] = {}  # article → (feed, title terms)
        self._counts: dict[int, Counter[str]] = {}
        self._n: Counter[int] = Counter()

    def add(self, article_id: int, feed: int, terms: frozenset[str]) -> None:
        if article_id in self._of:
            self.remove(article_id)
        self._of[article_id] = (feed, terms)
        self._counts.setdefault(feed, Counter()).update(terms)
        self._n[feed] += 1

    def remove(self, article_id: int) -> None:
        found = self._of.pop(article_id, None)
        if found is None:
            return
        feed, terms = found
        self._counts[feed].subtract(terms)
        self._n[feed] -= 1
        if not self._n[feed]:
            del self._n[feed], self._counts[feed]

    def of(self, article_id: int) -> frozenset[str]:
        """The title terms of an article (empty: not held)."""
        found = self._of.get(article_id)
        return found[1] if found is not None else frozenset()

    def agree(self, feed: int, terms: frozenset[str], members: Iterable[int]) -> bool:
        """Whether a new article's title (``terms``, not yet added) shares a subject term with
        the title of one of ``members``, all of ``feed``."""
        counts = self._counts.get(feed, Counter())
        n = self._n[feed] + 1  # the new article counts too
        if n < _SAMPLE:  # too few titles to tell the feed's naming: every word may be subject
            subject = {t for t in terms if t[0] != "#"}
        else:
            subject = {t for t in terms if t[0] != "#" and (counts[t] + 1) * 2 < n}
        if not subject:
            return False
        numbers = _numbers(terms)
        of = self._of
        for a in members:
            theirs = of[a][1] if a in of else frozenset()
            if subject.isdisjoint(theirs):
                continue
            other = _numbers(theirs)
            if not (numbers - other and other - numbers):
                return True
        return False


def pair_agrees(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Whether two titles of one feed share a word and neither holds a number the other
    lacks while lacking one it holds (a pairwise form of ``FeedTitles.agree``)."""
    if {t for t in mine if t[0] != "#"}.isdisjoint(theirs):
        return False
    numbers, other = _numbers(mine), _numbers(theirs)
    return not (numbers - other and other - numbers)


def _numbers(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(t for t in terms if t[0] == "#")


__all__ = ["FeedTitles", "pair_agrees", "title_terms"]
