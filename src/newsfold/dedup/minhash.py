"""Fast MinHash signatures, bit-identical to datasketch's ``MinHash``.

datasketch 2.0's default ``affine32`` scheme maps each 32-bit shingle hash
``h`` to ``a·fmix32(h) + b (mod 2³²)`` for every permutation and keeps the
minimum. Calling ``MinHash.update`` once per shingle pays Python and numpy
overhead per shingle; here the shingle hashes of a document (or of many
documents at once) form one matrix and the minimum is one reduction. The
permutation parameters are taken from datasketch itself, so signatures are
interchangeable with ``LeanMinHash``.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from datasketch import MinHash

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

SEED = 1  # datasketch's default seed
SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's initial value: no shingle seen
_HEADER = struct.Struct("<IH")  # distinct-shingle count (for containment), lead length
_U32 = np.uint32
# Rows per chunk in ``signatures``: a 1 MB temporary matrix stays in cache.
_CHUNK_ROWS = 1 << 11
# Stored bytes parsed per block by ``decode_into``: the block stays in cache.
_DECODE_BYTES = 1 << 22


@lru_cache(maxsize=8)
def permutations(num_perm: int) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    a, b = MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def fmix32(h: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """murmur3's 32-bit finaliser: datasketch's affine32 scheme mixes every hash with it."""
    h = h ^ (h >> _U32(16))
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> _U32(13))
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> _U32(16))


def signature(hashes: NDArray[np.uint32], num_perm: int) -> NDArray[np.uint32]:
    """MinHash of one set of 32-bit shingle hashes."""
    if len(hashes) == 0:
        return np.full(num_perm, EMPTY, dtype=np.uint32)
    a, b = permutations(num_perm)
    with np.errstate(over="ignore"):
        phv = fmix32(hashes)[:, None] * a + b
    return phv.min(axis=0)  # type: ignore[no-any-return]


def signatures(sets: Sequence[NDArray[np.uint32]], num_perm: int) -> NDArray[np.uint32]:
    """MinHash of many sets at once: one matrix product and a segmented minimum."""
    out = np.full((len(sets), num_perm), EMPTY, dtype=np.uint32)
    a, b = permutations(num_perm)
    start = 0
    while start < len(sets):
        # Gather whole documents until the chunk is full (at least one).
        stop, rows = start, 0
        while stop < len(sets) and (rows == 0 or rows + len(sets[stop]) <= _CHUNK_ROWS):
            rows += len(sets[stop])
            stop += 1
        chunk = list(sets[start:stop])
        sizes = np.fromiter((len(s) for s in chunk), dtype=np.int64, count=len(chunk))
        nonempty = np.flatnonzero(sizes)
        if len(nonempty):
            flat = np.concatenate([chunk[i] for i in nonempty])
            with np.errstate(over="ignore"):
                phv = fmix32(flat)[:, None] * a + b
            offsets = np.concatenate(([0], np.cumsum(sizes[nonempty])[:-1]))
            out[start + nonempty] = np.minimum.reduceat(phv, offsets, axis=0)
        start = stop
    return out


def encode(
    sig: NDArray[np.uint32], cardinality: int, lead: NDArray[np.uint32] | None = None
) -> bytes:
    """Shingle count, lead length, the signature, then the lead's exact shingle hashes."""
    lead = np.empty(0, np.uint32) if lead is None else lead
    return (
        _HEADER.pack(cardinality, len(lead))
        + sig.astype("<u4").tobytes()
        + lead.astype("<u4").tobytes()
    )


def decode(blob: bytes) -> tuple[NDArray[np.uint32], int]:
    cardinality, n_lead = _HEADER.unpack_from(blob)
    count = (len(blob) - _HEADER.size) // 4 - n_lead
    sig = np.frombuffer(blob, dtype="<u4", count=count, offset=_HEADER.size).astype(np.uint32)
    return sig, cardinality


def decode_lead(blob: bytes) -> NDArray[np.uint32]:
    """The sorted shingle hashes of the text's first words (see ``copies.LEAD_WORDS``)."""
    _, n_lead = _HEADER.unpack_from(blob)
    return np.frombuffer(blob, dtype="<u4", count=n_lead, offset=len(blob) - 4 * n_lead).astype(
        np.uint32
    )


def decode_many(
    blobs: Sequence[bytes], lead_width: int
) -> tuple[NDArray[np.uint32], NDArray[np.int64], NDArray[np.uint32], NDArray[np.int64]]:
    """``decode`` and ``decode_lead`` of many blobs at once (the rebuild path).

    Returns signatures (one row each), shingle counts, leads padded with 0 to
    ``lead_width`` columns, and lead lengths.
    """
    n = len(blobs)
    if not n:
        empty = np.empty(0, np.int64)
        return np.empty((0, 0), np.uint32), empty, np.empty((0, lead_width), np.uint32), empty
    return _decode_by_length(blobs, np.fromiter(map(len, blobs), np.int64, n), lead_width)


def decode_into(
    blobs: Sequence[bytes],
    sig: NDArray[np.uint32],
    card: NDArray[np.uint32],
    lead: NDArray[np.uint32],
    nlead: NDArray[np.uint8],
    *,
    zeroed: bool = False,
) -> bool:
    """``decode_many`` written straight into the given rows (the rebuild path).

    At a million documents the intermediate arrays cost as much as the parse,
    so blobs are parsed a block at a time. With ``zeroed`` (rows not yet
    written, as a table keeps them) a lead's padding is left as it is: not
    writing zeros keeps those pages untouched. Returns False unless every
    blob is of the current layout with ``sig``'s width; the rows are then
    to be filled by ``decode_many``.
    """
    n, num_perm, width = len(blobs), sig.shape[1], lead.shape[1]
    lengths = np.fromiter(map(len, blobs), np.int64, n)
    end = _HEADER.size + 4 * num_perm
    if not n or not (lengths % 4).all() or int(lengths.min()) < end:
        return not n
    step = max(1, _DECODE_BYTES // int(lengths.max()))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = lengths[lo:hi]
        if (block == block[0]).all():  # one lead length: the block is one byte matrix
            groups: list[tuple[slice | NDArray[np.intp], NDArray[np.intp] | None]] = [
                (slice(lo, hi), None)
            ]
        else:
            order = np.argsort(block, kind="stable")
            edges = np.flatnonzero(np.diff(block[order])) + 1
            groups = [(lo + part, part) for part in np.split(order, edges)]
        for rows, part in groups:
            chunk = blobs[lo:hi] if part is None else [blobs[lo + i] for i in part.tolist()]
            size = int(block[0] if part is None else block[part[0]])
            raw = np.frombuffer(b"".join(chunk), np.uint8).reshape(len(chunk), size)
            n_lead = (size - end) // 4
            if ((raw[:, 4].astype(np.int64) | (raw[:, 5].astype(np.int64) << 8)) != n_lead).any():
                return False
            card[rows] = raw[:, :4].view("<u4")[:, 0]
            sig[rows] = raw[:, _HEADER.size : end].view("<u4")
            kept = min(n_lead, width)
            if kept:
                lead[rows, :kept] = raw[:, end : end + 4 * kept].view("<u4")
            if not zeroed:
                lead[rows, kept:] = 0
            nlead[rows] = kept
    return True


def _decode_by_length(
    blobs: Sequence[bytes], lengths: NDArray[np.int64], lead_width: int
) -> tuple[NDArray[np.uint32], NDArray[np.int64], NDArray[np.uint32], NDArray[np.int64]]:
    """``decode_many`` of current-layout blobs: blobs of one length (one lead
    length) are parsed together as the rows of one byte matrix."""
    n = len(blobs)
    num_perm = -1
    sigs = np.empty((n, 0), np.uint32)
    card = np.empty(n, np.int64)
    nlead = np.empty(n, np.int64)
    leads = np.zeros((n, lead_width), np.uint32)
    for size in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == size)
        raw = np.frombuffer(b"".join([blobs[i] for i in rows.tolist()]), np.uint8)
        raw = raw.reshape(len(rows), size)
        head = np.ascontiguousarray(raw[:, : _HEADER.size]).view(
            [("card", "<u4"), ("lead", "<u2")]
        )[:, 0]
        card[rows] = head["card"]
        n_lead = int(head["lead"][0])
        nlead[rows] = n_lead
        if num_perm < 0:
            num_perm = (size - _HEADER.size) // 4 - n_lead
            sigs = np.empty((n, num_perm), np.uint32)
        end = _HEADER.size + 4 * num_perm
        sigs[rows] = np.ascontiguousarray(raw[:, _HEADER.size : end]).view("<u4")
        kept = min(n_lead, lead_width)
        if kept:
            leads[rows, :kept] = np.ascontiguousarray(raw[:, end : end + 4 * kept]).view("<u4")
    return sigs, card, leads, np.minimum(nlead, lead_width)


def jaccard_many(sig: NDArray[np.uint32], others: NDArray[np.uint32]) -> NDArray[np.float64]:
    """Estimated Jaccard of one signature against each row of ``others``."""
    return (others == sig).mean(axis=1)  # type: ignore[no-any-return]
