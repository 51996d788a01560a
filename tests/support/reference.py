"""Slow reference twins of the dedup hashing, checked against datasketch.

``shingle_strings`` gives the shingles themselves and ``shingle_hash_bytes``
hashes one of them as ``shingles.shingle_hashes`` does in bulk: together they
make datasketch's own ``MinHash`` the reference for our signatures
(``to_lean`` turns a signature into datasketch's object).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datasketch import LeanMinHash

from newsfold.dedup import minhash
from newsfold.dedup.shingles import POSITION_MULTIPLIERS, word_hash

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_MASK64 = (1 << 64) - 1


def _fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def shingle_hash_bytes(shingle: bytes) -> int:
    """Scalar twin of ``shingle_hashes`` for one space-joined shingle (a datasketch hashfunc)."""
    acc = 0
    for j, token in enumerate(shingle.decode().split(" ")):
        acc = (acc + word_hash(token) * POSITION_MULTIPLIERS[j]) & _MASK64
    return _fmix64(acc) >> 32


def shingle_strings(tokens: list[str], size: int) -> list[bytes]:
    """The shingles themselves: a text shorter than ``size`` words is one shingle."""
    if not tokens:
        return []
    span = min(size, len(tokens))
    return [" ".join(tokens[i : i + span]).encode() for i in range(len(tokens) - span + 1)]


def to_lean(sig: NDArray[np.uint32]) -> LeanMinHash:
    """The same signature as a datasketch object."""
    return LeanMinHash(seed=minhash.SEED, hashvalues=sig, scheme=minhash.SCHEME)


__all__ = ["shingle_hash_bytes", "shingle_strings", "to_lean"]
