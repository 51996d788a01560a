"""Story terms: the weighted words that say what an article reports, in its language.

A story joins reports of one event written by different outlets in their own
words, so its terms are the content words of a text, reduced to a stem and
weighted by where they stand. What a word is depends on the language the
identifier reports (ISO 639-1), never on an assumption that text is English:

* **Words.** Runs of letters (and numbers of two or more digits) in scripts
  with spaces between words. Scripts without them (Han, Kana, Thai, Lao,
  Khmer, Myanmar, Tibetan) have no word boundary to split on: their runs
  become overlapping character bigrams, the usual unit for CJK retrieval.
* **Stems.** Snowball (PyStemmer) for every language Snowball covers, so that
  *attack/attacks/attacked* and *chinesische/chinesischen* meet; a language
  without a stemmer keeps the lower-cased word.
* **Stop words.** Function words carry no event identity: the newsroom list
  below for English, the ``stop-words`` package's list for the other
  languages it has, none for the rest (IDF discounts what is common anyway).
  Month and weekday names (CLDR, through Babel) are stop words in every
  language: every report of a day names its date, whatever the event.
* **Not words.** Web and mail addresses and @handles are where a text links,
  not what it reports (a video's description is mostly links).
* **Names.** The specifics that tell two events of one kind apart: numbers
  (years, counts, versions, ids), words with a capital inside them or in
  capitals throughout (*BIOS*, *iPhone*, *ThinkPad*) in every cased script,
  and, only where the language capitalises names but not common nouns, a
  capitalised word inside a sentence. German and Luxembourgish capitalise
  every noun and scripts such as Arabic or Urdu have no case: there
  capitalisation says nothing, and the rarity of a word (its IDF, applied
  when a story is matched) is what makes it specific.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np
import Stemmer
import stop_words
from babel import Locale, UnknownLocaleError

from newsfold.dedup.shingles import U64, word_hash

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

# English function words and newsroom filler: they would otherwise dominate the
# term overlap between unrelated reports (tuned on English news).
_ENGLISH_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each even
    few for from further get got had has have having he her here hers herself him himself his
    how i if in into is it its itself just last like made make many may me might more most mr
    mrs ms much my myself new no nor not now of off on once one only or other our ours out over
    own people reported report reports said same say says she should since so some still such
    than that the their theirs them themselves then there these they this those through time
    to told too two under until up us very was way we week well were what when where which
    while who whom why will with would year years you your
    updated published posted gmt bst utc est edt pst pdt cet am pm
    monday tuesday wednesday thursday friday saturday sunday today yesterday""".split()  # noqa: SIM905 - a word list reads better as prose
)

# ISO 639-1 → Snowball algorithm (https://snowballstem.org/algorithms/).
_SNOWBALL = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "eo": "esperanto", "es": "spanish", "et": "estonian",
    "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi",
    "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nb": "norwegian", "ne": "nepali", "nl": "dutch", "nn": "norwegian",
    "no": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sr": "serbian", "st": "sesotho", "sv": "swedish", "ta": "tamil",
    "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
# Stems by prefix where it beats the language's Snowball stemmer. German, measured on two
# outlets' reports of the same events (pair F1 of the story tier): the first 5 letters
# 0.80, Snowball 0.69. Compounds inflect and derive inside the word
# (Kunden/Kundendaten, chinesische/China) where Snowball's suffix rules do not reach.
_PREFIX_STEM = {"de": 5}
# Languages that join ad-hoc compounds with hyphens (*British-Airways-Kunden*,
# *BIOS-Option*), where English would write separate words: the parts are the words other
# outlets use. English hyphenations are mostly fixed words (*co-founder*, *42-year-old*)
# and stay whole (splitting them cost English stories 0.02 ARI on ECB+).
_HYPHEN_COMPOUNDS = frozenset({"de", "lb", "nl", "da", "sv", "nb", "nn", "no", "fi", "is"})
# Languages that capitalise every noun: a capital is no sign of a name there.
_NOUNS_CAPITALISED = frozenset({"de", "lb"})
# Runs of letters in scripts written without spaces between words.
_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
)
# A word (apostrophes and hyphens inside: *O'Brien*, *co-founder*), a run of an unspaced
# script, or a number with its separators and unit (*185.000*, *1.30*, *5G*). The three start
# on different characters (an unspaced script's own digits start a run), so the commonest,
# a word, is tried first.
_TERM = re.compile(rf"[^\W\d_{_UNSPACED}](?:[\w'’-]*[^\W_])?|[{_UNSPACED}]+|\d+(?:[.,]\d+)*[^\W_]*")
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_IS_UNSPACED = re.compile(rf"[{_UNSPACED}]")
# Addresses and handles: a URL (with or without its scheme), an e-mail address, an @handle.
_NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<!\w)@\w+")
_CACHE_LIMIT = 1 << 18
_first_char = itemgetter(0)


@dataclass(frozen=True, slots=True)
class Language:
    """How one language's words become terms."""

    stem: Callable[[str], str]
    stopwords: frozenset[str]
    capital_names: bool  # a capitalised word inside a sentence is a name
    split_hyphens: bool  # a hyphenated compound is read as its parts


def _identity(word: str) -> str:
    return word


def _prefix(word: str, *, size: int) -> str:
    return word[:size]


@lru_cache(maxsize=64)
def language(code: str | None) -> Language:
    """The term rules for an ISO 639-1 code (``None``: unknown, no stemming or stop words)."""
    code = (code or "").lower()
    algorithm = _SNOWBALL.get(code)
    prefix = _PREFIX_STEM.get(code)
    if prefix:
        stem: Callable[[str], str] = partial(_prefix, size=prefix)
    elif algorithm:
        # No cache of its own (0): the normaliser caches each token's term already.
        stem = Stemmer.Stemmer(algorithm, 0).stemWord
    else:
        stem = _identity
    if code == "en":
        stops = _ENGLISH_STOPWORDS
    else:
        try:
            stops = frozenset(w.lower() for w in stop_words.get_stop_words(code))
        except stop_words.StopWordError:
            stops = frozenset()
    stops |= _calendar_words(code)
    # Unknown languages keep the capital rule of most cased scripts; a script
    # without case never has a capital to read.
    return Language(
        stem,
        stops,
        capital_names=code not in _NOUNS_CAPITALISED,
        split_hyphens=code in _HYPHEN_COMPOUNDS,
    )


def _calendar_words(code: str) -> frozenset[str]:
    """The language's month and weekday names, wide and abbreviated, as CLDR spells them
    standing alone and inside a date (*März*, *janv.*, *января*)."""
    try:
        locale = Locale.parse(code) if code else None
    except (ValueError, UnknownLocaleError):
        locale = None
    if locale is None:
        return frozenset()
    words: set[str] = set()
    for names in (locale.months, locale.days):
        for context in names.values():
            for width in ("wide", "abbreviated"):
                words.update(str(w).lower().rstrip(".") for w in context.get(width, {}).values())
    return frozenset(w for w in words if not _IS_UNSPACED.search(w))


class _Normaliser:
    """token → (term or "", capitalised, specific), cached per language.

    ``specific`` marks the tokens that name something in any cased script:
    numbers, and words with a capital after their first letter.
    """

    __slots__ = ("cache", "lang")

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.cache: dict[str, tuple[str, bool, bool]] = {}

    def __call__(self, token: str) -> tuple[str, bool, bool]:
        found = self.cache.get(token)
        if found is not None:
            return found
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        lower = token.lower().replace("’", "'")
        if lower.endswith("'s"):
            lower = lower[:-2]
        digit = token[0].isdigit()
        if digit and _THOUSANDS.fullmatch(lower):
            lower = lower.replace(".", "").replace(",", "")  # 185.000 and 185,000 alike
        short = len(lower) < 3 and not _IS_UNSPACED.match(lower)
        if short or lower in self.lang.stopwords:
            term = ""
        elif digit:
            term = lower
        else:
            term = self.lang.stem(lower)
        inner_capital = any(map(str.isupper, token[1:]))
        found = (term, token[0].isupper(), digit or inner_capital)
        self.cache[token] = found
        return found


@lru_cache(maxsize=64)
def _normaliser(code: str | None) -> _Normaliser:
    return _Normaliser(language(code))


def _tokens(line: str, *, split_hyphens: bool) -> list[str]:
    tokens: list[str] = _TERM.findall(line)
    if not (split_hyphens and "-" in line) and not _IS_UNSPACED.search(line):
        return tokens  # the common case: every token is a word as found
    out: list[str] = []
    for token in tokens:
        if _IS_UNSPACED.match(token):
            # Overlapping character bigrams; a single character stands alone.
            out.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif split_hyphens and "-" in token:
            out.extend(part for part in token.split("-") if part)
        else:
            out.append(token)
    return out


def term_weights(
    title: str,
    text: str,
    *,
    title_boost: float,
    name_boost: float,
    language_code: str | None = None,
    names: set[str] | None = None,
    title_terms: set[str] | None = None,
) -> dict[str, float]:
    """Bag of content terms with raw weights, before any corpus statistics.

    Names survive paraphrase better than any other word (two outlets describe
    an event differently but name the same people and places), so a name is
    boosted; so are title words, which state the event. ``names``, when
    given, receives the terms seen as names: the specifics that tell two
    events of the same kind apart (see the module docstring for what counts
    as a name in which language). A Title Case Headline capitalises every
    word, so its capitals are no evidence of a name. ``title_terms``, when
    given, receives the terms of the title.
    """
    normalise = _normaliser(language_code)
    known = normalise.cache.get  # a token seen before costs a lookup, not a call
    capital_names = normalise.lang.capital_names
    split_hyphens = normalise.lang.split_hyphens
    bag: dict[str, float] = {}
    found = set() if names is None else names
    weight_of, add_name = bag.get, found.add
    for reading_text, (source, boost) in enumerate(((title, title_boost), (text, 1.0))):
        firsts: list[str] = []  # sentence-initial: capitalised by grammar, not a name
        inner: list[str] = []
        inner_headline: list[str] = []
        # One search per text: with no unspaced script (nor a hyphen to split) in it,
        # every line's tokens are its words as found.
        as_found = not (split_hyphens and "-" in source) and (
            source.isascii() or not _IS_UNSPACED.search(source)
        )
        for line in source.splitlines():
            if "@" in line or "www." in line or "://" in line:
                line = _NOT_WORDS.sub(" ", line)  # noqa: PLW2901 - the line without its addresses
            if as_found:
                tokens: list[str] = _TERM.findall(line)
            else:
                tokens = _tokens(line, split_hyphens=split_hyphens)
            if not tokens:
                continue
            firsts.append(tokens[0])
            headline = (boost != 1.0 or len(tokens) > 2) and sum(
                map(str.isupper, map(_first_char, tokens))
            ) * 2 > len(tokens)
            (inner_headline if headline else inner).extend(tokens[1:])
        named = boost * name_boost
        for tokens, capitals_are_names in (
            (firsts, False),
            (inner, capital_names),
            (inner_headline, False),
        ):
            for token, n in Counter(tokens).items():
                term, upper, specific = known(token) or normalise(token)
                if not term:
                    continue
                is_name = specific or (upper and capitals_are_names)
                bag[term] = weight_of(term, 0.0) + n * (named if is_name else boost)
                if is_name:
                    add_name(term)
        if title_terms is not None and not reading_text:
            title_terms.update(bag)
    return bag


def story_terms(
    title: str,
    text: str,
    *,
    title_boost: float,
    name_boost: float,
    max_terms: int,
    language_code: str | None = None,
    title_terms: set[str] | None = None,
) -> tuple[NDArray[np.uint32], NDArray[np.float32], NDArray[np.bool_]]:
    """Sorted 32-bit term hashes, sublinear weights (1 + ln w), name flags of the top terms
    (``title_terms``, when given, receives all the title's terms)."""
    names: set[str] = set()
    bag = term_weights(
        title,
        text,
        title_boost=title_boost,
        name_boost=name_boost,
        language_code=language_code,
        names=names,
        title_terms=title_terms,
    )
    # Ties broken by the term so the kept set does not depend on text order.
    items = list(bag.items())
    if len(items) > max_terms:
        # Only the terms at least as heavy as the max_terms-th heaviest can be
        # kept: sort those (ties included), not the whole bag.
        ws = np.fromiter(bag.values(), np.float64, len(items))
        cut = np.partition(ws, len(items) - max_terms)[len(items) - max_terms]
        items = [items[i] for i in np.flatnonzero(ws >= cut).tolist()]
    # By term, then stably by falling weight: the order of the key (-weight, term).
    top = sorted(sorted(items), key=itemgetter(1), reverse=True)[:max_terms]
    terms = [t for t, _ in top]
    keys = (np.fromiter(map(word_hash, terms), np.uint64, len(top)) >> U64(32)).astype(np.uint32)
    weights = np.fromiter(
        (1.0 + math.log(w) if w >= 1 else w for _, w in top), dtype=np.float32, count=len(top)
    )
    flags = np.fromiter(map(names.__contains__, terms), dtype=np.bool_, count=len(top))
    order = np.argsort(keys)
    return keys[order], weights[order], flags[order]


__all__ = ["Language", "language", "story_terms", "term_weights"]
