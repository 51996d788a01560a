"""HTML → text: structure, entities, Unicode, idempotence and hostile input."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsfold.normalise import html_to_text
from newsfold.normalise.html import fix_mojibake, normalise_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("<div>a<br>b<br/>c</div>", "a\nb\nc"),
        ("<p>long\n   wrapped\tline</p>", "long wrapped line"),
        ("<p>a <b>bold</b> <i>move</i>.</p>", "a bold move."),
        ("<ul><li>x</li><li>y</li></ul>", "x\ny"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<h2>Sub</h2><p>Body.</p>", "Sub\nBody."),
        ("Fish &amp; chips &copy; &#8220;q&#8221; &#x27;s&#x27;", "Fish & chips © \"q\" 's'"),
        ("<p>caf\u0065\u0301</p>", "caf\u00e9"),
        ("<p>‘single’ “double” a‐b a–b a—b</p>", "'single' \"double\" a-b a–b a—b"),
        ("<p>x\u00a0y\u200bz\u00adw</p>", "x yzw"),
        ("<script>alert(1)</script><style>p{}</style><p>kept</p>", "kept"),
        ("<figure><img src=a.jpg><figcaption>Cap / AFP</figcaption></figure><p>body</p>", "body"),
        ("<p>body</p><img src='https://px.example/t.gif' width=1 height=1>", "body"),
        (
            "<nav>Home</nav><header>Site</header><p>body</p><footer>©</footer><aside>ad</aside>",
            "body",
        ),
        ("<p>body</p><div class='share-buttons'><a>Facebook</a><a>X</a></div>", "body"),
        ("<p>body</p><div class='post-byline'>By Someone</div>", "body"),
        ("<div class='shadow'>kept</div>", "kept"),
        ("&lt;p&gt;double &amp;amp; escaped&lt;/p&gt;", "double & escaped"),
        ("plain text\n\n\nsecond paragraph  ", "plain text\nsecond paragraph"),
        ("a < b and c > d", "a < b and c > d"),
        ("", ""),
        ("<p>  </p>", ""),
        ("<!-- comment --><p>x</p>", "x"),
        ("It\x92s \x93quoted\x94", 'It\'s "quoted"'),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("Itâ€™s", "It’s"),
        ("cafÃ©", "café"),
        ("naÃ¯ve â€” ok", "naïve — ok"),
        ("Ã¢â‚¬â„¢", "’"),  # encoded twice
        ("ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Привет"),
        ("Ã", "Ã"),  # a lone lead byte is left alone
        ("São Paulo", "São Paulo"),
    ],
)
def test_fix_mojibake(broken: str, fixed: str) -> None:
    assert fix_mojibake(broken) == fixed


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_html_to_text_idempotent_and_total(text: str) -> None:
    once = html_to_text(text)
    assert html_to_text(once) == once
    assert "\n\n" not in once
    assert once == once.strip()


markup = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<div class='share'>",
            "</div>",
            "<br>",
            "&amp;",
            "&lt;",
            "&gt;",
            "&#x27;",
            "&nbsp;",
            "<b>",
            "</b>",
            "<script>",
            "</script>",
            "<figure>",
            "<li>",
            "\n",
            " ",
            "‘",
            "—",
            "Ã©",
            "\x00",
            "\ud800",
            "&lt;p&gt;",
        ]
    )
    | st.text(max_size=8),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(markup)
def test_html_to_text_idempotent_on_markup(html: str) -> None:
    once = html_to_text(html)
    assert html_to_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalise_text_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 10_000 + "deep" + "</div>" * 10_000,
        "<b><i>" * 10_000 + "deep",
        "<div class='share'>" * 5_000 + "deep",
        "<p>" + "word " * 1_000_000 + "</p>",  # 5 MB
        "<p>x</p>" * 400_000,
        "a\x00b\x00<p>c\x00</p>",
        "bad \ud800 surrogate \udfff <p>here</p>",
        "<a href='javascript:alert(1)'>j</a><a href='data:text/html,x'>d</a>",
    ],
    ids=[
        "nested-div",
        "nested-inline",
        "nested-widget",
        "5mb-paragraph",
        "many-paragraphs",
        "nul",
        "surrogates",
        "js-links",
    ],
)
def test_hostile_html_is_bounded(html: str) -> None:
    start = time.perf_counter()
    text = html_to_text(html)
    assert time.perf_counter() - start < 10
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogates left
