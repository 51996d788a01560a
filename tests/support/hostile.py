"""Generators of hostile and broken feed documents for the reliability tests.

Each function returns the bytes a malicious or broken server would send.
Handlers for misbehaving transports (endless body, slowloris) live in
``tests/support/server.py`` (``Endless``, ``Trickle``, ``Stall``); ``gzip_bomb``
pairs with ``Content-Encoding: gzip``.

Every generated document carries GUIDs starting ``good-`` for entries that a
sane pipeline must keep, so tests can assert "good entries still ingested".
"""

from __future__ import annotations

import functools
import json
import zlib
from html import escape

SCRIPT_MARKERS = ("<script", "javascript:", "onerror=", "onload=", "onclick=", "vbscript:")


def item(guid: str, title: str, body: str = "", *, link: str | None = None, date: str = "") -> str:
    """One RSS <item>; ``body`` is HTML (escaped into <description>)."""
    link = link if link is not None else f"https://example.org/{guid}"
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">{escape(guid)}</guid>'
        + (f"<pubDate>{escape(date)}</pubDate>" if date else "")
        + f"<description>{escape(body)}</description></item>"
    )


def rss(items: str | list[str], *, title: str = "Hostile", doctype: str = "") -> bytes:
    body = items if isinstance(items, str) else "".join(items)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link>"
        f"<description>d</description>{body}</channel></rss>"
    ).encode()


def _good(n: int = 2) -> list[str]:
    return [
        item(f"good-{i}", f"Good story number {i}", f"<p>Plain paragraph {i} of good news.</p>")
        for i in range(n)
    ]


def billion_laughs(levels: int = 10) -> bytes:
    """Classic entity expansion: 10 levels × 10 copies = 10^10 'lol's if expanded."""
    decls = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)
    ]
    doctype = "<!DOCTYPE rss [" + "".join(decls) + "]>"
    laughs = f"<item><title>&lol{levels - 1};</title><guid>laugh</guid></item>"
    return rss(laughs + "".join(_good()), doctype=doctype)


def quadratic_blowup(size: int = 50_000, refs: int = 5_000) -> bytes:
    """One big entity referenced many times (defeats depth-only limits)."""
    doctype = f'<!DOCTYPE rss [<!ENTITY a "{"x" * size}">]>'
    return rss(f"<item><title>{'&a;' * refs}</title><guid>blow</guid></item>", doctype=doctype)


def xxe_local_file(path: str) -> bytes:
    """External entity naming a local file (its content must never be read)."""
    doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>'
    return rss(
        [
            item("xxe-file", "before &xxe; after", "<p>x</p>").replace("&amp;xxe;", "&xxe;"),
            *_good(),
        ],
        doctype=doctype,
    )


def xxe_network(url: str) -> bytes:
    """External general entity, parameter entity and external DTD all on ``url``."""
    doctype = (
        f'<!DOCTYPE rss SYSTEM "{url}?dtd" [<!ENTITY % remote SYSTEM "{url}?param"> %remote;'
        f'<!ENTITY net SYSTEM "{url}?general">]>'
    )
    return rss(
        [item("xxe-net", "net &net; end").replace("&amp;net;", "&net;"), *_good()],
        doctype=doctype,
    )


def xinclude(path: str) -> bytes:
    """XInclude of a local file (only matters to parsers that process XInclude)."""
    inc = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{path}" parse="text"/>'
    return rss([f"<item><title>inc</title><guid>xi</guid><description>{inc}</description></item>"])


@functools.cache
def gzip_bomb(decompressed_mb: int = 256) -> bytes:
    """gzip stream of ``decompressed_mb`` MiB of zeros (about 1000:1)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    out = [comp.compress(b"<rss>")]
    out += [comp.compress(chunk) for _ in range(decompressed_mb)]
    out.append(comp.flush())
    return b"".join(out)


def huge_entry(mb: int = 5) -> bytes:
    """One entry whose body is ``mb`` MiB of paragraphs, plus normal entries."""
    para = "<p>" + "All work and no play makes a dull feed. " * 20 + "</p>"
    body = para * (mb * (1 << 20) // len(para) + 1)
    return rss([item("huge", "A very long entry", body), *_good()])


def many_entries(n: int = 100_000) -> bytes:
    """``n`` tiny entries in one document."""
    return rss([f"<item><title>t{i}</title><guid>many-{i}</guid></item>" for i in range(n)])


def invalid_utf8() -> bytes:
    """Declared UTF-8 but with stray bytes in one entry (a partly broken feed)."""
    bad = (
        item("bad-utf8", "Broken", "<p>bytes</p>")
        .encode()
        .replace(b"Broken", b"Bro\xff\xfeken\xc3")
    )
    good = "".join(_good()).encode()
    head, tail = rss("@@").split(b"@@")
    return head + bad + good + tail


def nul_bytes() -> bytes:
    """NUL bytes inside titles and bodies."""
    return rss("@@").replace(
        b"@@",
        item("nul", "nul here", "<p>body</p>").encode().replace(b"nul here", b"nul\x00 here\x00")
        + "".join(_good()).encode(),
    )


def nested_html(depth: int = 50_000) -> bytes:
    """An entry whose HTML nests ``depth`` <div>s (recursion bombs in HTML walkers)."""
    body = "<div>" * depth + "deep text" + "</div>" * depth
    return rss([item("nested", "Deep", body), *_good()])


def script_links() -> bytes:
    """javascript:/data:/vbscript: links, scripts and event handlers in bodies."""
    nasty = (
        '<p onclick="steal()">Click <a href="javascript:alert(1)">here</a></p>'
        '<script>alert("x")</script><img src=x onerror="alert(2)">'
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>'
        '<iframe src="javascript:alert(3)"></iframe><svg onload="alert(4)"></svg>'
        "<p>Real text survives.</p>"
    )
    return rss(
        [
            item("js-link", "Script link", nasty, link="javascript:alert(document.cookie)"),
            item("data-link", "Data link", nasty, link="data:text/html,<script>alert(1)</script>"),
            item("vb-link", "VB link", nasty, link="vbscript:msgbox(1)"),
            *_good(),
        ]
    )


ABSURD_DATES = (
    "Mon, 01 Jan 9999 00:00:00 GMT",
    "Sat, 01 Jan 0001 00:00:00 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Fri, 31 Dec 1899 23:59:60 +9999",
    "-2024-13-45T99:99:99Z",
    "99999999999999999999",
    "2024-02-30T25:61:61+25:00",
    "Tue, 32 Foo 2024 00:00:00 XYZ",
    "9" * 200,
    "",
)


def absurd_dates() -> bytes:
    return rss(
        [item(f"date-{i}", f"Dated {i}", "<p>x</p>", date=d) for i, d in enumerate(ABSURD_DATES)]
        + _good()
    )


def json_feed_mixed() -> bytes:
    """JSON Feed with items of wrong types beside good ones."""
    items: list[object] = [
        None,
        42,
        "string item",
        {"id": ["list"], "title": {"obj": 1}, "content_html": 7, "date_published": 12},
        {"id": "neg", "date_published": "-0001-01-01T00:00:00Z", "content_text": "neg date"},
        *(
            {
                "id": f"good-{i}",
                "url": f"https://example.org/j{i}",
                "title": f"Good JSON {i}",
                "content_html": f"<p>Good JSON body {i}</p>",
            }
            for i in range(2)
        ),
    ]
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}
    ).encode()


def deep_json(depth: int = 100_000) -> bytes:
    return (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


SQL_TITLES = (
    "'); DROP TABLE articles;--",
    "Robert'); DROP TABLE students; --",
    "Robert'); --",
    '" OR 1=1 --',
    "1; DELETE FROM feeds WHERE 1=1",
    "%s %(x)s :name ? $1 \\x00",
)


def sql_titles() -> bytes:
    return rss(
        [
            item(f"sql-{i}", t, f"<p>Body of {t} with distinct words number {i} here.</p>")
            for i, t in enumerate(SQL_TITLES)
        ]
    )


# name → (bytes factory, expect_error): expect_error means the feed as a whole is unusable.
DOCUMENTS: dict[str, tuple[object, bool]] = {
    "billion_laughs": (billion_laughs, False),
    "quadratic_blowup": (quadratic_blowup, False),
    "huge_entry": (huge_entry, False),
    "invalid_utf8": (invalid_utf8, False),
    "nul_bytes": (nul_bytes, False),
    "nested_html": (nested_html, False),
    "script_links": (script_links, False),
    "absurd_dates": (absurd_dates, False),
    "json_feed_mixed": (json_feed_mixed, False),
    "deep_json": (deep_json, True),
}
