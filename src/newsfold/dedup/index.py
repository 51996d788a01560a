"""A compact many-to-many map from 64-bit keys to document slots.

Used for LSH bands (one key per band per document), content hashes and
canonical URLs. datasketch's ``MinHashLSH`` keeps a dict of lists of Python
byte strings per band, several hundred bytes per band per document; this
keeps 12 bytes per key in two sorted numpy arrays plus a small dict of
recent additions that is merged in when it grows (amortised O(log n) per
insert, as in a log-structured merge tree). Lookups are binary searches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import NDArray

_MIN_PENDING = 4096
_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def stable_argsort(keys: NDArray[np.uint64]) -> NDArray[np.intp]:
    """``np.argsort(keys, kind="stable")``, faster.

    numpy sorts plain 64-bit integers several times faster than it argsorts
    them: the high half of each key is sorted with the position in the low
    half, and only runs of equal high halves are then put in (key, position)
    order.
    """
    n = len(keys)
    if n >= 2**32:
        return np.argsort(keys, kind="stable")
    packed = np.sort(((keys >> _SHIFT) << _SHIFT) | np.arange(n, dtype=np.uint64))
    order = (packed & _LOW).astype(np.intp)
    high = packed >> _SHIFT
    del packed
    tie = high[1:] == high[:-1]
    if tie.any():
        in_run = np.zeros(n, np.bool_)
        in_run[1:] |= tie
        in_run[:-1] |= tie
        pos = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate(([True], ~tie)))[pos]
        sub = order[pos]
        order[pos] = sub[np.lexsort((sub, keys[sub] & _LOW, run))]
    return order


class KeyIndex:
    """uint64 key → slots, with bulk loading, lookups and slot renumbering."""

    __slots__ = ("_keys", "_pending", "_pending_count", "_vals")

    def __init__(self) -> None:
        self._keys: NDArray[np.uint64] = np.empty(0, dtype=np.uint64)
        self._vals: NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._pending: dict[int, list[int]] = {}
        self._pending_count = 0

    def __len__(self) -> int:
        return len(self._keys) + self._pending_count

    def add(self, keys: Iterable[int], slot: int) -> None:
        for key in keys:
            self._pending.setdefault(int(key), []).append(slot)
            self._pending_count += 1
        if self._pending_count > max(_MIN_PENDING, len(self._keys) // 4):
            self.flush()

    def bulk(self, keys: NDArray[np.uint64], slots: NDArray[np.int32]) -> None:
        """Add many (key, slot) pairs with one sort: the rebuild path."""
        self.flush()
        self._merge(keys.astype(np.uint64, copy=False), slots.astype(np.int32, copy=False))

    def flush(self) -> None:
        if not self._pending:
            return
        keys = np.fromiter(
            (k for k, v in self._pending.items() for _ in v),
            dtype=np.uint64,
            count=self._pending_count,
        )
        vals = np.fromiter(
            (s for v in self._pending.values() for s in v),
            dtype=np.int32,
            count=self._pending_count,
        )
        self._pending.clear()
        self._pending_count = 0
        self._merge(keys, vals)

    def _merge(self, keys: NDArray[np.uint64], vals: NDArray[np.int32]) -> None:
        all_keys = np.concatenate((self._keys, keys))
        all_vals = np.concatenate((self._vals, vals))
        # Stable sort keeps slots of one key in insertion order: deterministic output.
        order = stable_argsort(all_keys)
        self._keys = all_keys[order]
        self._vals = all_vals[order]

    def get(self, keys: NDArray[np.uint64]) -> list[int]:
        """Every slot stored under any of ``keys`` (with repeats, in stable order)."""
        out: list[int] = []
        if len(self._keys):
            lo = np.searchsorted(self._keys, keys, side="left")
            hi = np.searchsorted(self._keys, keys, side="right")
            for i in np.flatnonzero(hi > lo):
                out.extend(self._vals[lo[i] : hi[i]].tolist())
        if self._pending:
            for key in keys.tolist():
                found = self._pending.get(key)
                if found:
                    out.extend(found)
        return out

    def renumber(self, mapping: NDArray[np.int32]) -> None:
        """Apply ``slot → mapping[slot]``; entries mapped to -1 are dropped."""
        self.flush()
        new = mapping[self._vals]
        keep = new >= 0
        self._keys = self._keys[keep]
        self._vals = new[keep].astype(np.int32)

    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._vals.nbytes) + 100 * self._pending_count
