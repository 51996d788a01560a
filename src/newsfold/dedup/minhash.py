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

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

SEED = 1  # datasketch's default seed
SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's initial value: no shingle seen
# Distinct-shingle count (for containment); lead length and identifier count, a byte each.
_HEADER = struct.Struct("<IH")
_U32 = np.uint32
# Rows per chunk in ``signatures``: a 1 MB temporary matrix stays in cache.
_CHUNK_ROWS = 1 << 11
# Stored bytes parsed per block by ``decode_into``: the block stays in cache.
_DECODE_BYTES = 1 << 22


@lru_cache(maxsize=8)
def permutations(num_perm: int) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    # Imported here: datasketch pulls in scipy (about half a second), which every CLI
    # command would pay at start-up for parameters computed once per process.
    from datasketch import MinHash

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
    sig: NDArray[np.uint32],
    cardinality: int,
    lead: NDArray[np.uint32] | None = None,
    ids: NDArray[np.uint32] | None = None,
) -> bytes:
    """Shingle count, lead length and identifier count (a byte each), the signature,
    the lead's exact shingle hashes, then the identifier keys (uint32 each).

    Blobs stored before identifiers were kept have a zero identifier count.
    """
    lead = np.empty(0, np.uint32) if lead is None else lead
    ids = np.empty(0, np.uint32) if ids is None else ids
    return (
        _HEADER.pack(cardinality, len(lead) | len(ids) << 8)
        + sig.astype("<u4").tobytes()
        + lead.astype("<u4").tobytes()
        + ids.astype("<u4").tobytes()
    )


def _counts(blob: bytes) -> tuple[int, int, int]:
    cardinality, packed = _HEADER.unpack_from(blob)
    return cardinality, packed & 0xFF, packed >> 8


def decode(blob: bytes) -> tuple[NDArray[np.uint32], int]:
    cardinality, n_lead, n_ids = _counts(blob)
    count = (len(blob) - _HEADER.size) // 4 - n_lead - n_ids
    sig = np.frombuffer(blob, dtype="<u4", count=count, offset=_HEADER.size).astype(np.uint32)
    return sig, cardinality


def decode_lead(blob: bytes) -> NDArray[np.uint32]:
    """The sorted shingle hashes of the text's first words (see ``copies.LEAD_WORDS``)."""
    _, n_lead, n_ids = _counts(blob)
    offset = len(blob) - 4 * (n_lead + n_ids)
    return np.frombuffer(blob, dtype="<u4", count=n_lead, offset=offset).astype(np.uint32)


def decode_ids(blob: bytes) -> NDArray[np.uint32]:
    """The identifier keys (see ``shingles.identifier_keys``); none in an older blob."""
    _, _, n_ids = _counts(blob)
    return np.frombuffer(blob, dtype="<u4", count=n_ids, offset=len(blob) - 4 * n_ids).astype(
        np.uint32
    )


def decode_many(
    blobs: Sequence[bytes], lead_width: int, id_width: int
) -> tuple[
    NDArray[np.uint32],
    NDArray[np.int64],
    NDArray[np.uint32],
    NDArray[np.int64],
    NDArray[np.uint32],
    NDArray[np.int64],
]:
    """``decode``, ``decode_lead`` and ``decode_ids`` of many blobs, one by one (the
    rebuild's fallback for blobs ``decode_into`` does not take).

    Returns signatures (one row each), shingle counts, leads padded with 0 to
    ``lead_width`` columns, lead lengths, identifier keys padded to ``id_width``
    and their counts.
    """
    n = len(blobs)
    num_perm = len(decode(blobs[0])[0]) if n else 0
    sigs = np.empty((n, num_perm), np.uint32)
    card = np.empty(n, np.int64)
    leads = np.zeros((n, lead_width), np.uint32)
    nlead = np.zeros(n, np.int64)
    ids = np.zeros((n, id_width), np.uint32)
    nids = np.zeros(n, np.int64)
    for i, blob in enumerate(blobs):
        sigs[i], card[i] = decode(blob)
        lead = decode_lead(blob)[:lead_width]
        leads[i, : len(lead)], nlead[i] = lead, len(lead)
        keys = decode_ids(blob)[:id_width]
        ids[i, : len(keys)], nids[i] = keys, len(keys)
    return sigs, card, leads, nlead, ids, nids


def decode_into(
    blobs: Sequence[bytes],
    out: tuple[
        NDArray[np.uint32],
        NDArray[np.uint32],
        NDArray[np.uint32],
        NDArray[np.uint8],
        NDArray[np.uint32],
        NDArray[np.uint8],
    ],
) -> bool:
    """``decode_many`` written straight into the given rows (the rebuild path):
    ``out`` is (signatures, shingle counts, leads, lead lengths, identifiers, their counts).
    The lead and identifier rows must be zero (as a table keeps its rows past its size):
    only the values are written, not the padding, which keeps those pages untouched.

    At a million documents the intermediate arrays cost as much as the parse,
    so blobs are parsed a block at a time, and blobs of one length together as
    the rows of one byte matrix. Returns False unless every blob is of the
    current layout with ``sig``'s width; the rows are then to be filled by
    ``decode_many``.
    """
    sig, card, lead, nlead, ids, nids = out
    n, num_perm, width, id_width = len(blobs), sig.shape[1], lead.shape[1], ids.shape[1]
    lengths = np.fromiter(map(len, blobs), np.int64, n)
    end = _HEADER.size + 4 * num_perm
    if not n or not (lengths % 4).all() or int(lengths.min()) < end:
        return not n
    step = max(1, _DECODE_BYTES // int(lengths.max()))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = lengths[lo:hi]
        if (block == block[0]).all():  # one length: the block is one byte matrix
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
            tail_words = (size - end) // 4
            n_lead = raw[:, 4].astype(np.int64)
            n_ids = raw[:, 5].astype(np.int64)
            if ((n_lead + n_ids) != tail_words).any():
                return False
            card[rows] = raw[:, :4].view("<u4")[:, 0]
            sig[rows] = raw[:, _HEADER.size : end].view("<u4")
            # Lead then identifiers: rows of one length mostly split their tail alike;
            # each split is written as a block of slices.
            tail = raw[:, end:].view("<u4")
            split = n_lead << 8 | n_ids
            combos = np.unique(split)
            index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
            for combo in combos.tolist():
                at: slice | NDArray[np.intp] = rows
                same = tail
                if len(combos) > 1:
                    sub = np.flatnonzero(split == combo)
                    at, same = index[sub], tail[sub]
                nl, ni = combo >> 8, combo & 0xFF
                kept, kept_ids = min(nl, width), min(ni, id_width)
                if kept:
                    lead[at, :kept] = same[:, :kept]
                nlead[at] = kept
                if kept_ids:
                    ids[at, :kept_ids] = same[:, nl : nl + kept_ids]
                nids[at] = kept_ids
    return True


def jaccard_many(sig: NDArray[np.uint32], others: NDArray[np.uint32]) -> NDArray[np.float64]:
    """Estimated Jaccard of one signature against each row of ``others``."""
    return (others == sig).mean(axis=1)  # type: ignore[no-any-return]
