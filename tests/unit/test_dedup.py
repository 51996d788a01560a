from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from datasketch import MinHash

from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator, Sketch, StoredDoc, minhash, stories
from newsfold.dedup.identifiers import IDS
from newsfold.dedup.shingles import words
from newsfold.dedup.stories import blob as story_blob
from newsfold.dedup.stories import columns, rebuild
from newsfold.evaluation import read_dataset
from newsfold.evaluation.scoring import to_docs
from newsfold.types import Placement, Tier
from tests.support.reference import shingle_hash_bytes, shingle_strings, to_lean

if TYPE_CHECKING:
    from newsfold.evaluation.datasets import Record

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEV = SHARED / "data" / "dedup-dev.jsonl"
DATA = Path(__file__).resolve().parents[1] / "data" / "dedup"
needs_dev = pytest.mark.skipif(not DEV.is_file(), reason="shared dev set not present")
T0 = datetime(2024, 12, 1, 12, tzinfo=UTC)


def dev_docs(limit: int | None = None) -> list[DedupDoc]:
    records = read_dataset(DEV)
    return to_docs(records[:limit] if limit else records)[0]


def doc(article_id: int, text: str, *, minutes: int = 0, **kw: object) -> DedupDoc:
    fields: dict[str, object] = {
        "article_id": article_id,
        "feed_id": article_id,  # each its own outlet: one feed's own items are not copies
        "published": T0 + timedelta(minutes=minutes),
        "title": "",
        "text": text,
        "url": None,
        "content_hash": f"h{article_id}",
        "language": "en",
    }
    fields.update(kw)
    return DedupDoc(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------ fast = reference


@needs_dev
@pytest.mark.parametrize("num_perm", [64, 128])
def test_fast_signatures_equal_datasketch_reference(num_perm: int) -> None:
    settings = DedupSettings(num_perm=num_perm)
    dedup = Deduplicator(settings)
    docs = dev_docs(40)
    fast = dedup.sketch_many(docs)
    for d, sketch in zip(docs, fast, strict=True):
        reference = MinHash(num_perm=num_perm, hashfunc=shingle_hash_bytes)
        for shingle in shingle_strings(words(d.text) or words(d.title), settings.shingle_size):
            reference.update(shingle)  # the per-shingle datasketch path
        sig, _ = minhash.decode(sketch.signature)
        assert np.array_equal(sig, reference.hashvalues)
        assert to_lean(sig).jaccard(reference) == 1.0
        assert sketch == dedup.sketch(d)  # batched and single paths agree


@needs_dev
def test_fast_path_clusters_equal_reference_path_clusters() -> None:
    settings = DedupSettings()
    docs = dev_docs(120)
    fast_dedup, ref_dedup = Deduplicator(settings), Deduplicator(settings)
    fast = [fast_dedup.place(d, s) for d, s in zip(docs, fast_dedup.sketch_many(docs), strict=True)]
    ref = []
    for d in docs:
        m = MinHash(num_perm=settings.num_perm, hashfunc=shingle_hash_bytes)
        shingles = shingle_strings(words(d.text) or words(d.title), settings.shingle_size)
        m.update_batch(shingles)
        count = len(set(shingles))
        mine = ref_dedup.sketch(d)  # the lead and story parts are not MinHash
        blob = minhash.encode(
            m.hashvalues.astype(np.uint32), count, minhash.decode_lead(mine.signature)
        )
        ref.append(ref_dedup.place(d, Sketch(blob, mine.story)))
    assert fast == ref


# -------------------------------------------------------------------- tiers

BODY = (
    "Russian and Syrian warplanes launched heavy airstrikes on the city of Aleppo on Sunday "
    "after jihadist groups led by Hayat Tahrir al-Sham seized most of the city in a surprise "
    "offensive. The strikes killed at least eight civilians, including two children, a war "
    "monitor said. The United Nations envoy Geir Pedersen called for calm and urged all "
    "parties to protect civilians and civilian infrastructure in line with international law. "
    "The offensive is the most serious challenge to the government in years, analysts said."
)


@pytest.mark.parametrize(
    ("second", "tier"),
    [
        (
            doc(
                2,
                "Totally different words, and enough of them to be a text of its own here.",
                content_hash="h1",
            ),
            Tier.EXACT,
        ),
        (doc(2, "Other text", url="https://example.com/a"), Tier.EXACT),
        (doc(2, "ALEPPO (AFP) - " + BODY + " Subscribe to our newsletter."), Tier.NEAR),
        (doc(2, ". ".join(BODY.split(". ")[:2]) + "."), Tier.NEAR),  # summary-only copy
        (doc(2, "A storm closed schools across the region on Monday. " * 3), Tier.NEW),
    ],
)
def test_copy_tiers(second: DedupDoc, tier: Tier) -> None:
    dedup = Deduplicator(DedupSettings())
    first = doc(1, BODY, url="https://example.com/a")
    dedup.place(first, dedup.sketch(first))
    placed = dedup.place(second, dedup.sketch(second))
    assert placed.copy.tier is tier
    if tier in (Tier.EXACT, Tier.NEAR):
        assert placed.copy.cluster_id == 1
        assert placed.copy.matched_article_id == 1
        assert placed.story.cluster_id == 1
    else:
        assert placed.copy.cluster_id == 2


def test_empty_bodies_are_not_exact_duplicates() -> None:
    dedup = Deduplicator(DedupSettings())
    a = doc(1, "", title="", content_hash="empty")
    b = doc(2, "", title="", content_hash="empty")
    dedup.place(a, dedup.sketch(a))
    assert dedup.place(b, dedup.sketch(b)).copy.tier is Tier.NEW


def test_other_language_is_not_a_copy() -> None:
    dedup = Deduplicator(DedupSettings())
    a, b = doc(1, BODY), doc(2, BODY + " More.", language="de")
    dedup.place(a, dedup.sketch(a))
    assert dedup.place(b, dedup.sketch(b)).copy.tier is Tier.NEW


def _topic(records: list[Record], topic_of: str) -> list[Record]:
    topic = topic_of.split("_", 1)[0]
    return [r for r in records if r.id.split("_", 1)[0] == topic]


def _pairs() -> list[tuple[str, str, bool]]:
    data = json.loads((DATA / "story_pairs.json").read_text(encoding="utf-8"))
    return [(a, b, True) for a, b in data["must_merge"]] + [
        (a, b, False) for a, b in data["must_not"]
    ]


@needs_dev
@pytest.mark.parametrize(("a", "b", "same"), _pairs())
def test_story_pairs_in_context(a: str, b: str, same: bool) -> None:
    records = _topic(read_dataset(DEV), a)
    docs, _ = to_docs(records)
    dedup = Deduplicator(DedupSettings())
    placed = {p.article_id: p for p in (dedup.place(d, dedup.sketch(d)) for d in docs)}
    alias: dict[int, int] = {}
    for p in placed.values():
        for old in p.merged_stories:
            alias[old] = p.story.cluster_id

    def story(record_id: str) -> int:
        sid = placed[
            next(i + 1 for i, r in enumerate(records) if r.id == record_id)
        ].story.cluster_id
        while sid in alias:
            sid = alias[sid]
        return sid

    assert (story(a) == story(b)) is same


# ------------------------------------------------------------ restart, window


def _stored(d: DedupDoc, s: Sketch, p: Placement, story_of: dict[int, int]) -> StoredDoc:
    return StoredDoc(
        article_id=d.article_id,
        feed_id=d.feed_id,
        published=d.published,
        url=d.url,
        content_hash=d.content_hash,
        language=d.language,
        signature=s.signature,
        story=s.story,
        copy_id=p.copy.cluster_id,
        story_id=story_of[d.article_id],
        title=d.title,
    )


@needs_dev
@pytest.mark.parametrize(("cut", "evict_at"), [(150, None), (300, 120), (450, 400)])
def test_restart_gives_the_same_future(cut: int, evict_at: int | None) -> None:
    settings = DedupSettings(window_days=0.002)  # 172.8 s: evictions happen at 1 doc/s
    docs = dev_docs()
    rng = random.Random(cut)
    rng.shuffle(docs)
    docs = [
        DedupDoc(
            **{**{f: getattr(d, f) for f in d.__slots__}, "published": T0 + timedelta(seconds=i)}
        )
        for i, d in enumerate(docs)
    ]
    whole = Deduplicator(settings)
    sketches = whole.sketch_many(docs)
    placements: list[Placement] = []
    story_of: dict[int, int] = {}
    for i, (d, s) in enumerate(zip(docs, sketches, strict=True)):
        if i == cut:
            cutoff = d.published - timedelta(days=settings.window_days)
            whole.evict_before(cutoff)
            kept = [
                _stored(x, sx, px, story_of)
                for x, sx, px in zip(docs[:i], sketches[:i], placements, strict=True)
                if x.published >= cutoff
            ]
            restarted = Deduplicator(settings)
            assert restarted.load(kept) == len(whole)
            rest = [restarted.place(x, sx) for x, sx in zip(docs[i:], sketches[i:], strict=True)]
            assert rest == [
                whole.place(x, sx) for x, sx in zip(docs[i:], sketches[i:], strict=True)
            ]
            return
        if evict_at is not None and i % 50 == 0:
            whole.evict_before(d.published - timedelta(days=settings.window_days))
        p = whole.place(d, s)
        placements.append(p)
        story_of[d.article_id] = p.story.cluster_id
        for old in p.merged_stories:  # storage resolves absorbed ids to the survivor
            for k, v in story_of.items():
                if v == old:
                    story_of[k] = p.story.cluster_id


@needs_dev
def test_column_compaction_changes_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evicted documents' columns are compacted away (here after every eviction) unseen."""
    settings = DedupSettings(window_days=0.002)  # 172.8 s: evictions happen at 1 doc/s
    docs = [
        DedupDoc(
            **{**{f: getattr(d, f) for f in d.__slots__}, "published": T0 + timedelta(seconds=i)}
        )
        for i, d in enumerate(dev_docs(400))
    ]
    sketches = Deduplicator(settings).sketch_many(docs)
    # The first 150 as a rebuild of one-member stories: read from the document columns.
    stored = _solo_stored(docs[:150], sketches[:150])

    def run(min_garbage: int) -> list[object]:
        monkeypatch.setattr(columns, "MIN_GARBAGE", min_garbage)
        dedup = Deduplicator(settings)
        dedup.load(stored)
        out: list[object] = []
        for i, (d, s) in enumerate(zip(docs[150:], sketches[150:], strict=True)):
            if i % 20 == 0:
                out.append(dedup.evict_before(d.published - timedelta(days=settings.window_days)))
            out.append(dedup.place(d, s))
        index = dedup.stories
        for a in sorted(index.docs.row_of):
            got = index.docs[a]
            out.append((a, got.story, got.ts, got.terms.tolist(), got.names.tolist()))
            out.append(got.slots.tolist() == index.vocab.slots(got.terms).tolist())
        return out

    assert run(0) == run(10**9)


def test_evict_before_forgets_old_articles() -> None:
    dedup = Deduplicator(DedupSettings())
    a = doc(1, BODY)
    dedup.place(a, dedup.sketch(a))
    assert len(dedup) == 1
    assert dedup.evict_before(T0 + timedelta(minutes=1)) == 1
    assert len(dedup) == 0
    b = doc(2, BODY, minutes=5, content_hash="h1")
    assert dedup.place(b, dedup.sketch(b)).copy.tier is Tier.NEW


def test_remove_forgets_one_article_at_both_levels() -> None:
    dedup = Deduplicator(DedupSettings())
    a = doc(1, BODY)
    dedup.place(a, dedup.sketch(a))
    assert dedup.remove(1)
    assert not dedup.remove(1)  # already gone
    assert len(dedup) == 0
    assert not dedup.stories.stories  # its story had no other member
    # The same text again is a new article, not a copy of the removed one.
    b = doc(2, BODY, minutes=5, content_hash="h2")
    placed = dedup.place(b, dedup.sketch(b))
    assert placed.copy.tier is Tier.NEW
    assert placed.story.tier is Tier.NEW


@needs_dev
def test_keys_computed_with_the_sketch_equal_keys_computed_when_placing() -> None:
    docs = [*dev_docs(120), doc(9001, ""), doc(9002, "one two")]  # no text, all lead
    dedup = Deduplicator(DedupSettings())
    sketches = dedup.sketch_many(docs)
    for sketch in sketches:
        sig, card = minhash.decode(sketch.signature)
        band, lead = dedup.copies.keys(sig, card, minhash.decode_lead(sketch.signature))
        assert np.frombuffer(sketch.keys, np.uint64).tolist() == [*band.tolist(), *lead.tolist()]
    # And placing with or without them gives the same placements.
    bare = Deduplicator(DedupSettings())
    keyed = Deduplicator(DedupSettings())
    for d, k in zip(docs, sketches, strict=True):
        assert keyed.place(d, k) == bare.place(d, Sketch(k.signature, k.story))


def test_summary_copy_is_found_by_its_lead() -> None:
    words_ = [f"w{i}" for i in range(600)]
    long = " ".join(words_)
    summary = " ".join(words_[:35])  # 33 shingles inside 598: Jaccard ~0.05
    dedup = Deduplicator(DedupSettings())
    a, b = doc(1, long), doc(2, summary, minutes=5, content_hash="h2")
    dedup.place(a, dedup.sketch(a))
    placed = dedup.place(b, dedup.sketch(b))
    assert placed.copy.tier is Tier.NEAR
    assert placed.copy.cluster_id == 1
    # A short text that is not the lead (the same words from the middle) is not a copy.
    c = doc(3, " ".join(words_[300:335]), minutes=6, content_hash="h3")
    assert dedup.place(c, dedup.sketch(c)).copy.tier is Tier.NEW


def test_stable_argsort_matches_numpy() -> None:
    from newsfold.dedup.index import stable_argsort

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 17, 5000):
        keys = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
        if n > 2:  # repeated keys, and keys sharing their high half only
            keys[rng.integers(0, n, n // 3)] = keys[rng.integers(0, n, n // 3)]
            keys[: n // 4] = (keys[: n // 4] & np.uint64(0xFFFFFFFF00000000)) | rng.integers(
                0, 3, n // 4
            ).astype(np.uint64)
        assert stable_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()


def test_decode_many_matches_decode() -> None:
    rng = random.Random(3)
    sig_blobs, story_blobs = [], []
    for i in range(60):
        sig = np.array([rng.getrandbits(32) for _ in range(128)], np.uint32)
        lead = np.array(sorted(rng.getrandbits(32) for _ in range(rng.choice([0, 3, 20]))))
        ids = np.array(sorted(rng.getrandbits(32) for _ in range(rng.choice([0, 2, IDS]))))
        sig_blobs.append(minhash.encode(sig, i, lead.astype(np.uint32), ids.astype(np.uint32)))
        n = rng.choice([0, 1, 8, 9, 40])
        story_blobs.append(
            stories.encode(
                np.array([rng.getrandbits(32) for _ in range(n)], np.uint32),
                np.array([1 + rng.random() * 9 for _ in range(n)], np.float32),
                np.array([rng.random() < 0.3 for _ in range(n)]),
            )
        )
    decoded = minhash.decode_many(sig_blobs, 20, IDS)
    sigs, cards, leads, nlead = decoded[:4]
    into = (np.empty((60, 128), np.uint32), np.empty(60, np.uint32))
    into += (np.zeros((60, 20), np.uint32), np.empty(60, np.uint8))
    into += (np.zeros((60, IDS), np.uint32), np.empty(60, np.uint8))
    assert minhash.decode_into(sig_blobs, into)
    for got, want in zip(into, decoded, strict=True):
        assert np.array_equal(got, want)
    assert not minhash.decode_into(sig_blobs, (np.empty((60, 129), np.uint32), *into[1:]))
    for k, blob in enumerate(sig_blobs):
        assert np.array_equal(minhash.decode_ids(blob), decoded[4][k, : decoded[5][k]])
        sig, card = minhash.decode(blob)
        lead = minhash.decode_lead(blob)[:20]
        assert (sigs[k] == sig).all() and cards[k] == card and nlead[k] == len(lead)
        assert (leads[k, : len(lead)] == lead).all() and not leads[k, len(lead) :].any()
    terms, weights, names, counts = story_blob.decode_many(story_blobs)
    at = 0
    for blob, c in zip(story_blobs, counts.tolist(), strict=True):
        t, w, nm = stories.decode(blob)
        assert (terms[at : at + c] == t).all() and (weights[at : at + c] == w).all()
        assert (names[at : at + c] == nm).all()
        at += c
    assert at == len(terms)


def test_band_index_answers_as_key_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Band keys recomputed from the signatures give the stored keys' answers, in order."""
    from newsfold.dedup import index
    from newsfold.dedup.copies import band_keys_at, band_keys_many
    from newsfold.dedup.index import BandIndex, KeyIndex

    monkeypatch.setattr(index, "_MIN_PENDING", 8)
    rng = np.random.default_rng(5)
    bands, rows = 6, 2
    table = [rng.integers(0, 3, (700, bands * rows)).astype(np.uint32)]  # few values: shared keys
    band = BandIndex(bands, lambda s, b: band_keys_at(table[0], s, b, rows))
    ref = KeyIndex()

    def check() -> None:
        keys = band_keys_many(table[0][rng.integers(0, len(table[0]), 40)], bands, rows)
        for k in keys:
            assert band.get(k) == ref.get(k)

    first = np.arange(300, dtype=np.int32)
    keys = band_keys_many(table[0][first], bands, rows)
    band.bulk(first, keys.T)
    ref.bulk(keys.ravel(), np.repeat(first, bands))
    check()
    for slot in range(300, 450):
        k = band_keys_many(table[0][slot : slot + 1], bands, rows)[0]
        band.add(k, slot)
        ref.add(k.tolist(), slot)
        if slot % 37 == 0:
            check()
    keep = np.flatnonzero(rng.random(450) < 0.6)
    mapping = np.full(450, -1, np.int32)
    mapping[keep] = np.arange(len(keep), dtype=np.int32)
    table[0] = np.concatenate((table[0][keep], table[0][450:]))
    band.renumber(mapping)
    ref.renumber(mapping)
    check()
    for slot in range(len(keep), len(keep) + 100):
        k = band_keys_many(table[0][slot : slot + 1], bands, rows)[0]
        band.add(k, slot)
        ref.add(k.tolist(), slot)
    check()


def test_id_map_acts_as_a_dict() -> None:
    from newsfold.dedup.index import IdMap

    rng = np.random.default_rng(2)
    ids = rng.choice(10**12, 5000, replace=False).astype(np.int64)
    got, want = IdMap(), {}
    got.bulk(ids[:3000], np.arange(3000, dtype=np.int32))
    want.update(zip(ids[:3000].tolist(), range(3000), strict=True))
    for i, a in enumerate(ids[3000:].tolist()):
        got[a] = 3000 + i
        want[a] = 3000 + i
        if i % 3 == 0:
            victim = int(ids[rng.integers(0, 3000 + i)])
            assert got.pop(victim, None) == want.pop(victim, None)
    assert len(got) == len(want) and sorted(got) == sorted(want)
    assert all(got[a] == r for a, r in want.items())
    assert 10**13 not in got and got.get(10**13) is None


# ------------------------------------------------------------------ rebuild


def _solo_stored(docs: list[DedupDoc], sketches: list[Sketch]) -> list[StoredDoc]:
    """Each document its own copy group and story (the common shape of a rebuild)."""
    return [
        StoredDoc(
            d.article_id,
            d.feed_id,
            d.published,
            d.url,
            d.content_hash,
            d.language,
            s.signature,
            s.story,
            d.article_id,
            d.article_id,
        )
        for d, s in zip(docs, sketches, strict=True)
    ]


def _story_state(dedup: Deduplicator) -> list[object]:
    index = dedup.stories
    out: list[object] = [index.vocab.n_docs, len(index.stories)]
    terms: set[int] = set()
    for a in sorted(index.docs.row_of):
        got = index.docs[a]
        df = index.vocab.df(got.slots)
        out.append((a, got.story, got.ts, got.terms.tolist(), got.weights.tolist()))
        out.append(
            (
                got.names.tolist(),
                df.tolist(),
                got.slots.tolist() == index.vocab.slots(got.terms).tolist(),
            )
        )
        terms.update(got.terms.tolist())
    for t in sorted(terms):
        out.append((t, sorted(index.postings.stories(t))))
    for s in sorted(index.stories):
        story = index.stories[s]
        out.append((s, story.terms.tolist(), np.asarray(story.weights).tolist(), story.members))
    return out


@needs_dev
def test_rebuild_decoded_into_the_columns_equals_the_general_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One-member stories are decoded straight into the story columns; the index and
    the placements that follow are those of ``decode_columns`` + ``add_many``."""
    settings = DedupSettings()
    docs = dev_docs(300)
    sketches = Deduplicator(settings).sketch_many(docs)
    stored = _solo_stored(docs[:200], sketches[:200])
    unsorted = [*stored]
    blob = stories.encode(
        np.array([9, 3], np.uint32), np.array([1.0, 2.0], np.float32), np.array([True, False])
    )
    unsorted[5] = StoredDoc(
        **{**{f: getattr(stored[5], f) for f in StoredDoc.__slots__}, "story": blob}
    )

    solo = rebuild.Rebuild.load_solo

    def run(batch: list[StoredDoc], direct: bool) -> list[object]:
        taken: list[bool] = []

        def spy(self: rebuild.Rebuild, *args: object) -> bool:
            taken.append(direct and solo(self, *args))  # type: ignore[arg-type]
            return taken[-1]

        monkeypatch.setattr(rebuild.Rebuild, "load_solo", spy)
        dedup = Deduplicator(settings)
        dedup.load(batch)
        state = _story_state(dedup)
        placed = [dedup.place(d, s) for d, s in zip(docs[200:], sketches[200:], strict=True)]
        return [taken, state, placed, _story_state(dedup)]

    fast, general = run(stored, True), run(stored, False)
    assert fast[0] == [True] and general[0] == [False]
    assert fast[1:] == general[1:]
    # Story ids out of time order (one member each, as after a restart that kept them).
    shuffled = [
        StoredDoc(**{**{f: getattr(x, f) for f in StoredDoc.__slots__}, "story_id": 10**6 - i})
        for i, x in enumerate(stored)
    ]
    got, want = run(shuffled, True), run(shuffled, False)
    assert got[0] == [True] and got[1:] == want[1:]
    empty = stories.encode(np.empty(0, np.uint32), np.empty(0, np.float32), np.empty(0, bool))
    bare = [
        StoredDoc(**{**{f: getattr(x, f) for f in StoredDoc.__slots__}, "story": empty})
        for x in stored
    ]
    got, want = run(bare, True), run(bare, False)
    assert got[0] == [True] and got[1:] == want[1:]
    for batch in (unsorted,):  # not decodable in place: the general path
        got, want = run(batch, True), run(batch, False)
        assert got[0] == [False] and got[1:] == want[1:]


def test_ranks_in_the_vocabulary_are_its_positions() -> None:
    rng = np.random.default_rng(4)
    vocab = np.unique(rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32))
    # Terms sharing their high bits, their low bits, or both with other terms.
    extra = np.concatenate((vocab[:50] ^ np.uint32(1), vocab[50:100] ^ np.uint32(1 << 31)))
    vocab = np.unique(np.concatenate((vocab, extra, [0, 1, 2**32 - 1])).astype(np.uint32))
    terms = vocab[rng.integers(0, len(vocab), 20000)]
    out = np.empty(len(terms), np.int32)
    rebuild.ranks_into(vocab, terms, out)
    assert out.tolist() == np.searchsorted(vocab, terms).tolist()


def test_content_hash_keys_in_bulk_equal_one_at_a_time() -> None:
    from newsfold.dedup.keys import hash_key as _hash_key
    from newsfold.dedup.keys import hash_keys as _hash_keys

    values = ["", "h", "h2", "abcdefgh", "abcdefghi", "0" * 64, "1" * 64, "ab" * 16, ""]
    for batch in (values, [*values, "é"], ["f" * 32] * 3, []):
        assert _hash_keys(batch).tolist() == [_hash_key(v) for v in batch]
    assert len({_hash_key(v) for v in values}) == len(set(values))


def test_decode_into_fresh_rows_leaves_the_padding_alone() -> None:
    rng = np.random.default_rng(6)
    blobs = [
        minhash.encode(
            rng.integers(0, 2**32, 128, dtype=np.uint64).astype(np.uint32),
            i,
            np.sort(rng.integers(0, 2**32, n, dtype=np.uint64)).astype(np.uint32),
        )
        for i, n in enumerate([0, 3, 70, 0, 12] * 4)
    ]
    sigs, cards, leads, nlead, _, _ = minhash.decode_many(blobs, 60, IDS)
    into = (
        np.empty((20, 128), np.uint32),
        np.empty(20, np.uint32),
        np.full((20, 60), 7, np.uint32),
    )
    into += (np.empty(20, np.uint8), np.full((20, IDS), 7, np.uint32), np.empty(20, np.uint8))
    assert minhash.decode_into(blobs, into)
    for got, want in zip(into[:2], (sigs, cards), strict=True):
        assert np.array_equal(got, want)
    assert np.array_equal(into[3], nlead)
    padding = np.arange(60)[None, :] >= nlead[:, None]
    assert np.array_equal(into[2][~padding], leads[~padding])
    assert (into[2][padding] == 7).all()  # never written: those pages stay untouched
    assert (into[4] == 7).all() and not into[5].any()  # no identifiers in these blobs


def test_id_map_bulk_of_ids_in_order() -> None:
    from newsfold.dedup.index import IdMap

    got = IdMap.of(np.array([5, 9], np.int64), np.array([0, 1], np.int32))
    got[7] = 2
    got.bulk(np.array([10, 11, 12], np.int64), np.array([3, 4, 5], np.int32))
    assert [(a, got[a]) for a in sorted(got)] == [(5, 0), (7, 2), (9, 1), (10, 3), (11, 4), (12, 5)]
    got.bulk(np.array([13, 9], np.int64), np.array([6, 7], np.int32))  # a later pair wins
    assert got[9] == 7 and got[13] == 6 and len(got) == 7


def test_name_flags_kept_as_bits_read_back_at_any_position() -> None:
    rng = np.random.default_rng(8)
    docs = columns.DocColumns()
    want: list[bool] = []
    for k in range(300):  # bags of every length, at every bit offset
        flags = rng.random(int(rng.integers(0, 13))) < 0.4
        terms = np.arange(len(flags), dtype=np.uint32)
        weights = np.full(len(flags), 7, np.int64)
        docs.append_one(k, k, 0.0, (terms, weights, np.where(flags, weights, 0)), terms)
        want.extend(flags.tolist())
    assert docs.names_at(0, docs.used).tolist() == want
    for k in range(300):
        lo, hi = docs.span(docs.row_of[k])
        assert docs.names_at(lo, hi).tolist() == want[lo:hi]


def test_lsh_params_equal_datasketch_choice() -> None:
    """The owned parameter search picks datasketch's (bands, rows) over a grid."""
    from datasketch.lsh import _optimal_param  # the reference: datasketch's own search

    from newsfold.dedup.copies import lsh_params

    for num_perm in (16, 128, 256):
        for threshold in [t / 20 for t in range(1, 20)]:
            for fn in (0.2, 0.5, 0.8):
                want = _optimal_param(threshold, num_perm, 1.0 - fn, fn)
                assert lsh_params(threshold, num_perm, fn) == tuple(want), (num_perm, threshold)
