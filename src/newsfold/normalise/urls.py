"""Canonical URLs: one spelling per article address.

Lower-cases scheme and host, drops default ports, credentials and fragments,
removes tracking parameters and keeps every other parameter, byte for byte and
in order. Relative links resolve against a base (the feed URL). Redirect
wrappers of aggregators are unwrapped. Anything that is not an http(s) address
(``javascript:``, ``data:``, ``mailto:``, garbage) gives ``None``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urljoin, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

# Parameters that only say where a click came from.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "vero_id",
        "vero_conv",
        "oly_enc_id",
        "oly_anon_id",
        "rb_clickid",
        "s_cid",
        "wt_mc",
        "wt.mc_id",
        "ncid",
        "ocid",
        "cmpid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "ref_src",
        "ref_url",
        "__twitter_impression",
        "_ga",
        "_gl",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "itm_", "stm_")
# ``ref`` is a real parameter on some sites (a git branch, a referral code), so it
# is dropped only when its value names a traffic channel or a site.
_REF_TRACKING_VALUE = re.compile(
    r"^(?:rss|rss2|atom|feed|feeds?|feedly|newsletter|email|mail|social|twitter|tw|x|"
    r"facebook|fb|linkedin|li|reddit|hn|hackernews|homepage|home|hp|frontpage|nav|menu|"
    r"sidebar|footer|header|related|share|sharebar|push|app|widget|search|google|bing|"
    r"[\w.-]*\.[a-z]{2,}|[\w-]*twsrc[\w%^-]*)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Unsafe characters are percent-encoded; what is already encoded stays as it is.
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"
_QUERY_SAFE = "/%:@!$&'()*+,;=~-._?"
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Aggregators and click trackers that carry the real address in a parameter.
_REDIRECT_HOSTS = {
    "news.google.com": ("url",),
    "www.google.com": ("url", "q"),
    "google.com": ("url", "q"),
    "www.bing.com": ("url",),
    "bing.com": ("url",),
    "l.facebook.com": ("u",),
    "lm.facebook.com": ("u",),
    "out.reddit.com": ("url",),
    "t.umblr.com": ("z",),
    "href.li": (),
    "getpocket.com": ("url",),
}
_ANY_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_AMP_CACHE_SUFFIX = ".cdn.ampproject.org"
_AMP_CACHE_PATH = re.compile(r"^/[a-z]/(s/)?(.+)$")


def is_tracking_param(key: str, value: str, extra: frozenset[str] = frozenset()) -> bool:
    name = unquote(key).strip().lower()
    if name in TRACKING_PARAMS or name in extra or name.startswith(TRACKING_PREFIXES):
        return True
    return name == "ref" and _REF_TRACKING_VALUE.match(unquote(value).strip()) is not None


def unwrap_redirect(url: str) -> str:
    """The target of a known redirect wrapper (aggregator click URL, AMP cache), else ``url``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if host.endswith(_AMP_CACHE_SUFFIX):
        # https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a.html
        match = _AMP_CACHE_PATH.match(parts.path)
        if match:
            scheme = "https" if match.group(1) else "http"
            return f"{scheme}://{match.group(2)}" + (f"?{parts.query}" if parts.query else "")
        return url
    if host == "href.li":
        target = parts.query or parts.path.lstrip("/")
        return target if _ANY_HTTP.match(target) else url
    names = _REDIRECT_HOSTS.get(host)
    if not names or (host in {"google.com", "www.google.com"} and parts.path != "/url"):
        return url
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key in names and _ANY_HTTP.match(value):
            return value
    return url


def _clean_query(query: str, extra: frozenset[str]) -> str:
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        if not key and not value:
            continue
        if is_tracking_param(key, value, extra):
            continue
        kept.append(piece)
    return "&".join(kept)


def _upper_pct(text: str) -> str:
    return _PCT.sub(lambda m: m.group(0).upper(), text)


def _host(netloc_host: str) -> str | None:
    host = netloc_host.lower().rstrip(".")
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if any(c in host for c in " /\\?#@<>\"'`{}|^") or ".." in host or host.startswith("."):
        return None
    return host


def canonical_url(
    url: str | None, *, base: str | None = None, extra_tracking: Iterable[str] = ()
) -> str | None:
    """One stable spelling of an http(s) URL, or ``None`` when there is none. Idempotent."""
    if not url:
        return None
    # Browsers ignore controls in a URL and spaces around it (WHATWG URL standard).
    url = _CONTROL.sub("", url).strip()
    if not url:
        return None
    try:
        if base and not _ANY_HTTP.match(url):
            url = urljoin(base, url)
        elif url.startswith("//"):
            url = "https:" + url
        for _ in range(3):  # wrappers inside wrappers
            unwrapped = unwrap_redirect(url)
            if unwrapped == url:
                break
            url = unwrapped
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        host = _host(parts.hostname or "")
        if host is None:
            return None
        port = parts.port
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
        path = _upper_pct(quote(parts.path, safe=_PATH_SAFE)) or "/"
        extra = frozenset(p.lower() for p in extra_tracking)
        query = _upper_pct(quote(_clean_query(parts.query, extra), safe=_QUERY_SAFE))
        # "#!" fragments are routes of script-driven sites, not positions in a page.
        fragment = parts.fragment if parts.fragment.startswith("!") else ""
        fragment = _upper_pct(quote(fragment, safe=_QUERY_SAFE + "#")) if fragment else ""
    except ValueError:  # bad IPv6 literal, port out of range, lone surrogates
        return None
    return urlunsplit((scheme, netloc, path, query, fragment))


_TWO_LEVEL_SUFFIXES = frozenset(
    {"co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.nz", "co.jp"}
    | {"com.br", "com.ar", "com.mx", "co.in", "co.za", "com.tr", "com.cn", "com.hk", "com.sg"}
)


def site_key(url: str | None) -> str | None:
    """The registrable part of a URL's host ("www.bbc.co.uk" → "bbc.co.uk")."""
    if not url:
        return None
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    if not host:
        return None
    labels = host.split(".")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def urlsplit_host(url: str | None) -> str | None:
    """The lower-cased host of a URL, ``None`` when there is none."""
    try:
        return (urlsplit(url or "").hostname or "").rstrip(".") or None
    except ValueError:
        return None


def same_site(a: str | None, b: str | None) -> bool:
    key = site_key(a)
    return key is not None and key == site_key(b)


__all__ = [
    "TRACKING_PARAMS",
    "canonical_url",
    "is_tracking_param",
    "same_site",
    "site_key",
    "unwrap_redirect",
]
