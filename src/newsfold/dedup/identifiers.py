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

A document keeps the ``IDS`` identifier keys with the smallest slots (a
bottom-k sample: two documents keep the same slots when they share them).
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

IDS = 16  # identifier keys kept per document
# Word tokens, with the inner dots, hyphens and slashes of versions and ids kept.
_TOKEN = re.compile(r"\w+(?:[./-]\w+)*")
_SENTENCE_END = re.compile(r"[.!?:;\n]")
_START = "\x02"


def _is_identifier(token: str, opens_sentence: bool) -> bool:
    if any(c.isdigit() for c in token):
        return True
    if token[1:] != token[1:].lower():
        return True  # a capital inside the word: an acronym or a product's name
    return not opens_sentence and token[0] != token[0].lower()


def identifier_keys(text: str, limit: int = IDS) -> NDArray[np.uint64]:
    """Sorted keys (slot hash << 32 | identifier hash) of ``text``'s identifiers, the
    ``limit`` smallest."""
    keys: set[int] = set()
    before = (_START, _START)
    last_end = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        opens = last_end == 0 or _SENTENCE_END.search(text, last_end, match.start()) is not None
        last_end = match.end()
        low = token.casefold()
        if _is_identifier(token, opens):
            slot = zlib.crc32(f"{before[0]}\x1f{before[1]}".encode())
            keys.add(slot << 32 | zlib.crc32(low.encode()))
        before = (before[1], low)
    return np.array(sorted(keys)[:limit], np.uint64)


def conflicts(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> tuple[int, int]:
    """(slots filled differently, slots both fill) of two ``identifier_keys`` samples.

    Only slots below both samples' cut-offs are comparable: above it a full
    sample may have dropped what the other kept.
    """
    if not len(a) or not len(b):
        return 0, 0
    full = [int(x[-1]) >> 32 for x in (a, b) if len(x) >= IDS]
    limit = min(full, default=1 << 32)
    slots_a: dict[int, set[int]] = {}
    for key in a.tolist():
        if key >> 32 <= limit:
            slots_a.setdefault(key >> 32, set()).add(key & 0xFFFFFFFF)
    slots_b: dict[int, set[int]] = {}
    for key in b.tolist():
        if key >> 32 <= limit:
            slots_b.setdefault(key >> 32, set()).add(key & 0xFFFFFFFF)
    shared = slots_a.keys() & slots_b.keys()
    differ = sum(1 for s in shared if slots_a[s] - slots_b[s] and slots_b[s] - slots_a[s])
    return differ, len(shared)


__all__ = ["IDS", "conflicts", "identifier_keys"]
