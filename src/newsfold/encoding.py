"""Which encoding a document's bytes are in, when what it says (or does not say) is wrong.

Feeds and pages usually declare their encoding (a BOM, the HTTP charset, the XML
declaration, ``<meta charset>``), and a document that declares nothing is UTF-8 by
the XML rules. Some declare nothing and are not UTF-8 (old KOI8-R or Windows-1251
feeds), or declare a single-byte encoding they are not in: decoded as declared they
turn into mojibake ("ëÁË ÐÅÒÅÖÉÔØ"). Only then is the encoding detected from the
content, with charset-normalizer (already installed as a dependency of the HTTP and
extraction libraries), and the detection is kept only when it reads cleaner.
"""

from __future__ import annotations

import codecs

# Above this share of "mess" (charset-normalizer's measure of implausible character
# sequences) a decoding is taken for mojibake.
MOJIBAKE_RATIO = 0.1


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def better_decoding(data: bytes, declared: str | None) -> tuple[str, str] | None:
    """``(text, encoding)`` when the bytes read better in another encoding than in
    ``declared`` (``None``: nothing declared, so UTF-8); ``None`` when the declared
    or default reading stands."""
    if data.isascii():
        return None
    codec = _codec(declared) or "utf-8"
    if codec != "utf-8" and not codec.startswith(("utf-16", "utf-32")) and _is_utf8(data):
        # UTF-8 declared as a legacy encoding ("Euro â‚¬" for "Euro €"): charset-normalizer
        # rates short mojibake like this as clean, and text in another encoding that
        # happens to be valid UTF-8 is as unlikely as it is below.
        return data.decode("utf-8"), "utf-8"
    try:
        as_declared: str | None = data.decode(codec)
    except UnicodeDecodeError:
        as_declared = None
    from charset_normalizer.md import mess_ratio

    if as_declared is not None:
        # Valid UTF-8 is practically never an accident; a single-byte reading always
        # "works", so it has to read plausibly too.
        if codec == "utf-8":
            return None
        declared_mess = mess_ratio(as_declared, maximum_threshold=1.0)
        if declared_mess < MOJIBAKE_RATIO:
            return None
    else:
        # What the parsers fall back to (WHATWG: Latin-1 labels mean Windows-1252); it
        # stands when it reads plausibly, so Western European feeds keep their reading.
        declared_mess = mess_ratio(data.decode("cp1252", "replace"), maximum_threshold=1.0)
        if declared_mess < MOJIBAKE_RATIO:
            return None
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or _codec(best.encoding) == codec or best.chaos >= declared_mess:
        return None
    return str(best), best.encoding


__all__ = ["MOJIBAKE_RATIO", "better_decoding"]
