"""A feed's item template: the wording its items share, learned online, per feed.

Many feeds wrap every item in the same words: "submitted by /u/… [link]
[comments]", a video channel's description, "The post … appeared first on …",
an agency's advisory wording around a CVE id. Those words say nothing about
the report; two different items that are mostly template look like copies.
``FeedTemplate`` counts, over a feed's recent items, the word 3-grams they
share (with markers for the text's start and end, so that a two-word tail
such as "[link] [comments]" counts too). A 3-gram found in at least
``min_docs`` items and ``min_share`` of the window is template.

``strip`` removes the template from a text: covered runs of at least
``_MIN_RUN`` words, or any covered run that starts or ends the text (a
phrase like "one of the" inside prose stays). A slot of one or two words
between two template runs, with no digit in it (a user name), goes with
them: identifiers have digits and stay. What is left is the item's own
text, however short (a CVE id is enough to tell two notes apart); an item
that is all template has no body and is compared by its title and URL. A
text with no template is returned unchanged.

Tokens are ``\\w+`` runs, case-folded: this holds for every script; a
script written without spaces (CJK) gives one token per run of characters,
so its templates are learned at that grain.
"""

from __future__ import annotations

import base64
import itertools
import re
import zlib
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from newsfold.errors import StorageError
from newsfold.words import word_runs

K = TypeVar("K")
D = TypeVar("D", bound="Collection[Any]")  # one document's keys

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from numpy.typing import NDArray

_TOKEN = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
_START, _END = "\x02", "\x03"
_MIN_RUN = 4  # template words in a row, inside a text, before they are removed
_GAP = 2  # a slot this short between template runs is the template's blank
# Only the opening and closing words of an item are learned: templates sit
# there, and the stored state stays small for full-text feeds.
_HEAD, _TAIL = 120, 60
# Characters read per word wanted from an end of a long text before it is read whole
# (a word and its space: 6 characters in English prose, 7 to 9 in German or Finnish).
_CHARS_PER_WORD = 12


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _gram_keys(tokens: list[str]) -> list[int]:
    """The 3-gram keys of case-folded ``tokens`` between start and end markers, in order:
    each token's CRC-32, combined per position and mixed (as ``shingles`` does)."""
    seq = [_START, *tokens, _END]
    h = np.fromiter(map(zlib.crc32, map(str.encode, seq)), np.uint64, len(seq))
    with np.errstate(over="ignore"):
        acc = h[:-2] * _MIX[0] + h[1:-1] * _MIX[1] + h[2:] * _MIX[2]
        acc ^= acc >> np.uint64(33)
        acc *= np.uint64(0xFF51AFD7ED558CCD)
        acc ^= acc >> np.uint64(33)
    return (acc >> np.uint64(32)).tolist()  # type: ignore[no-any-return]


def item_keys(text: str) -> frozenset[int]:
    """The 3-gram keys ``FeedTemplate.observe`` counts for one item: those of its
    opening and closing words (none for a text without words)."""
    ends = _ends(text)
    if ends is None:  # a short text: all its words
        tokens = list(map(str.casefold, word_runs(text)))
        return frozenset(_gram_keys(tokens)) if tokens else frozenset()
    head, tail = ends
    # The opening's 3-grams with the start marker and the closing's with the end marker,
    # in one pass: the two 3-grams across the junction are left out.
    keys = _gram_keys(list(map(str.casefold, (*head, *tail))))
    return frozenset(keys[: _HEAD - 1] + keys[_HEAD + 1 :])


def _ends(text: str) -> tuple[list[str], list[str]] | None:
    """The first ``_HEAD`` and the last ``_TAIL`` words of a text with more words than
    both together (None: one with fewer).

    Only the text's two ends are read when they hold enough words: a word that ends
    within the opening span has been read whole, and so have all but the first word
    that starts within the closing span. Otherwise the whole text is read.
    """
    head_span, tail_span = _CHARS_PER_WORD * _HEAD, _CHARS_PER_WORD * _TAIL
    if len(text) >= head_span + tail_span:
        head = word_runs(text[:head_span])
        tail = word_runs(text[len(text) - tail_span :])
        if len(head) > _HEAD and len(tail) > _TAIL:
            return head[:_HEAD], tail[-_TAIL:]
    tokens = word_runs(text)
    return (tokens[:_HEAD], tokens[-_TAIL:]) if len(tokens) > _HEAD + _TAIL else None


class FeedTemplate:
    """Word 3-grams shared by a feed's recent items (see the module docstring)."""

    __slots__ = ("_counts", "_docs", "_hot", "min_docs", "min_items", "min_share", "window")

    def __init__(
        self, *, window: int = 40, min_docs: int = 3, min_share: float = 0.3, min_items: int = 8
    ) -> None:
        if window < 2 or min_docs < 2 or not 0 < min_share <= 1 or min_items < min_docs:
            raise ValueError(
                "window >= 2, min_docs >= 2, 0 < min_share <= 1 and min_items >= min_docs"
                " are required"
            )
        self.window = window
        self.min_docs = min_docs
        self.min_share = min_share
        # A feed of a few items may be a few reports of one event: the facts they share
        # are not its template. Nothing is removed until the feed has shown this many.
        self.min_items = min_items
        self._docs: deque[frozenset[int]] = deque()
        self._counts: Counter[int] = Counter()
        self._hot: frozenset[int] | None = None  # the template's 3-grams, until the next item

    @property
    def documents(self) -> int:
        return len(self._docs)

    def copy(self) -> FeedTemplate:
        out = FeedTemplate(
            window=self.window,
            min_docs=self.min_docs,
            min_share=self.min_share,
            min_items=self.min_items,
        )
        out._docs = deque(self._docs)
        out._counts = Counter(self._counts)
        out._hot = self._hot
        return out

    def _add(self, keys: frozenset[int]) -> None:
        slide(self._docs, self._counts, keys, self.window)
        self._hot = None

    def observe(self, text: str, keys: frozenset[int] | None = None) -> None:
        """Count one new item's 3-grams (its opening and closing words); once per entry.

        ``keys``: ``item_keys(text)``, when the caller has them already.
        """
        if keys is None:
            keys = item_keys(text)
        # Items with one text are the strongest evidence of a template (a channel's
        # description under every video), so an equal text counts again: the caller
        # observes each new entry once.
        if keys:
            self._add(keys)

    def _threshold(self) -> float:
        return max(self.min_docs, self.min_share * len(self._docs))

    def _template(self) -> frozenset[int]:
        """The 3-grams that are template now (kept until the window changes: a poll
        strips all its items with one window)."""
        if self._hot is None:
            need = self._threshold()
            self._hot = frozenset(k for k, n in self._counts.items() if n >= need)
        return self._hot

    def learned(self) -> int:
        """How many 3-grams are template now."""
        return len(self._template())

    def strip(self, text: str) -> str:
        """``text`` without the feed's template ("" when nothing of its own is left)."""
        if len(self._docs) < self.min_items or not text:
            return text
        template = self._template()
        if not template:  # nothing learned yet: no need to read the text
            return text
        tokens = list(map(str.casefold, word_runs(text)))
        if not tokens:
            return text
        hits = [i for i, key in enumerate(_gram_keys(tokens)) if key in template]
        if not hits:
            return text
        n = len(tokens)
        covered = np.zeros(n + 2, dtype=bool)  # with the two markers
        for i in hits:
            covered[i : i + 3] = True
        cov = covered[1:-1].copy()
        start_marked, end_marked = bool(covered[0]), bool(covered[-1])
        runs = _runs(cov)
        # A short blank between two template runs (a user name) is template too.
        for (_, a_end), (b_start, _) in itertools.pairwise(runs):
            gap = range(a_end, b_start)
            if len(gap) <= _GAP and not any(_DIGIT.search(tokens[i]) for i in gap):
                cov[a_end:b_start] = True
        drop = np.zeros(n, dtype=bool)
        for a, b in _runs(cov):
            anchored = (a == 0 and start_marked) or (b == n and end_marked)
            if b - a >= _MIN_RUN or anchored:
                drop[a:b] = True
        if not drop.any():
            return text
        if drop.all():
            return ""
        spans = [m.span() for m in _TOKEN.finditer(text)]
        pieces = [text[spans[a][0] : spans[b - 1][1]] for a, b in _runs(~drop)]
        return " ".join(pieces)

    def to_state(self) -> str:
        """The window as text: one base64 run of little-endian uint32 keys per item."""
        return " ".join(map(_key_run, self._docs))

    def load_state(self, state: str) -> None:
        """Restore ``to_state`` output (raises ``StorageError`` if it is damaged)."""
        try:
            docs: Iterable[str] = state.split()
            for doc in docs:
                raw = base64.b64decode(doc, validate=True)
                if len(raw) % 4:
                    raise ValueError("key run is not a whole number of uint32")
                self._add(frozenset(np.frombuffer(raw, "<u4").tolist()))
        except ValueError as e:
            raise StorageError(f"normalise: unreadable feed template: {e}") from e

    def __repr__(self) -> str:
        return f"FeedTemplate(documents={len(self._docs)}, learned={self.learned()})"


def _key_run(keys: frozenset[int]) -> str:
    """One item's keys, ascending, as base64 of little-endian uint32."""
    run = np.fromiter(keys, "<u4", len(keys))
    run.sort()
    return base64.b64encode(run.tobytes()).decode("ascii")


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, end) of each run of True in ``mask``."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1]).tolist()
    return list(zip(edges[::2], edges[1::2], strict=True))


__all__ = ["FeedTemplate", "item_keys", "slide"]


def slide(docs: deque[D], counts: Counter[K], keys: D, window: int) -> None:
    """Add one document's keys to a sliding window of the last ``window`` documents and their
    document frequencies (a key no document holds any more is dropped)."""
    docs.append(keys)
    counts.update(keys)
    while len(docs) > window:
        for key in docs.popleft():
            held = counts[key] - 1
            if held > 0:
                counts[key] = held
            else:
                counts.pop(key, None)
