"""Feed templates (normalise/template.py) and identifiers (dedup/identifiers.py) in the copy tier."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.dedup.identifiers import conflicts, identifier_keys
from newsfold.errors import StorageError
from newsfold.normalise import BoilerplateModel, FeedTemplate
from newsfold.normalise.template import _gram_keys, item_keys
from newsfold.types import Tier

T0 = datetime(2025, 11, 3, 9, tzinfo=UTC)
REDDIT = "submitted by /u/{user} [link] [comments]"
CHANNEL = (
    "Hak5 -- Cyber Security Education, Inspiration, News and Community since 2005. Our Site "
    "https://www.hak5.org Shop https://shop.hak5.org Support the show and follow us everywhere."
)
PROSE = [
    "Regulators opened an inquiry into a data broker that sold location histories.",
    "A ransomware gang leaked files stolen from a hospital network in Ohio last week.",
    "The browser maker shipped an emergency fix for a flaw exploited in the wild.",
    "Researchers found a worm spreading through hundreds of npm packages on Monday.",
    "A court fined the telecom operator for failing to protect customer records.",
    "Police arrested two suspects linked to a phishing kit sold on Telegram channels.",
    "The cloud provider blamed a configuration change for a six hour outage.",
    "A new botnet hijacks home routers to relay traffic for criminal proxies.",
    "Investigators traced the stolen funds through a chain of crypto mixers.",
]


def _learned(texts: list[str]) -> FeedTemplate:
    template = FeedTemplate()
    for text in texts:
        template.observe(text)
    return template


@pytest.mark.parametrize(
    ("texts", "probe", "expected"),
    [
        # Reddit: the wrapper goes, a user name between its parts goes with it.
        ([REDDIT.format(user=f"user_{c}") for c in "abcdefghi"], REDDIT.format(user="zed"), ""),
        # A user name with digits stays: two posts of one user are not one report.
        (
            [REDDIT.format(user=f"user_{c}") for c in "abcdefghi"],
            "My talk on lateral movement " + REDDIT.format(user="S3cur3"),
            "My talk on lateral movement submitted by /u/S3cur3",
        ),
        # A channel's description under every video is all template: no body.
        ([CHANNEL] * 9, CHANNEL, ""),
        # Prose shares no template: returned as it is.
        (PROSE, PROSE[0], PROSE[0]),
    ],
)
def test_template_strip(texts: list[str], probe: str, expected: str) -> None:
    assert _learned(texts).strip(probe) == expected


def test_notes_keep_what_tells_them_apart() -> None:
    note = (
        "CISA has added one new vulnerability to its Known Exploited Vulnerabilities Catalog, "
        "based on evidence of active exploitation. {cve} Gladinet Triofox Improper Access "
        "Control Vulnerability. CISA urges all organizations to reduce their exposure."
    )
    cves = [f"CVE-2025-{12480 + n}" for n in range(9)]
    template = _learned([note.format(cve=c) for c in cves])
    left = {template.strip(note.format(cve=c)) for c in cves}
    assert len(left) == len(cves)  # each keeps its own id
    assert all(len(text.split()) < 8 for text in left)


def test_nothing_is_removed_before_a_feed_has_shown_enough_items() -> None:
    # A small feed's few reports of one event share facts, not a template.
    fact = "The outage started on Saturday and cut the cable between Abu Talat and Marseille."
    few = _learned([f"{fact} Update {n}." for n in range(5)])
    assert few.strip(f"{fact} Update 9.") == f"{fact} Update 9."


def test_template_survives_a_restart_with_the_boilerplate_model() -> None:
    model = BoilerplateModel()
    for c in "abcdefghi":
        model.observe(REDDIT.format(user=f"user_{c}"))
    restored = BoilerplateModel.from_json(model.to_json())
    assert restored.template.documents == 9
    assert restored.template.strip(REDDIT.format(user="zed")) == ""
    # A model stored before templates were learned still reads.
    old = model.to_json().replace(',"template":"', ',"unused":"')
    assert BoilerplateModel.from_json(old).template.documents == 0
    with pytest.raises(StorageError):
        BoilerplateModel.from_json(model.to_json().replace('"template":"', '"template":"!'))


def test_template_learned_from_keys_read_once() -> None:
    # The writer teaches a feed's model the 3-grams the worker read: the same model.
    long_note = " ".join(PROSE * 4) + " " + REDDIT.format(user="tail")  # head and tail read
    texts = [*(REDDIT.format(user=f"user_{c}") for c in "abcdefgh"), long_note, ""]
    by_text, by_keys = FeedTemplate(), FeedTemplate()
    for text in texts:
        by_text.observe(text)
        by_keys.observe(text, item_keys(text))
    assert by_keys.to_state() == by_text.to_state() != ""
    assert by_keys.documents == 9  # a text without words teaches nothing


def _keys_read_whole(text: str) -> frozenset[int]:
    """``item_keys`` as specified: every word read, then the first 120 and last 60 kept."""
    words = [t.casefold() for t in re.findall(r"\w+", text)]
    if len(words) <= 180:
        return frozenset(_gram_keys(words)) if words else frozenset()
    return frozenset(_gram_keys(words[:120])[:-1] + _gram_keys(words[-60:])[1:])


@pytest.mark.parametrize("seed", range(6))
def test_item_keys_read_from_the_ends_as_from_the_whole(seed: int) -> None:
    # Long texts are read from their two ends only: words cut by the spans, words longer
    # than the spans expect, and texts just long enough must all give the same keys.
    rng = random.Random(seed)
    for size in (0, 3, 150, 181, 200, 300, 2000):
        for alphabet in ("ab ", "abcdefghij  \n", "Straße İstanbul 東京 x-1 ", "a" * 30 + " "):
            text = "".join(rng.choice(alphabet) for _ in range(size * 8))
            assert item_keys(text) == _keys_read_whole(text)


def test_template_follows_each_new_item() -> None:
    # What is template is kept between strips, and forgotten when an item comes.
    template = _learned(PROSE[:8])
    probe = REDDIT.format(user="zed")
    assert template.strip(probe) == probe
    for c in "abcdefghi":
        template.observe(REDDIT.format(user=f"user_{c}"))
    assert template.strip(probe) == ""
    assert template.copy().strip(probe) == ""


def test_identifiers_fill_slots() -> None:
    a = identifier_keys("Shelly Pro 3EM devices are affected by the flaw.")
    b = identifier_keys("Shelly Pro 4PM devices are affected by the flaw.")
    differ, shared = conflicts(a, b)
    assert differ == 1 and shared >= 1
    assert conflicts(a, a) == (0, 0)
    # A copy's edits remove identifiers; they do not refill a slot.
    assert conflicts(a, identifier_keys("Shelly Pro devices are affected."))[0] == 0
    # Scripts without case: digits only (Arabic, CJK).
    assert len(identifier_keys("أعلنت الشركة عن ثغرة جديدة في عام 2025")) == 1
    assert len(identifier_keys("東京で 2025年 に発表された")) == 1


ADVISORY = (
    "A vulnerability has been discovered in the widely used Gladinet Triofox file server, "
    "tracked as {cve}, which could allow an unauthenticated attacker to bypass access "
    "control and run code on the server. Administrators should apply the vendor's update "
    "as soon as possible, review logs for signs of compromise and restrict access to the "
    "management interface from untrusted networks until the patch is applied. The flaw is "
    "being exploited in the wild according to several security firms."
)


def _doc(
    article_id: int, text: str, *, feed: int, title: str = "", url: str | None = None
) -> DedupDoc:
    return DedupDoc(
        article_id=article_id,
        feed_id=feed,
        published=T0 + timedelta(minutes=article_id),
        title=title,
        text=text,
        url=url,
        content_hash=f"h{hash(text)}",
        language="en",
    )


def _place(docs: list[DedupDoc]) -> list[Tier]:
    dedup = Deduplicator(DedupSettings())
    return [dedup.place(d, dedup.sketch(d)).copy.tier for d in docs]


@pytest.mark.parametrize(
    ("second", "tier"),
    [
        # One CVE id apart: two advisories, whatever their Jaccard.
        (_doc(2, ADVISORY.format(cve="CVE-2025-12481"), feed=2), Tier.NEW),
        # The same advisory from another outlet: a copy.
        (_doc(2, "Security alert: " + ADVISORY.format(cve="CVE-2025-12480"), feed=2), Tier.NEAR),
        # The same feed, its identical text under another title and URL: its template.
        (_doc(2, ADVISORY.format(cve="CVE-2025-12480"), feed=1, title="Episode 2"), Tier.NEW),
        # The same feed under the same title: a copy.
        (_doc(2, ADVISORY.format(cve="CVE-2025-12480"), feed=1, title="Episode 1"), Tier.EXACT),
    ],
)
def test_identifiers_and_own_items(second: DedupDoc, tier: Tier) -> None:
    first = _doc(1, ADVISORY.format(cve="CVE-2025-12480"), feed=1, title="Episode 1")
    assert _place([first, second]) == [Tier.NEW, tier]


def test_short_texts_need_their_title_and_blurbs_meet_by_headline() -> None:
    user = _doc(1, "alt69785", feed=1, title="Hitchhiker's guide to attack surfaces")
    other = _doc(2, "alt69785", feed=2, title="Split-second side doors in CI pipelines")
    cross = _doc(3, "alt69785", feed=3, title="Hitchhiker's guide to attack surfaces")
    assert _place([user, other, cross]) == [Tier.NEW, Tier.NEW, Tier.EXACT]
    headline = "MS Teams Guest Access Can Remove Defender Protection"
    full = _doc(1, ADVISORY.format(cve="CVE-2025-1"), feed=1, title=headline)
    blurb = _doc(2, "Guest access in Teams can strip Defender protection.", feed=2, title=headline)
    assert _place([full, blurb]) == [Tier.NEW, Tier.NEAR]
