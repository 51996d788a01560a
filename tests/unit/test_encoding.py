"""Encoding detection: a feed whose encoding is declared nowhere (or declared wrongly)
reads as its text, not as mojibake; every other fixture reads exactly as before."""

from __future__ import annotations

import pytest

from newsfold import parse as parse_mod
from newsfold.encoding import better_decoding
from newsfold.errors import ParseError
from newsfold.normalise.page import decode_html
from newsfold.parse import parse_feed
from tests.conftest import SHARED

FEEDS = SHARED / "data" / "feeds"
CHARDET = {
    "koi8r": "koi8_r",
    "big5": "big5",
    "eucjp": "euc_jp",
    "euckr": "euc_kr",
    "gb2312": "gb18030",
    "shiftjis": "cp932",
    "tis620": "tis_620",
    "windows1255": "cp1255",
}


def _texts(data: bytes) -> list[str]:
    parsed = parse_feed(data, url="http://x.example/")
    out = [parsed.title or ""]
    for e in parsed.entries:
        out += [e.title or "", e.summary_html or "", e.content_html or ""]
    return [t for t in out if t.strip()]


@pytest.mark.parametrize("name", sorted(CHARDET))
def test_undeclared_encoding_is_detected(name: str) -> None:
    data = (FEEDS / "feedparser" / f"tests__illformed__chardet__{name}.xml").read_bytes()
    truth = data.decode(CHARDET[name], "replace")
    texts = _texts(data)
    assert texts
    for text in texts:
        # The parser unescapes entities, so compare a stretch of letters.
        sample = "".join(ch for ch in text if ch.isalpha())[:12]
        assert sample and sample in "".join(ch for ch in truth if ch.isalpha()), (name, text)


def test_koi8r_headline() -> None:
    data = (FEEDS / "feedparser" / "tests__illformed__chardet__koi8r.xml").read_bytes()
    parsed = parse_feed(data, url="http://x.example/")
    assert parsed.entries[0].title == "Как пережить новогоднюю ночь"
    assert parsed.warning and "koi8" in parsed.warning.lower()


def test_western_feed_without_declaration_keeps_windows_1252() -> None:
    (path,) = FEEDS.rglob("internal__reader__parser__testdata__no_encoding_ISO-8859-1.xml")
    assert any("très complexe" in t for t in _texts(path.read_bytes()))


def test_wrongly_declared_single_byte_encoding() -> None:
    russian = "Как пережить новогоднюю ночь: советы и правила безопасности"
    doc = (
        '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{russian}</title><description>{russian}. {russian}</description></item>"
        "</channel></rss>"
    ).encode("koi8_r")
    assert parse_feed(doc, url="http://x.example/").entries[0].title == russian


def test_right_declarations_and_utf8_stand() -> None:
    assert better_decoding("Grüße aus Köln".encode(), None) is None
    assert better_decoding("Grüße aus Köln".encode("cp1252"), "windows-1252") is None
    assert better_decoding(b"plain ascii", "koi8-r") is None


@pytest.mark.parametrize("declared", ["windows-1252", "iso-8859-1", "koi8-r"])
def test_utf8_declared_as_a_single_byte_encoding(declared: str) -> None:
    # "Á" is C3 81, and 0x81 is undefined in Windows-1252: both branches of the reading.
    for title in ("Euro €", "Ágúst in Évora: 5 € a night"):
        doc = (
            f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel>'
            f"<title>{title}</title><item><title>{title}</title></item></channel></rss>"
        ).encode()
        parsed = parse_feed(doc, url="http://x.example/")
        assert (parsed.title, parsed.entries[0].title) == (title, title)
        assert parsed.warning and "utf-8" in parsed.warning


def test_utf8_fixture_with_windows_1252_prolog() -> None:
    (path,) = FEEDS.rglob("internal__reader__encoding__testdata__windows-1252-incorrect-prolog.xml")
    assert parse_feed(path.read_bytes(), url="http://x.example/").title == "Euro €"


def test_page_without_charset() -> None:
    html = "<html><body><p>Как пережить новогоднюю ночь и не заболеть</p></body></html>"
    assert "новогоднюю" in decode_html(html.encode("koi8_r"))


def test_every_other_fixture_reads_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection changes only the undeclared-encoding fixtures and the UTF-8 one that
    declares Windows-1252 (tested above)."""
    files = sorted(
        p
        for p in FEEDS.rglob("*")
        if p.is_file() and "chardet" not in p.name and "windows-1252-incorrect" not in p.name
    )

    def read() -> dict[str, object]:
        out: dict[str, object] = {}
        for path in files:
            try:
                out[path.name] = _texts(path.read_bytes())
            except ParseError as e:
                out[path.name] = str(e).split(":")[0]
        return out

    detected = read()
    monkeypatch.setattr(parse_mod, "redecode", lambda content, _headers: (content, None))
    assert read() == detected
