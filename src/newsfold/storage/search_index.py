"""The full-text index of articles: its one write path, and its compiled queries.

Every article write goes through here, inside the transaction that writes the
article: ``index_articles`` on insert and revision (``Batch.insert_articles``,
``Batch.revise_article``), ``unindex_articles`` on removal (``articles.delete_articles``,
which feed removal uses). Stories are not indexed apart: a story matches through
its articles' memberships, so a story renamed, grown or merged is searched as it
now stands with nothing to keep in step.

* SQLite: an FTS5 table ``article_search`` (rowid = article id; columns title and
  body) with the ``unicode61`` tokenizer, diacritics removed, no stemming
  (https://www.sqlite.org/fts5.html#unicode61_tokenizer).
* PostgreSQL: ``article_search`` (article_id, config, document tsvector) with a GIN
  index; each article is stemmed with the text-search configuration of its
  language when the server has one, else ``simple``
  (https://www.postgresql.org/docs/current/textsearch-controls.html).

Both index the text through ``search_query.index_text`` (unspaced scripts split into
characters) and cap the body at ``MAX_BODY_CHARS`` (a tsvector holds at most 1 MB).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import text

from newsfold.search_query import MARK_END, MARK_START, And, Not, Or, Phrase, index_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from newsfold.search_query import Node
    from newsfold.types import Article

MAX_BODY_CHARS = 100_000

# ISO 639-1 → PostgreSQL's built-in text-search configurations; one the server lacks
# (some came in later releases) falls back to ``simple``, as does every other language.
PG_CONFIGS = {
    "ar": "arabic",
    "hy": "armenian",
    "eu": "basque",
    "ca": "catalan",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "ga": "irish",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "no": "norwegian",
    "nb": "norwegian",
    "nn": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
_CONFIG_NAME = re.compile(r"^[a-z_]+$")

_PG_INSERT = text(
    """
    INSERT INTO article_search (article_id, config, document)
    SELECT :id, c.cfg,
           setweight(to_tsvector(CAST(c.cfg AS regconfig), :title), 'A')
           || setweight(to_tsvector(CAST(c.cfg AS regconfig), :body), 'B')
    FROM (SELECT COALESCE(
            (SELECT cfgname FROM pg_catalog.pg_ts_config WHERE cfgname = :cfg LIMIT 1),
            'simple') AS cfg) AS c
    """
)
_SQLITE_INSERT = text("INSERT INTO article_search (rowid, title, body) VALUES (:id, :title, :body)")


def pg_config(language: str | None) -> str:
    return PG_CONFIGS.get((language or "").lower()[:2], "simple")


def body_of(summary: str, body: str) -> str:
    joined = f"{summary}\n{body}" if summary and not body.startswith(summary) else body
    return joined[:MAX_BODY_CHARS]


def index_rows(conn: Connection, rows: Sequence[tuple[int, str, str, str, str | None]]) -> None:
    """Index (id, title, summary, text, language) rows; they must not be indexed yet."""
    if not rows:
        return
    params = [
        {
            "id": aid,
            "title": index_text(title),
            "body": index_text(body_of(summary, body)),
            "cfg": pg_config(language),
        }
        for aid, title, summary, body, language in rows
    ]
    pg = conn.dialect.name == "postgresql"
    if not pg:
        for p in params:
            del p["cfg"]
    conn.execute(_PG_INSERT if pg else _SQLITE_INSERT, params)


def index_articles(s: Session, items: Sequence[tuple[int, Article]], *, fresh: bool) -> None:
    """Index new articles (``fresh``) or re-index revised ones, in the writer's transaction."""
    if not fresh:
        unindex_articles(s, [aid for aid, _ in items])
    index_rows(s.connection(), [(aid, a.title, a.summary, a.text, a.language) for aid, a in items])


def unindex_articles(s: Session, ids: Sequence[int]) -> None:
    column = "article_id" if s.get_bind().dialect.name == "postgresql" else "rowid"
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        s.execute(
            text(f"DELETE FROM article_search WHERE {column} IN ({marks})"),
            {f"i{k}": v for k, v in enumerate(chunk)},
        )


# --- queries ---------------------------------------------------------------------------


def fts5_match(node: Node) -> str:
    """The tree as an FTS5 MATCH expression (https://www.sqlite.org/fts5.html#full_text_query_syntax).

    Every phrase is a quoted string (FTS5's tokenizer splits it), so no word of the
    user's can be read as an operator or a column filter.
    """
    if isinstance(node, Phrase):
        return '"' + index_text(node.text).replace('"', '""') + '"'
    if isinstance(node, Or):
        return "(" + " OR ".join(fts5_match(n) for n in node.nodes) + ")"
    if isinstance(node, And):
        positive = [fts5_match(n) for n in node.nodes if not isinstance(n, Not)]
        negative = [fts5_match(n.node) for n in node.nodes if isinstance(n, Not)]
        out = "(" + " AND ".join(positive) + ")"
        for n in negative:
            out = f"({out} NOT {n})"
        return out
    # A lone exclusion never reaches here: search_query.parse refuses it.
    raise AssertionError("bare NOT")  # pragma: no cover


def pg_tsquery(node: Node, config_param: str, params: dict[str, object]) -> str:
    """The tree as a tsquery SQL expression in the configuration bound as ``config_param``;
    phrase texts are added to ``params``."""
    if isinstance(node, Phrase):
        name = f"p{len(params)}"
        params[name] = index_text(node.text)
        return f"phraseto_tsquery(CAST(:{config_param} AS regconfig), :{name})"
    if isinstance(node, Not):
        return f"(!! {pg_tsquery(node.node, config_param, params)})"
    op = " || " if isinstance(node, Or) else " && "
    return "(" + op.join(pg_tsquery(n, config_param, params) for n in node.nodes) + ")"


def pg_configs(s: Session) -> list[str]:
    """The configurations the index holds documents in (a skip scan over its config index)."""
    rows = s.execute(
        text(
            """
            WITH RECURSIVE c(v) AS (
                SELECT min(config) FROM article_search
                UNION ALL
                SELECT (SELECT min(config) FROM article_search WHERE config > c.v)
                FROM c WHERE c.v IS NOT NULL)
            SELECT v FROM c WHERE v IS NOT NULL
            """
        )
    )
    return [str(v) for (v,) in rows if _CONFIG_NAME.match(str(v))]


_UNSPACED_GAP = re.compile(
    "(?<=[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff])"
    f"([{MARK_START}{MARK_END}]?) ([{MARK_START}{MARK_END}]?)"
    "(?=[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff])"
)


def unindex_text(snippet: str) -> str:
    """Undo ``index_text``'s spaces between unspaced-script characters in a snippet."""
    return _UNSPACED_GAP.sub(r"\1\2", snippet)
