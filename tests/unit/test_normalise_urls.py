"""Canonical URLs: tables of real shapes plus properties (idempotent, keeps real parameters)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from newsfold.normalise import canonical_url
from newsfold.normalise.urls import is_tracking_param, same_site, site_key, unwrap_redirect


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTPS://Example.COM/Path?b=2&a=1", None, "https://example.com/Path?b=2&a=1"),
        ("http://example.com:80/a", None, "http://example.com/a"),
        ("https://example.com:443/a", None, "https://example.com/a"),
        ("https://example.com:8443/a", None, "https://example.com:8443/a"),
        ("https://example.com", None, "https://example.com/"),
        ("https://example.com/a#section-2", None, "https://example.com/a"),
        ("https://example.com/#!/story/12", None, "https://example.com/#!/story/12"),
        ("https://user:secret@example.com/a", None, "https://example.com/a"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7",
            None,
            "https://example.com/a?id=7",
        ),
        (
            "https://example.com/a?id=7&fbclid=IwAR&gclid=x&mc_cid=1&mc_eid=2",
            None,
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?ref=rss&x=1", None, "https://example.com/a?x=1"),
        ("https://example.com/a?ref_src=twsrc%5Etfw", None, "https://example.com/a"),
        ("https://github.com/o/r/blob/x?ref=main", None, "https://github.com/o/r/blob/x?ref=main"),
        ("https://example.com/a?UTM_Source=x&q=a%20b", None, "https://example.com/a?q=a%20b"),
        ("https://example.com/a?", None, "https://example.com/a"),
        ("https://example.com/a?&&x=1&&", None, "https://example.com/a?x=1"),
        ("https://example.com/a b/ü", None, "https://example.com/a%20b/%C3%BC"),
        ("https://example.com/a%2fb", None, "https://example.com/a%2Fb"),
        ("https://BÜCHER.example/", None, "https://xn--bcher-kva.example/"),
        ("  https://example.com/a\n", None, "https://example.com/a"),
        ("https://exa\tmple.com/a", None, "https://example.com/a"),
        (
            "/2024/story.html",
            "https://news.example.org/feed.xml",
            "https://news.example.org/2024/story.html",
        ),
        (
            "story.html",
            "https://news.example.org/section/feed.xml",
            "https://news.example.org/section/story.html",
        ),
        ("../up.html", "https://news.example.org/a/b/feed", "https://news.example.org/a/up.html"),
        ("//cdn.example.org/x", None, "https://cdn.example.org/x"),
        ("http://[::1]:8080/x", None, "http://[::1]:8080/x"),
        (
            "https://news.google.com/news/url?sa=t&url=https://site.example/a%3Fid%3D3",
            None,
            "https://site.example/a?id=3",
        ),
        (
            "https://www.google.com/url?q=https://site.example/b&sa=D",
            None,
            "https://site.example/b",
        ),
        (
            "https://www-site-example.cdn.ampproject.org/c/s/www.site.example/amp/a",
            None,
            "https://www.site.example/amp/a",
        ),
    ],
)
def test_canonical_url(url: str, base: str | None, expected: str) -> None:
    assert canonical_url(url, base=base) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "javascript:alert(1)",
        "JavaScript:void(0)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "mailto:desk@example.com",
        "ftp://example.com/file",
        "http://[::1",
        "http://example.com:99999/",
        "http:///nohost",
        "relative/only",
        "https://exa mple.com/",
        "https://a..b/",
        "\ud800://x",
    ],
)
def test_unusable_urls_give_none(url: str | None) -> None:
    assert canonical_url(url) is None


def test_javascript_link_with_base_is_still_none() -> None:
    assert canonical_url("javascript:alert(1)", base="https://example.com/") is None


def test_extra_tracking_parameters() -> None:
    url = "https://example.com/a?src=feed&id=1&CMP=x"
    assert canonical_url(url, extra_tracking=["src", "cmp"]) == "https://example.com/a?id=1"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://www.example.com/a", "https://amp.example.com/b", True),
        ("https://news.bbc.co.uk/a", "https://www.bbc.co.uk/b", True),
        ("https://example.com/", "https://example.net/", False),
        ("https://a.co.uk/", "https://b.co.uk/", False),
        (None, "https://example.com", False),
    ],
)
def test_same_site(a: str | None, b: str | None, same: bool) -> None:
    assert same_site(a, b) is same


def test_site_key() -> None:
    assert site_key("https://www.bbc.co.uk/news") == "bbc.co.uk"
    assert site_key("not a url") is None


def test_unwrap_leaves_ordinary_urls() -> None:
    assert unwrap_redirect("https://example.com/login?next=https://evil.example/") == (
        "https://example.com/login?next=https://evil.example/"
    )


# --- properties ---------------------------------------------------------------

_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_SAFE = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
names = st.text(alphabet=_SAFE, min_size=1, max_size=8).filter(
    lambda k: not is_tracking_param(k, "") and k.lower() != "ref"
)
values = st.text(alphabet=_SAFE + "%2F", max_size=10)
params = st.lists(st.tuples(names, values), max_size=6)
tracking = st.lists(
    st.tuples(
        st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid", "mc_eid", "UTM_MEDIUM"]),
        values,
    ),
    max_size=3,
)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|org|example|co\.uk)", fullmatch=True)
paths = st.lists(st.text(alphabet=_SAFE + "äé %", min_size=1, max_size=6), max_size=4).map(
    lambda p: "/" + "/".join(p)
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "https", "HTTPS"]), hosts, paths, params, tracking, st.randoms())
def test_keeps_real_parameters_in_order(scheme, host, path, real, junk, rnd) -> None:  # type: ignore[no-untyped-def]
    mixed = [(k, v, True) for k, v in real] + [(k, v, False) for k, v in junk]
    # Tracking parameters land anywhere; the real ones keep their relative order.
    for item in [m for m in mixed if not m[2]]:
        mixed.remove(item)
        mixed.insert(rnd.randint(0, len(mixed)), item)
    query = "&".join(f"{k}={v}" for k, v, _ in mixed)
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    out = canonical_url(url)
    assert out is not None
    kept = [p for p in urlsplit(out).query.split("&") if p]
    # Percent-escapes are upper-cased (RFC 3986 §6.2.2.1); nothing else changes.
    assert kept == [_PCT.sub(lambda m: m.group(0).upper(), f"{k}={v}") for k, v in real]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_idempotent_on_arbitrary_text(text: str) -> None:
    once = canonical_url(text, base="https://base.example/dir/feed.xml")
    assume(once is not None)
    assert canonical_url(once) == once


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "https"]), hosts, paths, params, tracking, st.text(max_size=8))
def test_idempotent_on_urls(scheme, host, path, real, junk, fragment) -> None:  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, v in real + junk)
    url = f"{scheme}://{host.upper()}{path}?{query}#{fragment}"
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once
    assert canonical_url(once, base="https://elsewhere.example/") == once
