"""Story terms in every language: stems, stop words, names and scripts without spaces or case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from newsfold.config import DedupSettings
from newsfold.dedup import DedupDoc, Deduplicator
from newsfold.dedup.feed_titles import FeedTitles, title_terms
from newsfold.dedup.terms import language, term_weights
from newsfold.types import Tier


def _bag(title: str, text: str, lang: str | None) -> tuple[dict[str, float], set[str]]:
    names: set[str] = set()
    bag = term_weights(
        title, text, title_boost=2.0, name_boost=2.0, language_code=lang, names=names
    )
    return bag, names


def test_german_compounds_and_inflections_meet() -> None:
    a, _ = _bag("", "Die Daten von 185.000 weiteren British-Airways-Kunden wurden gestohlen.", "de")
    b, _ = _bag("", "British Airways: Kundendaten von 185,000 Kunden betroffen.", "de")
    shared = set(a) & set(b)
    assert {"briti", "airwa", "kunde", "185000"} <= shared  # hyphen parts, prefix stems, numbers
    assert "die" not in a and "von" not in a  # German function words


def test_german_nouns_are_not_names_but_numbers_and_acronyms_are() -> None:
    _, names = _bag(
        "", "Das Werk in Augsburg schließt, sagt der Betriebsrat. BIOS 2018 iPhone.", "de"
    )
    assert "werk" not in names and "betri" not in names and "augsb" not in names
    assert {"bios", "2018", "iphon"} <= names


def test_english_capitalised_words_inside_a_sentence_are_names() -> None:
    _, names = _bag("", "Shares of AMD fell after the chipmaker met Intel in court.", "en")
    assert {"amd", "intel"} <= names
    assert "chipmak" not in names and "share" not in names  # sentence-initial, lowercase


@pytest.mark.parametrize(
    ("lang", "word", "stem"),
    [("en", "attacks", "attack"), ("fr", "attaques", "attaqu"), ("es", "ataques", "ataqu"),
     ("it", "attacchi", "attacc"), ("nl", "aanvallen", "aanval"), ("pt", "ataques", "ataqu"),
     ("ru", "атаками", "атак")],
)  # fmt: skip
def test_each_language_has_its_stemmer(lang: str, word: str, stem: str) -> None:
    assert language(lang).stem(word) == stem
    assert language(lang).stopwords  # and its function words


def test_unknown_language_falls_back_safely() -> None:
    rules = language(None)
    assert rules.stem("Attacks") == "Attacks" and not rules.stopwords
    bag, names = _bag("", "Zzyzx qwerty flurbo.", "xx")
    assert set(bag) == {"zzyzx", "qwerty", "flurbo"} and not names


@pytest.mark.parametrize(
    ("lang", "text", "dates"),
    [
        ("en", "The office shut on Monday 24 November after the breach.", {"monday", "novemb"}),
        ("de", "Am Donnerstag, 25. Oktober, schloss das Werk.", {"donne", "oktob"}),
        ("fr", "Le jeudi 25 octobre, l'usine a fermé.", {"jeud", "octobr"}),
        ("ru", "В четверг, 25 октября, завод закрылся.", {"четверг", "октябр"}),
    ],
)
def test_month_and_weekday_names_are_no_evidence(lang: str, text: str, dates: set[str]) -> None:
    # Every report of a day names its date: two roundups of one week are not one story.
    bag, names = _bag("", text, lang)
    assert not dates & set(bag) and not dates & names
    assert bag  # the rest of the sentence still counts


def test_addresses_and_handles_are_not_terms() -> None:
    bag, _ = _bag(
        "The worm is back",
        "Links: https://example.com/story?id=7 www.example.org/x news@example.net @somehost\n"
        "The worm spread to npm.",
        "en",
    )
    assert {"worm", "spread", "npm", "link"} <= set(bag)
    assert not {"https", "com", "www", "exampl", "somehost", "news", "org"} & set(bag)


def test_cjk_text_becomes_character_bigrams() -> None:
    bag, _ = _bag("", "中国首次民营火箭发射失败", "zh")
    assert {"中国", "火箭", "发射", "失败"} <= set(bag)


def test_urdu_text_has_terms_without_case() -> None:
    bag, names = _bag("", "کراچی میں شدید بارش سے سیلاب 2024", "ur")
    assert {"کراچی", "بارش", "سیلاب"} <= set(bag)
    assert names == {"2024"}  # no capitals to read: only numbers are names


def _doc(n: int, title: str, text: str, lang: str, hours: float = 0.0) -> DedupDoc:
    when = datetime(2025, 11, 3, 9, tzinfo=UTC) + timedelta(hours=hours)
    return DedupDoc(n, n, when, title, text, f"https://o{n}.example/{n}", f"h{n}", lang)


# Unrelated reports of the same days: document frequencies need a window to mean anything.
BACKGROUND = [
    ("Neue Grafikkarten im Test", "Die neuen Grafikkarten sind schneller und teurer als ihre Vorgänger."),
    ("Bahn erhöht die Preise", "Die Bahn erhöht im Dezember die Preise für Fahrkarten im Fernverkehr."),
    ("Streik bei der Lufthansa", "Piloten der Lufthansa streiken am Montag, viele Flüge fallen aus."),
    ("Wetter: Sturm über Norddeutschland", "Ein Sturm bringt Regen und Wind an die Küste."),
    ("Rust 1.30 erschienen", "Die Programmiersprache Rust bringt in Version 1.30 neue Makros."),
    ("Election results in Ohio", "Voters in Ohio chose a new governor on Tuesday night."),
    ("Storm hits the coast", "A storm brought heavy rain and wind to the east coast."),
    ("New phone announced", "The company announced a new phone with a larger screen."),
]  # fmt: skip


def _stories(docs: list[DedupDoc], **settings: float) -> list[int]:
    dedup = Deduplicator(DedupSettings(**settings))
    for n, (title, text) in enumerate(BACKGROUND, 100):
        lang = "en" if n >= 105 else "de"
        bg = _doc(n, title, text, lang, hours=-5)
        dedup.place(bg, dedup.sketch(bg))
    out = []
    for doc in docs:
        placement = dedup.place(doc, dedup.sketch(doc))
        out.append(placement.story.cluster_id)
    return out


FUJITSU = [
    ("Augsburg: Fujitsu Deutschland macht alles dicht",
     "Fujitsu schließt sein Werk in Augsburg. Die Produktion wird nach Japan verlagert, "
     "rund 1.500 Beschäftigte sind betroffen."),
    ("Fujitsu schließt Werk in Augsburg",
     "Der japanische Konzern Fujitsu gibt sein Werk in Augsburg auf; 1500 Mitarbeiter "
     "verlieren ihre Arbeit."),
]  # fmt: skip


def test_two_german_outlets_on_one_event_join() -> None:
    docs = [_doc(i + 1, t, x, "de", hours=i) for i, (t, x) in enumerate(FUJITSU)]
    assert len(set(_stories(docs))) == 1


def test_a_short_and_a_long_report_of_one_event_join() -> None:
    long = (
        "Cloudflare said a configuration file that grew beyond its expected size caused the "
        "outage that took down X, Spotify and thousands of other sites on Tuesday. "
        "The file, used by Cloudflare's bot management system, was generated every few "
        "minutes and propagated to the whole network. Cloudflare's chief executive apologised "
        "and said the outage was not caused by an attack. Services were restored after about "
        "three hours, the company said, as engineers rolled back the file."
    )
    short = "Cloudflare outage takes down X and Spotify; a bot management configuration file was to blame."
    docs = [
        _doc(1, "Cloudflare explains the outage that took down X and Spotify", long, "en"),
        _doc(2, "Cloudflare outage: bot management file to blame", short, "en", hours=2),
    ]
    assert len(set(_stories(docs))) == 1


def test_same_day_same_kind_results_of_two_companies_stay_apart() -> None:
    docs = [
        _doc(1, "Quartalszahlen: Intel legt Rekordquartal hin",
             "Intel hat im dritten Quartal 2018 einen Rekordumsatz von 19,2 Milliarden US-Dollar "
             "erzielt. Der Gewinn stieg dank Xeon-Prozessoren und Modems.", "de"),
        _doc(2, "Quartalszahlen: AMDs Aktie fällt nach mäßiger Prognose",
             "AMD hat im dritten Quartal 2018 den Umsatz gesteigert, doch der Ausblick enttäuschte "
             "und die Aktie gab nach. Der Gewinn lag bei 102 Millionen US-Dollar.", "de", hours=1),
    ]  # fmt: skip
    stories = _stories(docs)
    assert stories[0] != stories[1]


def test_terms_are_a_function_of_the_text_not_of_earlier_texts() -> None:
    first = _bag("Titel", "Text über Augsburg und Fujitsu.", "de")
    _bag("Other", "Many other words in English.", "en")
    assert _bag("Titel", "Text über Augsburg und Fujitsu.", "de") == first
    assert Tier.STORY  # the tier the joins above are made on


ADVISORIES = [
    ("Rockwell Automation Arena Simulation",
     "Successful exploitation of these vulnerabilities could allow an attacker to execute "
     "arbitrary code on the affected device. Rockwell Automation Arena Simulation versions "
     "before 16.20.10 are affected."),
    ("Opto 22 groov View",
     "Successful exploitation of these vulnerabilities could allow an attacker to execute "
     "arbitrary code on the affected device. Opto 22 groov View versions before 4.5 are "
     "affected."),
]  # fmt: skip


@pytest.mark.parametrize(("same_feed", "joined"), [(True, False), (False, True)])
def test_one_feed_needs_stronger_evidence_than_two_outlets(same_feed: bool, joined: bool) -> None:
    """One agency's advisories of a day share their wording: not one story. The same two texts
    from two outlets are judged on a threshold under their similarity (the names guard, which
    also tells these two apart, is off here to show the feed rule alone)."""
    docs = [_doc(i + 1, t, x, "en", hours=i) for i, (t, x) in enumerate(ADVISORIES)]
    if same_feed:
        docs = [replace(d, feed_id=7) for d in docs]
    stories = _stories(docs, story_name_threshold=0.0, story_threshold=0.2)
    assert (stories[0] == stories[1]) is joined


SERIES = [
    ("Digital Forensics Round-Up, November 24 2025",
     "The latest digital forensics news of the week: new tools, research and training for DFIR "
     "teams, plus events and webinars."),
    ("Digital Forensics Round-Up, November 26 2025",
     "The latest digital forensics news of the week: new tools, research and training for DFIR "
     "teams, plus conferences and courses."),
]  # fmt: skip
SAME_SUBJECT = [
    ("iPhone XR im Test: Apples günstigeres iPhone ist nicht billig",
     "Das iPhone XR kostet 850 Euro und hat ein LCD statt eines OLED-Displays. Im Test "
     "überzeugen Akku und Kamera des iPhone XR."),
    ("iPhone XR: Verkaufsstart ohne Ansturm",
     "Zum Verkaufsstart des iPhone XR für 850 Euro blieb der Ansturm aus. Apples günstigeres "
     "iPhone mit LCD statt OLED-Display ist gut verfügbar."),
]  # fmt: skip


def test_a_feeds_series_items_are_not_one_story() -> None:
    """Alike texts of one feed whose titles differ only by the series' numbers: two items."""
    docs = [replace(_doc(i + 1, t, x, "en", hours=i), feed_id=7) for i, (t, x) in enumerate(SERIES)]
    stories = _stories(docs)
    assert stories[0] != stories[1]
    other_feed = [_doc(i + 1, t, x, "en", hours=i) for i, (t, x) in enumerate(SERIES)]
    assert len(set(_stories(other_feed))) == 1  # two outlets: the texts decide


def test_a_feeds_two_reports_on_one_subject_join() -> None:
    docs = [
        replace(_doc(i + 1, t, x, "de", hours=i), feed_id=7)
        for i, (t, x) in enumerate(SAME_SUBJECT)
    ]
    assert len(set(_stories(docs))) == 1


def test_feed_titles_tell_the_feeds_naming_from_the_subject() -> None:
    titles = FeedTitles()
    for n, title in enumerate(
        ["ISC Stormcast For Monday", "ISC Stormcast For Tuesday", "Other", "More", "Yet"]
    ):
        titles.add(n, 1, title_terms(title, "en"))
    stormcast = title_terms("ISC Stormcast For Wednesday", "en")
    assert not titles.agree(1, stormcast, [0, 1])  # "stormcast" is the feed's, not a subject
    assert titles.agree(2, title_terms("Fujitsu schließt Werk", "de"), []) is False
    titles.add(10, 2, title_terms("Fujitsu macht Werk in Augsburg dicht", "de"))
    for n in range(11, 15):
        titles.add(n, 2, title_terms(f"Anderes Thema {n}", "de"))
    assert titles.agree(2, title_terms("Fujitsu schließt Werk", "de"), [10])
    titles.remove(10)
    assert not titles.agree(2, title_terms("Fujitsu schließt Werk", "de"), [10])


@pytest.mark.parametrize(
    ("title", "text", "lang"),
    [
        (
            "Fujitsu macht Werk in Augsburg dicht",
            "Das Werk schließt 2026, sagt der Betriebsrat.",
            "de",
        ),
        ("ISC Stormcast For Wednesday, November 26th, 2025", "Podcast notes.", "en"),
        ("東京で地震", "東京で地震が発生した。", "ja"),
        ("Only a title, 1.30 update", "Only a title, 1.30 update", "en"),  # compared by its title
        ("", "A text without a title.", None),
    ],
)
def test_title_terms_read_with_the_story_terms(title: str, text: str, lang: str | None) -> None:
    # Sketching reads the title's terms once for the story and the same-feed rule alike.
    doc = DedupDoc(1, 1, datetime(2025, 11, 3, 9, tzinfo=UTC), title, text, None, "h", lang)
    sketch = Deduplicator(DedupSettings()).sketch(doc)
    assert sketch.title_terms == title_terms(title, lang)
