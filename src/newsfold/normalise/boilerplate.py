"""Boilerplate removal, layers 2 and 3 (layer 1, the structural one, is ``html``'s).

Layer 2 (``clean_lines``) applies the line rules of ``rules`` with what we know
about the source (its names and domain) and the article (its title).
Layer 3 (``BoilerplateModel``) learns, per source, the lines that recur in a
large share of its recent articles (a newsletter plug, a standard disclaimer,
"Follow us on …") and removes them. Its state is a window of recent articles'
line fingerprints, serialised as JSON so it survives restarts.

Feed the model each new article once, either the text before learned removal
(``normalise_entry(..., observe=True)``) or ``Article.text`` afterwards: the model
remembers what it removed from its recent outputs and counts those lines back in,
so it never forgets a line merely because it stopped letting it through.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, OrderedDict, deque
from typing import TYPE_CHECKING

from newsfold.errors import StorageError
from newsfold.normalise import rules
from newsfold.normalise.template import FeedTemplate, slide

if TYPE_CHECKING:
    from collections.abc import Iterable

    from newsfold.config import NormaliseSettings

LEARNED_RULE = "learned"
_JSON_VERSION = 1
_DIGITS = re.compile(r"\d+")
_SPACE_PUNCT = re.compile(r"[\W_]+")
# ASCII twins of the two: every non-alphanumeric character is a separator.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
# Lines this long are article prose even when repeated (a re-sent article): a
# standing disclaimer is rarely longer.
_MAX_LEARNED_CHARS = 400
# Outputs of ``clean`` remembered (not stored) so ``observe`` can restore their lines.
_REMEMBERED_OUTPUTS = 512


def clean_lines(
    lines: list[str], *, site: rules.SiteNames, title: str = ""
) -> tuple[list[str], list[str]]:
    """Apply the line rules; returns (kept lines, names of rules that removed something)."""
    fired: list[str] = []

    def fire(name: str) -> None:
        if name not in fired:
            fired.append(name)

    # The headline repeated at the top of the body (often under a banner line).
    for index, line in enumerate(lines[:3]):
        if title and rules.same_text(line, title):
            lines = lines[:index] + lines[index + 1 :]
            fire("title_repeat")
            break
    kept: list[str] = []
    last = len(lines) - 1
    for index, line in enumerate(lines):
        if line.count(" ") >= rules.LONG_WORDS:
            # Prose: no line rule applies to a paragraph this long.
            stripped = rules.strip_read_more(line)
            if stripped != line:
                fire("read_more")
            kept.append(stripped)
            continue
        if rules.is_residue(line):
            fire("residue")
        elif rules.is_photo_credit(line):
            fire("photo_credit")
        elif rules.is_byline(line):
            fire("byline")
        elif rules.is_call_to_action(line):
            fire("call_to_action")
        elif rules.is_copyright(line):
            fire("copyright")
        # Banners sit at the top or the bottom of the body, never in the middle.
        elif (index <= 2 or index >= last - 1) and rules.is_site_banner(line, site):
            fire("site_banner")
        else:
            stripped = rules.strip_read_more(line)
            if stripped != line:
                fire("read_more")
                if not stripped:
                    continue
            kept.append(stripped)
    # Trailing one-word leftovers of widgets ("tracking", "Advertisement").
    while len(kept) > 1 and rules.is_trailing_word(kept[-1]):
        kept.pop()
        fire("trailing_word")
    return kept, fired


def comparison_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """What near-duplicate detection compares: no datelines, reporting credits or subheads."""
    fired: list[str] = []
    out: list[str] = []
    for index, line in enumerate(lines):
        if index < 2:
            line, name = rules.strip_agency_prefix(line)  # noqa: PLW2901 - rewritten line
            if name and name not in fired:
                fired.append(name)
        if rules.is_reporting_credit(line):
            if "reporting_credit" not in fired:
                fired.append("reporting_credit")
            continue
        out.append(line)
    # Subheads add nothing two copies of a story could disagree on, but a short
    # summary-only entry may be nothing but short lines: keep those.
    prose = [line for line in out if not rules.is_subhead(line)]
    if prose and len(prose) < len(out):
        out = prose
        fired.append("subhead")
    return out, fired


def line_key(line: str) -> str:
    """A fingerprint that ignores case, punctuation and numbers ("© 2023" = "© 2024")."""
    if line.isascii():
        # The same squashing at C speed: the regexes test every character's class.
        low = line.lower()
        if any(d in low for d in "0123456789"):
            low = _ASCII_DIGITS.sub("0", low)
        squashed = " ".join(low.translate(_ASCII_SEPARATORS).split())
    else:
        squashed = _SPACE_PUNCT.sub(" ", _DIGITS.sub("0", line.casefold())).strip()
    return hashlib.blake2b(squashed.encode("utf-8", "replace"), digest_size=6).hexdigest()


def _text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


class BoilerplateModel:
    """Lines recurring in at least ``min_share`` of a source's last ``window`` articles
    (and in at least ``min_docs`` of them) are boilerplate for that source.

    ``template`` is the same source's item template (word 3-grams, see
    ``template``): learned from the same articles, kept and stored with it.
    """

    __slots__ = ("_counts", "_docs", "_removed", "min_docs", "min_share", "template", "window")

    def __init__(self, *, window: int = 50, min_share: float = 0.5, min_docs: int = 5) -> None:
        if window < 2 or not 0 < min_share <= 1 or min_docs < 2:
            raise ValueError("window >= 2, 0 < min_share <= 1 and min_docs >= 2 are required")
        self.window = window
        self.min_share = min_share
        self.min_docs = min_docs
        self._docs: deque[tuple[str, ...]] = deque()
        self._counts: Counter[str] = Counter()
        self._removed: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self.template = FeedTemplate()

    @classmethod
    def from_settings(cls, settings: NormaliseSettings) -> BoilerplateModel:
        return cls(
            window=settings.boilerplate_window,
            min_share=settings.boilerplate_min_share,
            min_docs=settings.boilerplate_min_docs,
        )

    @property
    def documents(self) -> int:
        return len(self._docs)

    def _keys(self, text: str) -> tuple[str, ...]:
        seen = dict.fromkeys(
            line_key(line)
            for line in text.splitlines()
            if line.strip() and len(line) <= _MAX_LEARNED_CHARS
        )
        return tuple(seen)

    def _add(self, keys: tuple[str, ...]) -> None:
        slide(self._docs, self._counts, keys, self.window)

    def observe(self, text: str, template_keys: frozenset[int] | None = None) -> None:
        """Count one new article's lines (text after the rules, before learned removal)
        and its template 3-grams (``template_keys``: ``template.item_keys(text)``, when
        the caller has them)."""
        self.template.observe(text, template_keys)
        keys = self._keys(text)
        removed = self._removed.get(_text_key(text))
        if removed:
            keys = tuple(dict.fromkeys(removed + keys))
        if not keys:
            return
        # The same article seen again (a re-sent or edited entry) must not teach
        # the model that its own sentences are boilerplate.
        if any(doc == keys for doc in self._docs):
            return
        self._add(keys)

    def is_boilerplate(self, line: str) -> bool:
        count = self._counts.get(line_key(line), 0)
        return count >= self.min_docs and count >= self.min_share * len(self._docs)

    def learned_lines(self) -> int:
        threshold = max(self.min_docs, self.min_share * len(self._docs))
        return sum(1 for count in self._counts.values() if count >= threshold)

    def clean(self, text: str) -> tuple[str, tuple[str, ...]]:
        """(text without learned lines, rules fired). Never empties an article."""
        if len(self._docs) < self.min_docs:
            return text, ()
        lines = text.splitlines()
        kept = [line for line in lines if not self.is_boilerplate(line)]
        if len(kept) == len(lines) or not kept:
            return text, ()
        cleaned = "\n".join(kept)
        self._removed[_text_key(cleaned)] = self._keys(text)
        self._removed.move_to_end(_text_key(cleaned))
        while len(self._removed) > _REMEMBERED_OUTPUTS:
            self._removed.popitem(last=False)
        return cleaned, (LEARNED_RULE,)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": _JSON_VERSION,
                "window": self.window,
                "min_share": self.min_share,
                "min_docs": self.min_docs,
                "docs": [list(doc) for doc in self._docs],
                "template": self.template.to_state(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str) -> BoilerplateModel:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("version") != _JSON_VERSION:
                raise ValueError("unknown format version")
            model = cls(
                window=int(raw["window"]),
                min_share=float(raw["min_share"]),
                min_docs=int(raw["min_docs"]),
            )
            docs: Iterable[object] = raw["docs"]
            for doc in docs:
                if not isinstance(doc, list) or not all(isinstance(k, str) for k in doc):
                    raise ValueError("docs must be lists of strings")
                model._add(tuple(doc))
            template = raw.get("template", "")  # absent before templates were learned
            if not isinstance(template, str):
                raise ValueError("template must be a string")
            model.template.load_state(template)
        except (ValueError, TypeError, KeyError) as e:
            raise StorageError(f"normalise: unreadable boilerplate model: {e}") from e
        return model

    def __repr__(self) -> str:
        return (
            f"BoilerplateModel(documents={len(self._docs)}, learned={self.learned_lines()}, "
            f"window={self.window}, template={self.template!r})"
        )


__all__ = ["LEARNED_RULE", "BoilerplateModel", "clean_lines", "comparison_lines", "line_key"]
