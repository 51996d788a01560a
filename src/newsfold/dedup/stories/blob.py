"""The stored story sketch: one document's strongest terms as bytes.

    version (1 byte) · count c (uint16) · c uint32 term hashes (sorted, unique)
    · c uint16 fixed-point weights · c name bits, packed little-endian

Blobs written before the version byte existed lack it, and every database
holds them: they are recognised by their length alone. An unversioned blob
of c terms is ``2 + 6c + ⌈c/8⌉`` bytes and a versioned one a byte more, and
consecutive unversioned lengths differ by 6 or 7, so no length is both.
Both layouts are read; only the versioned one is written.

Parsing many blobs at once (a rebuild) groups them by length: blobs of one
length share a layout and a count, so a group is one byte matrix whose
columns are the fields.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

VERSION = 1
FIXED = 256  # weights are stored and summed as integers in 1/256 units
_HEAD = struct.Struct("<BH")  # version, count
_COUNT = struct.Struct("<H")
_BLOCK_BYTES = 1 << 22  # bytes parsed per block of a batch: the block stays in cache

Bag = tuple["NDArray[np.uint32]", "NDArray[np.int64]", "NDArray[np.int64]"]
# Many bags end to end as stored: terms, uint16 weights, name flags, and each bag's length.
Columns = tuple[
    "NDArray[np.uint32]", "NDArray[np.uint16]", "NDArray[np.bool_]", "NDArray[np.int64]"
]
# The same with weights widened and name weights in place of flags (see ``decode``).
FlatBags = tuple[
    "NDArray[np.uint32]", "NDArray[np.int64]", "NDArray[np.int64]", "NDArray[np.int64]"
]


def encode(
    terms: NDArray[np.uint32], weights: NDArray[np.float32], names: NDArray[np.bool_]
) -> bytes:
    """The versioned blob of a bag (weights rounded to 1/``FIXED``, at least 1)."""
    fixed = np.clip(np.rint(weights * FIXED), 1, 0xFFFF).astype("<u2")
    flags = np.packbits(names.astype(np.bool_), bitorder="little")
    return (
        _HEAD.pack(VERSION, len(terms))
        + terms.astype("<u4").tobytes()
        + fixed.tobytes()
        + flags.tobytes()
    )


def _body_size(count: int) -> int:
    return _COUNT.size + 6 * count + (count + 7) // 8


def _header(blob: bytes) -> tuple[int, int]:
    """(term count, where the count field starts) of either layout."""
    (n,) = _COUNT.unpack_from(blob)
    if len(blob) == _body_size(n):
        return n, 0
    version, n = _HEAD.unpack_from(blob)
    if version == VERSION and len(blob) == 1 + _body_size(n):
        return n, 1
    raise ValueError(f"not a story sketch: {len(blob)} bytes")


def decode(blob: bytes) -> Bag:
    """(terms, weights, name weights): the weights of the terms flagged as names, else 0."""
    n, at = _header(blob)
    at += _COUNT.size
    terms = np.frombuffer(blob, dtype="<u4", count=n, offset=at).astype(np.uint32)
    weights = np.frombuffer(blob, dtype="<u2", count=n, offset=at + 4 * n).astype(np.int64)
    bits = np.frombuffer(blob, dtype=np.uint8, count=(n + 7) // 8, offset=at + 6 * n)
    flags = np.unpackbits(bits, count=n, bitorder="little").astype(bool)
    return terms, weights, np.where(flags, weights, 0)


def decode_many(blobs: list[bytes]) -> FlatBags:
    """``decode`` of many blobs at once, end to end."""
    terms, fixed, flags, counts = decode_columns(blobs)
    weights = fixed.astype(np.int64)
    return terms, weights, np.where(flags, weights, 0), counts


def counts_of(lengths: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each blob's term count and version-byte width (0 or 1) as its length implies;
    count -1 where no layout has that length. The header still has to agree."""
    out = []
    for skip in (0, 1):
        body = lengths - skip - _COUNT.size
        c = body * 8 // 49  # 6c + ⌈c/8⌉ is ⌈49c/8⌉
        out.append(np.where((body >= 0) & (6 * c + (c + 7) // 8 == body), c, -1))
    plain, versioned = out
    return np.where(plain >= 0, plain, versioned), (plain < 0).astype(np.int64)


class Block:
    """Blobs of one layout and count, parsed together: row i is ``blobs[rows[i]]``."""

    __slots__ = ("count", "raw", "rows", "skip")

    def __init__(self, rows: NDArray[np.intp], count: int, skip: int, raw: NDArray[np.uint8]):
        self.rows, self.count, self.skip, self.raw = rows, count, skip, raw

    def valid(self) -> bool:
        """Whether every row's header agrees with the layout its length implies."""
        raw, s = self.raw, self.skip
        count = raw[:, s].astype(np.int64) | (raw[:, s + 1].astype(np.int64) << 8)
        ok = bool((count == self.count).all())
        return ok and (not s or bool((raw[:, 0] == VERSION).all()))

    def terms(self) -> NDArray[np.uint32]:
        lo = self.skip + _COUNT.size
        return np.ascontiguousarray(self.raw[:, lo : lo + 4 * self.count]).view("<u4")

    def weights(self) -> NDArray[np.uint16]:
        lo = self.skip + _COUNT.size + 4 * self.count
        return np.ascontiguousarray(self.raw[:, lo : lo + 2 * self.count]).view("<u2")

    def names(self) -> NDArray[np.bool_]:
        lo = self.skip + _COUNT.size + 6 * self.count
        bits = np.unpackbits(self.raw[:, lo:], axis=1, count=self.count, bitorder="little")
        return bits.view(np.bool_)


def blocks(
    blobs: list[bytes], counts: NDArray[np.int64], skips: NDArray[np.int64]
) -> Iterator[Block]:
    """The blobs (whose ``counts_of`` are ``counts``, ``skips``; none -1) as blocks of
    one layout, in increasing count, a bounded number of bytes at a time."""
    key = 2 * counts + skips
    order = np.argsort(key, kind="stable")
    edges = np.flatnonzero(key[order][1:] != key[order][:-1]) + 1
    for group in np.split(order, edges):
        if not len(group):
            continue
        c, skip = int(counts[group[0]]), int(skips[group[0]])
        size = skip + _body_size(c)
        step = max(1, _BLOCK_BYTES // size)
        for b in range(0, len(group), step):
            rows = group[b : b + step]
            raw = np.frombuffer(b"".join([blobs[i] for i in rows.tolist()]), np.uint8)
            yield Block(rows, c, skip, raw.reshape(len(rows), size))


def decode_columns(blobs: list[bytes]) -> Columns:
    """``decode_many`` in the stored widths (a rebuild's form: a quarter of the bytes)."""
    n = len(blobs)
    counts, skips = counts_of(np.fromiter(map(len, blobs), np.int64, n))
    if (counts < 0).any():
        bad = blobs[int(np.flatnonzero(counts < 0)[0])]
        raise ValueError(f"not a story sketch: {len(bad)} bytes")
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    terms = np.empty(total, np.uint32)
    weights = np.empty(total, np.uint16)
    flags = np.empty(total, np.bool_)
    for block in blocks(blobs, counts, skips):
        if not block.valid():
            raise ValueError("a story sketch's header disagrees with its length")
        if not block.count:
            continue
        at = (starts[block.rows][:, None] + np.arange(block.count)).ravel()
        terms[at] = block.terms().ravel()
        weights[at] = block.weights().ravel()
        flags[at] = block.names().ravel()
    return terms, weights, flags, counts


__all__ = [
    "FIXED",
    "VERSION",
    "Bag",
    "Block",
    "Columns",
    "FlatBags",
    "blocks",
    "counts_of",
    "decode",
    "decode_columns",
    "decode_many",
    "encode",
]
