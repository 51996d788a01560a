"""A compact many-to-many map from 64-bit keys to document slots.

Used for LSH bands (one key per band per document), content hashes and
canonical URLs. datasketch's ``MinHashLSH`` keeps a dict of lists of Python
byte strings per band, several hundred bytes per band per document; this
keeps 12 bytes per key in two sorted numpy arrays plus a small dict of
recent additions that is merged in when it grows (amortised O(log n) per
insert, as in a log-structured merge tree). Lookups are binary searches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

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
            _extend_pending(out, self._pending, keys)
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


class IdMap:
    """Article id → row, like a ``dict[int, int]`` but compact.

    A dict costs about 100 bytes an entry (the entry and two int objects);
    here a bulk load is two sorted arrays (12 bytes an entry, lookups by
    binary search) and later insertions go to a small dict, folded into the
    arrays once it grows, as in ``KeyIndex``.
    """

    __slots__ = ("_dead", "_extra", "_ids", "_rows")

    def __init__(self) -> None:
        self._ids: NDArray[np.int64] = np.empty(0, np.int64)
        self._rows: NDArray[np.int32] = np.empty(0, np.int32)  # -1: removed
        self._extra: dict[int, int] = {}
        self._dead = 0

    @classmethod
    def of(cls, ids: NDArray[np.int64], rows: NDArray[np.integer[Any]]) -> IdMap:
        found = cls()
        found.bulk(ids, rows)
        return found

    def _at(self, key: int) -> int:
        """Position of a live ``key`` in the arrays, or -1."""
        ids = self._ids
        if not len(ids):
            return -1
        k = int(ids.searchsorted(key))
        if k < len(ids) and int(ids[k]) == key and self._rows[k] >= 0:
            return k
        return -1

    def __len__(self) -> int:
        return len(self._ids) - self._dead + len(self._extra)

    def __contains__(self, key: object) -> bool:
        if key in self._extra:
            return True
        return isinstance(key, int) and self._at(key) >= 0

    def get(self, key: int, default: int | None = None) -> int | None:
        found = self._extra.get(key)
        if found is not None:
            return found
        k = self._at(key)
        return int(self._rows[k]) if k >= 0 else default

    def __getitem__(self, key: int) -> int:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: int, row: int) -> None:
        k = self._at(key)
        if k >= 0:
            self._rows[k] = row
            return
        self._extra[key] = row
        if len(self._extra) > max(_MIN_PENDING, len(self._ids) // 4):
            self._fold()

    def pop(self, key: int, default: int | None = None) -> int | None:
        found = self._extra.pop(key, None)
        if found is not None:
            return found
        k = self._at(key)
        if k < 0:
            return default
        row = int(self._rows[k])
        self._rows[k] = -1
        self._dead += 1
        return row

    def __delitem__(self, key: int) -> None:
        if self.pop(key) is None:
            raise KeyError(key)

    def __iter__(self) -> Iterator[int]:
        yield from self._ids[self._rows >= 0].tolist()
        yield from list(self._extra)

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
        """Every (id, row) pair as two arrays, ids ascending."""
        self._fold()
        return self._ids, self._rows

    def bulk(self, ids: NDArray[np.int64], rows: NDArray[np.integer[Any]]) -> None:
        """Set many keys at once (a later pair wins over an earlier one for the same key)."""
        live = self._rows >= 0
        extra = self._extra
        all_ids = np.concatenate(
            (self._ids[live], np.fromiter(extra, np.int64, len(extra)), ids.astype(np.int64))
        )
        all_rows = np.concatenate(
            (
                self._rows[live],
                np.fromiter(extra.values(), np.int32, len(extra)),
                rows.astype(np.int32),
            )
        )
        if len(all_ids) < 2 or (all_ids[1:] > all_ids[:-1]).all():
            # Already in order and distinct (ids of a rebuild usually are): nothing to sort.
            self._ids, self._rows = all_ids, all_rows
            self._extra = {}
            self._dead = 0
            return
        # Ids are positive: their unsigned order is their order.
        if all_ids.min() >= 0:
            order = stable_argsort(all_ids.view(np.uint64))
        else:
            order = np.argsort(all_ids, kind="stable")
        all_ids, all_rows = all_ids[order], all_rows[order]
        last = np.ones(len(all_ids), np.bool_)
        last[:-1] = all_ids[1:] != all_ids[:-1]
        if not last.all():
            all_ids, all_rows = all_ids[last], all_rows[last]
        self._ids, self._rows = all_ids, all_rows
        self._extra = {}
        self._dead = 0

    def _fold(self) -> None:
        if self._extra or self._dead:
            self.bulk(np.empty(0, np.int64), np.empty(0, np.int32))

    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._rows.nbytes) + 100 * len(self._extra)


_FENCE = 16  # entries per block of a ``BandIndex`` band: one stored key prefix each


class BandIndex:
    """LSH band key → slots, storing 4 bytes per key instead of ``KeyIndex``'s 12.

    A band key is a function of its slot's signature, so it need not be
    stored: each band keeps its slots sorted by (key's high 32 bits, slot),
    and the high half of every ``_FENCE``-th entry. A lookup binary-searches
    those to a block or two and recomputes the keys of the slots in it
    (``keys_of``), keeping exact matches. Slots only grow (a new document
    gets the next row; compaction keeps the order), so slot order is
    insertion order: the results are ``KeyIndex.get``'s, in its order.
    """

    __slots__ = (
        "_bands",
        "_fence",
        "_fstart",
        "_keys_of",
        "_pending",
        "_pending_slots",
        "_slots",
        "_start",
    )

    def __init__(
        self,
        bands: int,
        keys_of: Callable[[NDArray[np.int32], NDArray[np.intp]], NDArray[np.uint64]],
    ) -> None:
        self._bands = bands
        self._keys_of = keys_of  # (slots, bands) → the band key of each slot
        self._slots: NDArray[np.int32] = np.empty(0, np.int32)  # band-major
        self._start: NDArray[np.int64] = np.zeros(bands + 1, np.int64)  # each band's entries
        self._fence: NDArray[np.uint64] = np.empty(0, np.uint64)  # band << 32 | key >> 32
        self._fstart: NDArray[np.int64] = np.zeros(bands + 1, np.int64)  # each band's fences
        self._pending: dict[int, list[int]] = {}
        self._pending_slots: list[int] = []

    def __len__(self) -> int:
        return len(self._slots) + self._bands * len(self._pending_slots)

    def add(self, keys: NDArray[np.uint64], slot: int) -> None:
        """Index ``slot`` under its band keys (one per band, in band order; none: no text)."""
        if not len(keys):
            return
        for key in keys.tolist():
            self._pending.setdefault(key, []).append(slot)
        self._pending_slots.append(slot)
        if len(self._pending_slots) * 4 > max(_MIN_PENDING, len(self._slots) // self._bands):
            self.flush()

    def flush(self) -> None:
        if not self._pending_slots:
            return
        slots = np.array(self._pending_slots, np.int32)
        self._pending.clear()
        self._pending_slots = []
        self.bulk(slots, self._all_keys(slots))

    def _all_keys(self, slots: NDArray[np.int32]) -> NDArray[np.uint64]:
        """Every band key of ``slots``, one row per band."""
        n, bands = len(slots), self._bands
        which = np.repeat(np.arange(bands, dtype=np.intp), n)
        return self._keys_of(np.tile(slots, bands), which).reshape(bands, n)

    def bulk(self, slots: NDArray[np.int32], keys: NDArray[np.uint64]) -> None:
        """Index ``slots`` (ascending) under ``keys``, one row of keys per band."""
        self.bulk_high(slots, (keys >> _SHIFT).astype(np.uint32))

    def bulk_high(self, slots: NDArray[np.int32], high: NDArray[np.uint32]) -> None:
        """``bulk`` given only the keys' high halves (all that is stored of them)."""
        self.flush()
        old, start, bands = self._slots, self._start, self._bands
        # Each band's sorted slots go straight to their place in the new array.
        out = np.empty(len(old) + bands * len(slots), np.int32)
        fences, sizes, at = [], [], 0
        for b in range(bands):
            mine = old[start[b] : start[b + 1]]
            packed = np.concatenate((self._high(mine, b), high[b].astype(np.uint64)))
            packed <<= _SHIFT
            packed |= np.concatenate((mine, slots)).astype(np.uint64)
            packed.sort()
            out[at : at + len(packed)] = packed & _LOW
            fences.append((packed[::_FENCE] >> _SHIFT) | (np.uint64(b) << _SHIFT))
            at += len(packed)
            sizes.append(len(packed))
            del packed
        self._slots = out
        self._start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        # The band in the high bits: one search finds every band's blocks.
        self._fence = np.concatenate(fences)
        self._fstart = np.concatenate(([0], np.cumsum([len(f) for f in fences])))

    def _high(self, slots: NDArray[np.int32], band: int) -> NDArray[np.uint64]:
        if not len(slots):
            return np.empty(0, np.uint64)
        found = self._keys_of(slots, np.full(len(slots), band, np.intp))
        return found >> _SHIFT

    def _set(self, per_band: list[tuple[NDArray[np.int32], NDArray[np.uint64]]]) -> None:
        """Store each band's sorted slots and the high key half of every ``_FENCE``-th."""
        sizes = np.array([len(slots) for slots, _ in per_band], np.int64)
        self._start = np.concatenate(([0], np.cumsum(sizes)))
        self._slots = np.concatenate([slots for slots, _ in per_band])
        # The band in the high bits: one search finds every band's blocks.
        fences = [high | (np.uint64(b) << _SHIFT) for b, (_, high) in enumerate(per_band)]
        self._fence = np.concatenate(fences)
        self._fstart = np.concatenate(([0], np.cumsum([len(f) for f in fences])))

    def get(self, keys: NDArray[np.uint64]) -> list[int]:
        """Every slot stored under any of ``keys`` (key ``b`` of band ``b``), in stable order."""
        out: list[int] = []
        if len(self._slots) and len(keys):
            bands = np.arange(len(keys), dtype=np.int64)
            query = (keys >> _SHIFT) | (bands.astype(np.uint64) << _SHIFT)
            fence = self._fence
            # The blocks that may hold the key: from the one before the first fence
            # at or above it, to the one before the first fence above it.
            lo_f = np.maximum(fence.searchsorted(query, "left") - 1, self._fstart[:-1][bands])
            hi_f = fence.searchsorted(query, "right")
            lo = self._start[bands] + (lo_f - self._fstart[bands]) * _FENCE
            hi = np.minimum(
                self._start[bands] + (hi_f - self._fstart[bands]) * _FENCE,
                self._start[bands + 1],
            )
            lens = np.maximum(hi - lo, 0)
            total = int(lens.sum())
            if total:
                pos = np.repeat(lo - (np.cumsum(lens) - lens), lens) + np.arange(total)
                slots = self._slots[pos]
                which = np.repeat(bands, lens)
                hit = self._keys_of(slots, which) == keys[which]
                out = slots[hit].tolist()
        if self._pending:
            _extend_pending(out, self._pending, keys)
        return out

    def renumber(self, mapping: NDArray[np.int32]) -> None:
        """Apply ``slot → mapping[slot]`` (monotone where kept); -1 drops the entry.

        Call it once the rows have moved: keys are recomputed at the new slots.
        """
        pending = mapping[np.array(self._pending_slots, np.int32)]
        self._pending.clear()
        self._pending_slots = []
        new = mapping[self._slots]
        per_band = []
        for b in range(self._bands):
            mine = new[self._start[b] : self._start[b + 1]]
            mine = mine[mine >= 0]
            per_band.append((mine, self._high(mine[::_FENCE], b)))
        self._set(per_band)
        pending = pending[pending >= 0]
        if len(pending):
            self.bulk(pending, self._all_keys(pending))

    def nbytes(self) -> int:
        held = self._slots.nbytes + self._fence.nbytes + self._start.nbytes + self._fstart.nbytes
        return int(held) + 100 * self._bands * len(self._pending_slots)


def _extend_pending(
    out: list[int], pending: dict[int, list[int]], keys: NDArray[np.uint64]
) -> None:
    """Add the slots of ``keys`` not yet merged into the sorted arrays."""
    for key in keys.tolist():
        found = pending.get(key)
        if found:
            out.extend(found)
