"""Identifiers: the tokens that tell two near-identical reports apart.

Templated notes (a catalogue addition, an advisory, a product review) share
their wording and differ in a CVE id, a version, a model or product name, an
amount, a date or a score. Shingle Jaccard cannot see that: one token in a
hundred differs. Here each identifier is keyed by the two words before it,
its slot: two texts that fill the same slot differently ("Shelly Pro 3EM"
and "Shelly Pro 4PM", "in Microsoft products" and "in Mozilla products")
are two reports, whatever their Jaccard. A copy's edits (a dropped word, a
dateline, a trimmed paragraph) remove slots; they seldom refill one.

What counts as an identifier: a token with a digit, in any script. In
scripts with case (Latin, Greek, Cyrillic, …) also a token with a capital
after its first letter ("KEV", "iOS", "FortiWeb") and a capitalised token
that does not open a sentence (a name). Scripts without case (Arabic, CJK, …)
have digit tokens only.

A document keeps, of its first ``_WORDS`` words, the ``IDS`` identifier keys
with the smallest slots (a bottom-k sample: two documents keep the same
slots when they share them).
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

IDS = 8  # identifier keys kept per document
# A key is the slot's hash (high bits) and the identifier's (low bits) in 32 bits:
# slots must not collide (a false conflict), identifiers seldom matter if they do.
_ID_BITS = 12
_ID_MASK = (1 << _ID_BITS) - 1
# Words read: a templated note is short, and two long reports that differ only in
# an identifier past their opening are rare; the cost stays bounded.
_WORDS = 120
# Word tokens, with the inner dots, hyphens and slashes of versions and ids kept.
_TOKEN = re.compile(r"(\w+(?:[./-]\w+)*)")
_DIGIT = re.compile(r"\d")
_SENTENCE_END = re.compile(r"[.!?:;\n]")
_START = "\x02"


def identifier_keys(text: str, limit: int = IDS) -> NDArray[np.uint32]:
    """Sorted keys (slot hash, then identifier hash) of ``text``'s identifiers, the
    ``limit`` smallest."""
    # Separators and tokens, alternating (and the rest of the text): C speed.
    parts = _TOKEN.split(text, maxsplit=_WORDS)
    tokens = parts[1 : 2 * _WORDS : 2]
    if not tokens:
        return np.empty(0, np.uint64)
    low = "\x00".join(tokens).casefold().split("\x00")
    if len(low) != len(tokens):  # a folding that made a separator: one by one
        low = [t.casefold() for t in tokens]
    low[:0] = [_START, _START]  # low[i + 2] is token i's, after two start markers
    crc = zlib.crc32
    keys: set[int] = set()
    # Plain words (lower case, letters only) are most tokens: one C test each skips them.
    for i in [i for i, t in enumerate(tokens) if not t.islower() or not t.isalpha()]:
        token = tokens[i]
        if not _DIGIT.search(token):
            rest = token[1:]
            if rest.islower() or not rest:  # only its first letter a capital: a name,
                if token.islower() or i == 0 or _SENTENCE_END.search(parts[2 * i]):
                    continue  # unless it opens a sentence (or it has no case at all)
            elif rest == low[i + 2][1:]:
                continue  # no capital in it: a script without case
        slot = crc(b"\x1f" + low[i + 1].encode(), crc(low[i].encode()))
        keys.add((slot >> _ID_BITS) << _ID_BITS | (crc(low[i + 2].encode()) & _ID_MASK))
    return np.array(sorted(keys)[:limit], np.uint32)


def conflicts(a: NDArray[np.uint32], b: NDArray[np.uint32]) -> tuple[int, int]:
    """(slots filled differently, slots both fill) of two ``identifier_keys`` samples.

    Only slots below both samples' cut-offs are comparable: above it a full
    sample may have dropped what the other kept. (0, 0) when one sample holds
    all of the other's keys: then no slot can differ.
    """
    if not len(a) or not len(b):
        return 0, 0
    keys_a, keys_b = set(a.tolist()), set(b.tolist())
    if keys_a <= keys_b or keys_b <= keys_a:
        return 0, 0  # one fills no slot the other lacks: a copy's edits only remove
    full = [int(x[-1]) >> _ID_BITS for x in (a, b) if len(x) >= IDS]
    limit = min(full, default=1 << 32)
    slots_a: dict[int, set[int]] = {}
    for key in keys_a:
        if key >> _ID_BITS <= limit:
            slots_a.setdefault(key >> _ID_BITS, set()).add(key & _ID_MASK)
    slots_b: dict[int, set[int]] = {}
    for key in keys_b:
        if key >> _ID_BITS <= limit:
            slots_b.setdefault(key >> _ID_BITS, set()).add(key & _ID_MASK)
    shared = slots_a.keys() & slots_b.keys()
    differ = sum(1 for s in shared if slots_a[s] - slots_b[s] and slots_b[s] - slots_a[s])
    return differ, len(shared)


__all__ = ["IDS", "conflicts", "identifier_keys"]
