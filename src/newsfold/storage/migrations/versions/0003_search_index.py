"""full-text search index over articles, filled from the stored articles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newsfold.storage.search_index import index_rows

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FILL_CHUNK = 2000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE TABLE article_search (
                article_id BIGINT NOT NULL
                    CONSTRAINT pk_article_search PRIMARY KEY
                    CONSTRAINT fk_article_search_article_id_articles
                    REFERENCES articles (id) ON DELETE CASCADE,
                config TEXT NOT NULL,
                document TSVECTOR NOT NULL
            )
            """
        )
    else:
        # Self-contained FTS5 table: it keeps its own copy of the indexed text, as
        # snippet() needs, in the index's form (unspaced scripts split into characters).
        op.execute(
            "CREATE VIRTUAL TABLE article_search USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
    _fill(bind)
    if bind.dialect.name == "postgresql":
        # Built after the fill: one sort instead of a GIN update per row.
        op.execute("CREATE INDEX ix_article_search_document ON article_search USING gin (document)")
        op.execute("CREATE INDEX ix_article_search_config ON article_search (config)")


def _fill(bind: sa.Connection) -> None:
    """Index every stored article, in id order, a chunk at a time."""
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, title, summary, text, language FROM articles "
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": _FILL_CHUNK},
        ).all()
        if not rows:
            return
        index_rows(bind, [(int(r[0]), r[1], r[2] or "", r[3], r[4]) for r in rows])
        last = int(rows[-1][0])


def downgrade() -> None:
    op.execute("DROP TABLE article_search")
