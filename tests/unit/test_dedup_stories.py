"""The story index's parts on their own: the sketch blob and the postings."""

from __future__ import annotations

import numpy as np
import pytest

from newsfold.dedup.stories import blob
from newsfold.dedup.stories.postings import Postings, Vocabulary


def _bag(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    terms = np.unique(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32))
    weights = (1 + 9 * rng.random(len(terms))).astype(np.float32)
    return terms, weights, rng.random(len(terms)) < 0.3


def _unversioned(b: bytes) -> bytes:
    """The blob as written before the version byte existed (databases hold these)."""
    return b[1:]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 64, 300])
def test_blob_round_trip_both_layouts(n: int) -> None:
    rng = np.random.default_rng(n)
    terms, weights, names = _bag(rng, n)
    new = blob.encode(terms, weights, names)
    assert new[0] == blob.VERSION
    fixed = np.clip(np.rint(weights * blob.FIXED), 1, 0xFFFF).astype(np.int64)
    for b in (new, _unversioned(new)):
        got_terms, got_weights, got_names = blob.decode(b)
        assert got_terms.tolist() == terms.tolist()
        assert got_weights.tolist() == fixed.tolist()
        assert got_names.tolist() == np.where(names, fixed, 0).tolist()


def test_blob_lengths_tell_the_layouts_apart() -> None:
    """No unversioned length is a versioned one: the length decides the layout."""
    plain = {2 + 6 * c + (c + 7) // 8 for c in range(4097)}
    assert not plain & {n + 1 for n in plain}
    lengths = np.array(sorted(plain | {n + 1 for n in plain} | {0, 1, 3, 4}), np.int64)
    counts, skips = blob.counts_of(lengths)
    for length, c, skip in zip(lengths.tolist(), counts.tolist(), skips.tolist(), strict=True):
        if length in plain:
            assert (c, skip) == ((length - 2) * 8 // 49, 0)
        elif length - 1 in plain:
            assert (c, skip) == ((length - 3) * 8 // 49, 1)
        else:
            assert c == -1


def test_decode_columns_of_mixed_layouts_equals_decode() -> None:
    rng = np.random.default_rng(1)
    blobs = []
    for k in range(80):
        b = blob.encode(*_bag(rng, int(rng.choice([0, 1, 8, 9, 40]))))
        blobs.append(_unversioned(b) if k % 3 else b)
    terms, weights, names, counts = blob.decode_many(blobs)
    at = 0
    for b, c in zip(blobs, counts.tolist(), strict=True):
        t, w, nm = blob.decode(b)
        assert terms[at : at + c].tolist() == t.tolist()
        assert weights[at : at + c].tolist() == w.tolist()
        assert names[at : at + c].tolist() == nm.tolist()
        at += c
    assert at == len(terms)


def test_blob_with_a_wrong_header_is_refused() -> None:
    good = blob.encode(*_bag(np.random.default_rng(2), 10))
    with pytest.raises(ValueError, match="story sketch"):
        blob.decode(good + b"\0")
    with pytest.raises(ValueError, match="story sketch"):
        blob.decode(bytes([blob.VERSION + 1]) + good[1:])
    with pytest.raises(ValueError, match="story sketch"):
        blob.decode_columns([good, bytes([blob.VERSION + 1]) + good[1:]])


def _postings_equal(got: Postings, want: dict[int, dict[int, int]], terms: range) -> None:
    for t in terms:
        assert sorted(got.stories(t)) == sorted(want.get(t, {})), t


def test_postings_from_a_rebuild_change_like_dicts() -> None:
    """Postings handed over as arrays answer, grow and shrink as plain dicts would."""
    rng = np.random.default_rng(3)
    want: dict[int, dict[int, int]] = {}
    got = Postings()
    for story in range(5):  # some terms held as dicts before the rebuild
        terms = np.unique(rng.integers(0, 40, 6)).astype(np.uint32)
        got.add(terms, story)
        for t in terms.tolist():
            want.setdefault(t, {})[story] = want.get(t, {}).get(story, 0) + 1
    pairs = sorted({(int(t), int(s)) for t, s in rng.integers((0, 100), (60, 120), (300, 2))})
    terms_sorted = np.array(sorted({t for t, _ in pairs}), np.uint32)
    ids = np.array(sorted({s for _, s in pairs}), np.int64)
    story_pos = np.array([int(np.searchsorted(ids, s)) for _, s in pairs], np.int32)
    count = rng.integers(1, 4, len(pairs)).astype(np.int32)
    start = np.searchsorted([t for t, _ in pairs], np.append(terms_sorted, 2**32)).astype(np.int64)
    got.load(terms_sorted, start, story_pos, ids, count)
    for (t, s), c in zip(pairs, count.tolist(), strict=True):
        want.setdefault(t, {})[s] = want.get(t, {}).get(s, 0) + c
    _postings_equal(got, want, range(60))
    for story in (100, 101, 7):  # additions to array-held terms collect beside them
        terms = np.unique(rng.integers(0, 60, 10)).astype(np.uint32)
        got.add(terms, story)
        for t in terms.tolist():
            want.setdefault(t, {})[story] = want.get(t, {}).get(story, 0) + 1
    _postings_equal(got, want, range(60))
    t0, s0 = pairs[0]
    got.move(np.array([t for t, s in pairs if s == s0], np.uint32), s0, 7)
    for t in [t for t, s in pairs if s == s0]:
        want[t][7] = want[t].get(7, 0) + want[t].pop(s0)
    got.remove(np.array([t0], np.uint32), 7)
    want[t0][7] -= 1
    if not want[t0][7]:
        del want[t0][7]
    _postings_equal(got, want, range(60))
    # A posting from the arrays emptied by removals stays empty, then grows again.
    t1 = int(terms_sorted[-1])
    for sid, c in list(want[t1].items()):
        for _ in range(c):
            got.remove(np.array([t1], np.uint32), sid)
    want[t1] = {}
    _postings_equal(got, want, range(60))
    got.add(np.array([t1], np.uint32), 5)
    want[t1] = {5: 1}
    _postings_equal(got, want, range(60))
    got.load(np.empty(0, np.uint32), np.zeros(1, np.int64), np.empty(0, np.int32), ids, None)
    _postings_equal(got, want, range(60))


def test_vocabulary_reuses_slots_and_restarts_when_empty() -> None:
    vocab = Vocabulary()
    a, b = np.array([5, 9], np.uint32), np.array([9, 11], np.uint32)
    vocab.count(a)
    vocab.count(b)
    assert vocab.n_docs == 2
    assert vocab.df(vocab.slots(np.array([5, 9, 11], np.uint32))).tolist() == [1, 2, 1]
    vocab.count(a, -1)
    assert vocab.df(vocab.slots(b)).tolist() == [1, 1]
    assert not vocab.fresh()
    vocab.count(b, -1)
    assert vocab.n_docs == 0 and vocab.fresh()
    vocab.count_many(np.array([3, 4], np.uint32), np.array([2, 1], np.int64), 2)
    assert vocab.slots(np.array([3, 4], np.uint32)).tolist() == [0, 1]
    assert vocab.slots_sorted(np.array([4, 3], np.uint32)).tolist() == [1, 0]
