"""The search query language, parsed into a small tree; and the text the index holds.

Syntax (the README's "Search" section shows it to users)::

    election results        both words (AND is implied)
    "prime minister"        a phrase: the words next to each other, in order
    storm -forecast         storm, but not articles that mention forecast
    flood OR drought        either word (OR binds looser: a b OR c is (a AND b) OR c)
    (flood OR drought) -us  parentheses group

Words are matched whole and without regard to case or accents; PostgreSQL also
matches other forms of a word (stems) in the languages it has a configuration for.

Scripts written without spaces between words (Chinese, Japanese kana and kanji) have
no word boundaries a tokenizer can find, so every such character is indexed as a
word of its own and a query word in them becomes the phrase of its characters
(``東京`` finds the two characters side by side). Other scripts (Latin, Cyrillic,
Arabic, Devanagari, Hangul, …) are split at spaces and punctuation.

Nothing here speaks SQL: ``storage.search`` compiles the tree for each database.
A malformed query raises ``QueryError`` with a one-line message.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from newsfold.errors import NewsfoldError

# Snippet markers around a match: private-use characters no feed text is expected to carry.
MARK_START = "\ue000"
MARK_END = "\ue001"
MAX_QUERY_CHARS = 500
MAX_TERMS = 32

# Han, Hiragana, Katakana (and their extensions): written without spaces between words.
_UNSPACED = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f"
)
_UNSPACED_RUN = re.compile(f"([{_UNSPACED}])(?=[{_UNSPACED}])")
_BARE = re.compile(r'[^\s"()]+')


class QueryError(NewsfoldError):
    """The search query cannot be read (the message says why, on one line)."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words that must appear next to each other in this order (one word is a phrase of one).

    ``text`` is as the user wrote it; each database's tokenizer splits it into words.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


@dataclass(frozen=True, slots=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    nodes: tuple[Node, ...]


Node = Phrase | Not | And | Or


def index_text(text: str) -> str:
    """Text as the index holds it: unspaced scripts' characters separated by spaces."""
    if text.isascii():  # no unspaced script: nothing to split (and no regex scan)
        return text
    return _UNSPACED_RUN.sub(r"\1 ", text)


def snippet_parts(snippet: str) -> list[tuple[str, bool]]:
    """A snippet as (text, is_match) pieces, the markers gone."""
    out: list[tuple[str, bool]] = []
    for k, piece in enumerate(re.split(f"[{MARK_START}{MARK_END}]", snippet)):
        if piece:
            out.append((piece, k % 2 == 1))
    return out


def snippet_html(snippet: str) -> str:
    """A snippet as HTML: the text escaped, each match in ``<mark>``."""
    return "".join(
        f"<mark>{html.escape(t, quote=False)}</mark>" if hit else html.escape(t, quote=False)
        for t, hit in snippet_parts(snippet)
    )


def has_word(text: str) -> bool:
    """Whether a tokenizer finds a word in ``text``: a letter, digit or combining mark
    (an Arabic or Devanagari word keeps its vowel signs); the rest separates words."""
    return any(unicodedata.category(c)[0] in "LNM" for c in text)


def parse(query: str) -> Node:
    """The query's tree; ``QueryError`` when it is empty or malformed."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"search query is longer than {MAX_QUERY_CHARS} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in query):
        raise QueryError("search query contains control characters")
    if any("\ud800" <= c <= "\udfff" for c in query):
        # A lone surrogate: bytes that were not UTF-8 (Python's surrogateescape, PEP 383);
        # no database can store or match it.
        raise QueryError("search query is not valid UTF-8 text")
    tokens = _tokens(query)
    if not tokens:
        raise QueryError("empty search query: give at least one word")
    parser = _Parser(tokens)
    node = parser.or_expr()
    if parser.pos < len(tokens):
        raise QueryError(f"unexpected {tokens[parser.pos][1]!r} in search query")
    if len(terms(node)) > MAX_TERMS:
        raise QueryError(f"search query has more than {MAX_TERMS} terms")
    _check_positive(node)
    return node


def terms(node: Node) -> list[Phrase]:
    """Every phrase the query looks for, excluded ones too."""
    if isinstance(node, Phrase):
        return [node]
    if isinstance(node, Not):
        return terms(node.node)
    return [p for n in node.nodes for p in terms(n)]


def wanted(node: Node) -> list[Phrase]:
    """The phrases a match may contain (excluded ones left out): what a snippet marks."""
    if isinstance(node, Phrase):
        return [node]
    if isinstance(node, Not):
        return []
    return [p for n in node.nodes for p in wanted(n)]


def _check_positive(node: Node) -> None:
    """Every branch must look for something: an index finds words, not their absence."""
    if isinstance(node, Not):
        raise QueryError("a search query needs a word that is not excluded with '-'")
    if isinstance(node, And):
        if all(isinstance(n, Not) for n in node.nodes):
            raise QueryError("a search query needs a word that is not excluded with '-'")
        for n in node.nodes:
            _check_positive(n.node if isinstance(n, Not) else n)
    if isinstance(node, Or):
        for n in node.nodes:
            _check_positive(n)


def _tokens(query: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: word, -word, phrase, -phrase, (, ), OR."""
    out: list[tuple[str, str]] = []
    i = 0
    n = len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        negate = c == "-" and i + 1 < n and query[i + 1] in '"('
        if c == '"' or (negate and query[i + 1] == '"'):
            start = i + (2 if negate else 1)
            end = query.find('"', start)
            if end < 0:
                raise QueryError('unclosed quote in search query: add the closing "')
            out.append(("-phrase" if negate else "phrase", query[start:end]))
            i = end + 1
            continue
        if c in "()":
            out.append((c, c))
            i += 1
            continue
        if negate:  # -( … )
            out.append(("-(", "-("))
            i += 2
            continue
        m = _BARE.match(query, i)
        assert m is not None
        word = m.group(0)
        i = m.end()
        if word == "OR":
            out.append(("OR", word))
        elif word.startswith("-") and len(word) > 1:
            out.append(("-word", word[1:]))
        else:
            out.append(("word", word))
    return out


class _Parser:
    """Recursive descent: or_expr := and_expr (OR and_expr)*; and_expr := unary+."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while self.peek() == "OR":
            self.pos += 1
            if self.peek() in (None, ")", "OR"):
                raise QueryError("OR needs a word on each side in search query")
            nodes.append(self.and_expr())
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def and_expr(self) -> Node:
        nodes: list[Node] = []
        while self.peek() not in (None, ")", "OR"):
            node = self.unary()
            if node is not None:
                nodes.append(node)
        if not nodes:
            if self.peek() == "OR":
                raise QueryError("OR needs a word on each side in search query")
            if self.peek() is None:
                raise QueryError("search query has nothing to search for")
            raise QueryError("empty parentheses or a stray ) in search query")
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def unary(self) -> Node | None:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind in ("(", "-("):
            inner = self.or_expr()
            if self.peek() != ")":
                raise QueryError("unclosed parenthesis in search query: add the closing )")
            self.pos += 1
            return Not(inner) if kind == "-(" else inner
        if kind == ")":  # pragma: no cover - and_expr stops before ")"
            raise QueryError("unexpected ) in search query")
        text = " ".join(value.split())
        if not has_word(text):
            if kind.endswith("phrase"):
                raise QueryError(f'phrase "{value}" in search query has no word in it')
            return None  # punctuation alone: nothing a tokenizer would index
        phrase = Phrase(text)
        return Not(phrase) if kind.startswith("-") else phrase
