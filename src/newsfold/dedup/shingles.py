"""Text → hashed features: word shingles for copies, weighted terms for stories.

Everything here is deterministic across processes and machines (no salted
``hash()``), because signatures are stored and compared after restarts.
Word hashes are cached: news vocabulary is Zipfian, so a bounded cache
absorbs almost every lookup and the per-token cost is one dict hit.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

U64 = np.uint64
# Odd per-position multipliers: the shingle (w0, w1, w2) hashes to
# fmix64(Σ wj·Cj) >> 32, so order matters and the combination is one
# vectorised multiply-add per position.
POSITION_MULTIPLIERS = (
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53,
    0x27D4EB2F165667C5,
    0x94D049BB133111EB,
)
MAX_SHINGLE = len(POSITION_MULTIPLIERS)

_WORD = re.compile(r"\w+")
_CACHE_LIMIT = 1 << 18
_word_cache: dict[str, int] = {}


def words(text: str) -> list[str]:
    """Lower-cased word tokens: punctuation, case and spacing edits do not break shingles."""
    return _WORD.findall(text.lower())


def word_hash(word: str) -> int:
    cached = _word_cache.get(word)
    if cached is not None:
        return cached
    value = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    if len(_word_cache) >= _CACHE_LIMIT:
        _word_cache.clear()  # bounded memory; a refill costs a few ms
    _word_cache[word] = value
    return value


def _fmix64(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    h = h ^ (h >> U64(33))
    h = h * U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> U64(33))
    h = h * U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> U64(33))


def shingle_hashes(tokens: list[str], size: int) -> NDArray[np.uint32]:
    """Distinct 32-bit hashes of the word ``size``-grams of ``tokens``.

    A text shorter than ``size`` words is one shingle of all its words, so a
    two-word text still has a signature; an empty text has none.
    """
    return shingle_hashes_of(token_hashes(tokens), size)


def token_hashes(tokens: list[str]) -> NDArray[np.uint64]:
    """``word_hash`` of each token (one dict hit per token once the cache is warm)."""
    cache = _word_cache
    try:
        return np.fromiter(map(cache.__getitem__, tokens), np.uint64, len(tokens))
    except KeyError:
        return np.array([cache[t] if t in cache else word_hash(t) for t in tokens], np.uint64)


def shingle_hashes_of(w: NDArray[np.uint64], size: int) -> NDArray[np.uint32]:
    """``shingle_hashes`` given the tokens' ``token_hashes``."""
    if not len(w):
        return np.empty(0, dtype=np.uint32)
    span = min(size, len(w))
    n = len(w) - span + 1
    with np.errstate(over="ignore"):
        acc = w[0:n] * U64(POSITION_MULTIPLIERS[0])
        for j in range(1, span):
            acc = acc + w[j : j + n] * U64(POSITION_MULTIPLIERS[j])
        mixed = _fmix64(acc)
    return np.unique((mixed >> U64(32)).astype(np.uint32))


# ---------------------------------------------------------------- story terms

# Function words and newsroom filler: they carry no event identity and would
# otherwise dominate term overlap between unrelated reports.
_STOPWORDS = frozenset(
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
_TERM = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|\d{2,}")


_term_cache: dict[str, tuple[str, bool, bool]] = {}


def _normalise(token: str) -> tuple[str, bool, bool]:
    """(term or "" when it is not a content term, starts with a capital, with a digit)."""
    term = token.lower().replace("’", "'")
    if term.endswith("'s"):
        term = term[:-2]
    if len(term) < 3 or term in _STOPWORDS:
        term = ""
    return term, token[0].isupper(), token[0].isdigit()


def term_weights(
    title: str,
    text: str,
    *,
    title_boost: float,
    name_boost: float,
    names: set[str] | None = None,
) -> dict[str, float]:
    """Bag of content terms with raw weights, before any corpus statistics.

    Names survive paraphrase better than any other word (two outlets describe
    an event differently but name the same people and places), so a
    capitalised word that does not start its sentence is boosted; so are
    title words, which state the event. ``names``, when given, receives the
    terms seen as names (capitalised mid-sentence, outside a title-case
    headline) and the numbers (years, counts, dates): the specifics that
    tell two events of the same kind apart.
    """
    bag: dict[str, float] = {}
    cache = _term_cache
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    found = set() if names is None else names
    get, weight_of, add_name = cache.get, bag.get, found.add
    for source, boost in ((title, title_boost), (text, 1.0)):
        # Tokens are counted first (in C) and weighed once per distinct token.
        firsts: list[str] = []  # sentence-initial: capitalised by grammar, not a name
        inner: list[str] = []
        inner_headline: list[str] = []  # a Title Case Headline: no evidence of a name
        for line in source.splitlines():
            tokens = _TERM.findall(line)
            if not tokens:
                continue
            firsts.append(tokens[0])
            headline = boost != 1.0 and sum(t[0].isupper() for t in tokens) * 2 > len(tokens)
            (inner_headline if headline else inner).extend(tokens[1:])
        named = boost * name_boost
        for tokens, upper_weight, as_names in (
            (firsts, boost, False),
            (inner, named, True),
            (inner_headline, named, False),
        ):
            for token, n in Counter(tokens).items():
                entry = get(token)
                if entry is None:
                    entry = cache[token] = _normalise(token)
                term, upper, digit = entry
                if term:
                    bag[term] = weight_of(term, 0.0) + n * (upper_weight if upper else boost)
                    if (upper and as_names) or digit:
                        add_name(term)
    return bag


def story_terms(
    title: str, text: str, *, title_boost: float, name_boost: float, max_terms: int
) -> tuple[NDArray[np.uint32], NDArray[np.float32], NDArray[np.bool_]]:
    """Sorted 32-bit term hashes, sublinear weights (1 + ln w), name flags of the top terms."""
    names: set[str] = set()
    bag = term_weights(title, text, title_boost=title_boost, name_boost=name_boost, names=names)
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
