"""Line rules and the learned per-source boilerplate model."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsfold.config import NormaliseSettings
from newsfold.errors import StorageError
from newsfold.normalise import BoilerplateModel, normalise_entry
from newsfold.normalise.boilerplate import clean_lines, comparison_lines, line_key
from newsfold.normalise.rules import site_names
from newsfold.types import FeedSource, RawEntry

PROSE = "The council approved the budget on Tuesday after a long debate about school funding."
SITE = site_names("Voz.us — World", "https://voz.us/en/world", "https://voz.us/feed")


@pytest.mark.parametrize(
    ("lines", "kept", "fired"),
    [
        (["Voz media US Voz.us", PROSE], [PROSE], {"site_banner"}),
        (["VOZ.US", PROSE], [PROSE], {"site_banner"}),
        ([PROSE, "Voz.us"], [PROSE], {"site_banner"}),
        (["Published by", PROSE], [PROSE], {"byline"}),
        (["By Jane Doe", PROSE], [PROSE], {"byline"}),
        (["BY JANE DOE, Staff Writer", PROSE], [PROSE], {"byline"}),
        (["By Jane Doe | Dec. 1, 2024", PROSE], [PROSE], {"byline"}),
        (["Updated 3:45 p.m. ET", PROSE], [PROSE], {"byline"}),
        (["Last updated: 2 December 2024", PROSE], [PROSE], {"byline"}),
        (["December 1, 2024", PROSE], [PROSE], {"byline"}),
        (["4 min read", PROSE], [PROSE], {"byline"}),
        (
            ["People check the damage in the city of IdlibMuhammad Haj Kadour / AFP", PROSE],
            [PROSE],
            {"photo_credit"},
        ),
        (["Photo: Jane Doe", PROSE], [PROSE], {"photo_credit"}),
        (["Photo by Jane Doe/Getty Images", PROSE], [PROSE], {"photo_credit"}),
        (["Image via Example Archive", PROSE], [PROSE], {"photo_credit"}),
        (
            ["A crowd gathers outside the court. (AP Photo/Jo Smith)", PROSE],
            [PROSE],
            {"photo_credit"},
        ),
        ([PROSE, "Read more: Another story entirely"], [PROSE], {"call_to_action"}),
        ([PROSE, "Subscribe to our newsletter"], [PROSE], {"call_to_action"}),
        ([PROSE, "Share this article"], [PROSE], {"call_to_action"}),
        ([PROSE, "Share on Facebook"], [PROSE], {"call_to_action"}),
        (
            [PROSE, "The post Budget passes appeared first on Example Gazette."],
            [PROSE],
            {"call_to_action"},
        ),
        ([PROSE, "© 2024 Example Media. All rights reserved."], [PROSE], {"copyright"}),
        ([PROSE, "tracking"], [PROSE], {"trailing_word"}),
        ([PROSE, "***"], [PROSE], {"residue"}),
        ([PROSE + " Read more »"], [PROSE], {"read_more"}),
        ([PROSE + " […]"], [PROSE], {"read_more"}),
        # Prose that merely starts like a rule must stay.
        (
            ["By the end of the year, prices will have risen by a tenth, the bank said."],
            None,
            set(),
        ),
        (["Share prices fell 3% on Monday."], None, set()),
        (["Reported cases rose to 500 in March."], None, set()),
        (["Video shows the moment the bridge collapsed."], None, set()),
        (["Copyright law changed in 2019, the court said."], None, set()),
        (["Updated guidance was published on Monday."], None, set()),
        (
            [PROSE, "Voz.us reporters visited the region last week and spoke to families."],
            None,
            set(),
        ),
        (["Geopolitical context", PROSE, PROSE, "Voz.us in the middle", PROSE, PROSE], None, set()),
        (["tracking"], None, set()),  # never empties a one-line article
    ],
)
def test_line_rules(lines: list[str], kept: list[str] | None, fired: set[str]) -> None:
    out, names = clean_lines(lines, site=SITE)
    assert out == (lines if kept is None else kept)
    assert set(names) == fired


def test_title_repeat_within_first_lines() -> None:
    out, names = clean_lines(["Voz.us", "The Headline!", PROSE], site=SITE, title="The headline")
    assert out == [PROSE]
    assert set(names) == {"title_repeat", "site_banner"}


@pytest.mark.parametrize(
    ("lines", "expected", "fired"),
    [
        (
            ["WASHINGTON (AP) — The Senate voted.", PROSE],
            ["The Senate voted.", PROSE],
            {"agency_prefix"},
        ),
        (["LONDON (Reuters) - Shares fell.", PROSE], ["Shares fell.", PROSE], {"agency_prefix"}),
        (["(Reuters) - Shares fell.", PROSE], ["Shares fell.", PROSE], {"agency_prefix"}),
        (
            ["PARIS, Dec 1 (AFP) – Trains stopped.", PROSE],
            ["Trains stopped.", PROSE],
            {"agency_prefix"},
        ),
        (["NEW YORK — Markets rose.", PROSE], ["Markets rose.", PROSE], {"agency_prefix"}),
        ([PROSE, "(Reporting by A; Editing by B)"], [PROSE], {"reporting_credit"}),
        (
            [PROSE, "Associated Press writer Jo Bell contributed to this report."],
            [PROSE],
            {"reporting_credit"},
        ),
        (["A subhead", PROSE], [PROSE], {"subhead"}),
        (["Only short lines", "nothing else"], ["Only short lines", "nothing else"], set()),
    ],
)
def test_comparison_rules(lines: list[str], expected: list[str], fired: set[str]) -> None:
    out, names = comparison_lines(lines)
    assert out == expected
    assert set(names) == fired


def test_site_names_from_feed_title_and_domain() -> None:
    names = site_names("Lakeshore Tribune | Sport", "https://www.lakeshoretribune.com/sport")
    assert names.matches("LAKESHORE TRIBUNE")
    assert names.matches("lakeshoretribune.com")
    assert not names.matches("Sport")
    assert not site_names(None, None).matches("anything")


# --- learned boilerplate ---------------------------------------------------------

HEADER = "Morning Edition from the Valley Desk"
FOOTER = "Got a tip? Write to the newsroom, we read every message."
UNIQUE = "This sentence about the harbour festival appears in one article only."


def _article(i: int, rnd: random.Random) -> str:
    words = [
        "river",
        "council",
        "school",
        "budget",
        "road",
        "market",
        "police",
        "storm",
        "farm",
        "rail",
    ]
    body = [
        " ".join(rnd.choice(words) for _ in range(18)).capitalize() + f" number {i}."
        for _ in range(4)
    ]
    return "\n".join([HEADER, *body, FOOTER])


def test_learned_boilerplate_removes_shared_lines_keeps_unique_ones() -> None:
    rnd = random.Random(5)
    model = BoilerplateModel()
    texts = [_article(i, rnd) for i in range(30)]
    texts[17] = texts[17].replace(FOOTER, UNIQUE + "\n" + FOOTER)
    for text in texts:
        model.observe(text)
    cleaned, fired = model.clean(texts[17])
    assert fired == ("learned",)
    assert HEADER not in cleaned
    assert FOOTER not in cleaned
    assert UNIQUE in cleaned
    assert cleaned.count("\n") == 4  # four body lines and the unique one
    assert model.learned_lines() == 2


def test_learned_state_round_trips_through_json() -> None:
    rnd = random.Random(9)
    model = BoilerplateModel(window=40, min_share=0.6, min_docs=4)
    texts = [_article(i, rnd) for i in range(30)]
    for text in texts:
        model.observe(text)
    restored = BoilerplateModel.from_json(model.to_json())
    assert restored.window == 40
    assert restored.min_docs == 4
    assert restored.documents == model.documents
    probe = _article(99, rnd)
    assert restored.clean(probe) == model.clean(probe)
    assert restored.to_json() == model.to_json()


def test_model_needs_enough_documents_and_never_empties_text() -> None:
    model = BoilerplateModel(min_docs=5)
    for _ in range(3):
        model.observe(f"{HEADER}\nbody a")
    assert model.clean(f"{HEADER}\nbody") == (f"{HEADER}\nbody", ())
    model = BoilerplateModel(min_docs=2)
    for i in range(6):
        model.observe(f"{HEADER}\n{FOOTER}\nstory {i}")
    assert model.clean(f"{HEADER}\n{FOOTER}") == (f"{HEADER}\n{FOOTER}", ())


def test_same_article_observed_again_teaches_nothing() -> None:
    model = BoilerplateModel(min_docs=2)
    for _ in range(10):
        model.observe(f"{PROSE}\nSecond line of the same story.")
    assert model.documents == 1
    assert model.clean(f"{PROSE}\nother") == (f"{PROSE}\nother", ())


def test_window_forgets_old_articles() -> None:
    model = BoilerplateModel(window=10, min_docs=3)
    # Numbers are ignored when lines are compared, so the stories differ in words.
    for i in range(10):
        model.observe(f"Old footer line\nstory {chr(97 + i)}")
    assert model.is_boilerplate("Old footer line")
    for i in range(10):
        model.observe(f"later story {chr(97 + i)}")
    assert not model.is_boilerplate("Old footer line")
    assert model.documents == 10


def test_numbers_do_not_hide_a_recurring_line() -> None:
    model = BoilerplateModel(min_docs=3)
    for year in range(2015, 2025):
        model.observe(f"© {year} Valley Media\nstory of {year} " + "x" * (year - 2000))
    assert model.is_boilerplate("© 2031 Valley Media")


def test_observing_cleaned_output_does_not_unlearn() -> None:
    """Fed its own output (``Article.text``), the model keeps what it learned."""
    rnd = random.Random(3)
    model = BoilerplateModel(window=20, min_docs=3)
    for i in range(60):
        cleaned, _ = model.clean(_article(i, rnd))
        model.observe(cleaned)
    assert model.is_boilerplate(HEADER)
    assert model.is_boilerplate(FOOTER)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "not json",
        "[]",
        '{"version": 99}',
        '{"version": 1, "window": 5, "min_share": 0.5, "min_docs": 2, "docs": [[1]]}',
    ],
)
def test_from_json_rejects_bad_state(data: str) -> None:
    with pytest.raises(StorageError):
        BoilerplateModel.from_json(data)


def test_normalise_entry_observe_and_clean() -> None:
    rnd = random.Random(1)
    settings = NormaliseSettings()
    model = BoilerplateModel.from_settings(settings)
    feed = FeedSource(id=4, url="https://valley.example/feed", title="Valley News")
    now = datetime(2024, 12, 2, tzinfo=UTC)
    article = None
    for i in range(30):
        html = "".join(f"<p>{line}</p>" for line in _article(i, rnd).splitlines())
        entry = RawEntry(guid=str(i), link=None, title=f"Story {i}", content_html=html)
        article = normalise_entry(
            entry, feed, fetched_at=now, settings=settings, boilerplate=model, observe=True
        )
    assert article is not None
    assert HEADER not in article.text
    assert FOOTER not in article.text
    assert "learned" in article.rules_fired


_ASCII_LINE = st.text(alphabet=st.characters(max_codepoint=127), max_size=60)


@given(st.one_of(_ASCII_LINE, st.text(max_size=30)))
def test_line_key_is_the_regex_definition(line: str) -> None:
    # The ASCII fast path must give the keys stored models already hold.
    squashed = re.sub(r"[\W_]+", " ", re.sub(r"\d+", "0", line.casefold())).strip()
    expected = hashlib.blake2b(squashed.encode("utf-8", "replace"), digest_size=6).hexdigest()
    assert line_key(line) == expected


def test_line_key_ignores_case_punctuation_and_numbers() -> None:
    assert line_key("© 2023 Example News_Ltd.") == line_key("© 1999 example -- news ltd")
    assert line_key("Follow us on X") != line_key("Follow us on Y")
