"""Full-text search over articles and stories (the index itself: ``search_index``).

Articles are ranked by relevance (SQLite: BM25 with the title weighted 3:1;
PostgreSQL: ``ts_rank_cd`` with title weight A, body B), ties by id, newest first.
A story matches when one of its articles does; stories rank by their best
article, then by how many of their articles match. Snippets come from the
database's highlighter, with the matched words between ``MARK_START`` and
``MARK_END``; where it marks nothing (a PostgreSQL snippet of unspaced script)
the query's phrases are marked where they occur literally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, text

from newsfold.search_query import MARK_END, MARK_START, parse, wanted
from newsfold.storage.search_index import (
    fts5_match,
    pg_configs,
    pg_tsquery,
    unindex_text,
)
from newsfold.storage.tables import ArticleRow, ClusterRow, FeedRow, UTCDateTime
from newsfold.types import Level

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

    from newsfold.search_query import Node

SNIPPET_WORDS = 24
_FALLBACK_CHARS = 200


@dataclass(frozen=True, slots=True)
class SearchHit:
    """An article that matched, or a story and the best of its articles that matched."""

    id: int
    title: str
    snippet: str  # matches between MARK_START and MARK_END
    published: datetime
    score: float
    url: str | None = None  # articles
    feed: str | None = None  # articles
    size: int | None = None  # stories
    sources: tuple[str, ...] = ()  # stories
    matches: int = 1  # stories: how many of its articles matched
    article_id: int | None = None  # stories: the best matching article


class SearchMixin:
    if TYPE_CHECKING:

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

        def _sources(
            self, s: Session, level: Level, ids: list[int]
        ) -> tuple[dict[int, tuple[str, ...]], dict[int, int], dict[int, str]]: ...

    def search(
        self,
        query: str,
        *,
        stories: bool = False,
        since: datetime | None = None,
        feed_id: int | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Ranked matches of ``query`` (``search_query`` syntax; ``QueryError`` if malformed)."""
        node = parse(query)
        with self.session() as s:
            ranked = _ranked(s, node, since=since, feed_id=feed_id, stories=stories, limit=limit)
            if not stories:
                top = [(aid, score, 1, aid) for aid, score, _ in ranked]
            else:
                top = _by_story(ranked, limit)
            snippets = _snippets(s, node, [best for *_, best in top])
            return self._hits(s, top, snippets, stories=stories)

    def story_matches(self, query: str, story_id: int) -> bool:
        """Whether one of the story's articles matches ``query``."""
        node = parse(query)
        with self.session() as s:
            return story_matches_in(s, node, story_id)

    def _hits(
        self,
        s: Session,
        top: Sequence[tuple[int, float, int, int]],
        snippets: dict[int, str],
        *,
        stories: bool,
    ) -> list[SearchHit]:
        article_ids = [best for *_, best in top]
        articles = {
            int(r[0]): r
            for r in s.execute(
                select(
                    ArticleRow.id,
                    ArticleRow.title,
                    ArticleRow.url,
                    ArticleRow.published,
                    FeedRow.title,
                    FeedRow.url,
                )
                .join(FeedRow, FeedRow.id == ArticleRow.feed_id)
                .where(ArticleRow.id.in_(article_ids))
            )
        }
        if not stories:
            return [
                SearchHit(
                    id=aid,
                    title=articles[aid][1],
                    url=articles[aid][2],
                    published=articles[aid][3],
                    feed=articles[aid][4] or articles[aid][5],
                    snippet=snippets.get(aid, ""),
                    score=score,
                )
                for aid, score, _, _ in top
                if aid in articles
            ]
        ids = [cid for cid, *_ in top]
        sources, _, titles = self._sources(s, Level.STORIES, ids)
        clusters = {
            int(r.id): r
            for r in s.scalars(
                select(ClusterRow).where(ClusterRow.level == Level.STORIES, ClusterRow.id.in_(ids))
            )
        }
        return [
            SearchHit(
                id=cid,
                title=titles.get(cid) or clusters[cid].title,
                size=clusters[cid].size,
                sources=sources.get(cid, ()),
                published=clusters[cid].first_seen,
                snippet=snippets.get(best, ""),
                score=score,
                matches=count,
                article_id=best,
            )
            for cid, score, count, best in top
            if cid in clusters
        ]


def _ranked(
    s: Session,
    node: Node,
    *,
    since: datetime | None,
    feed_id: int | None,
    stories: bool,
    limit: int,
) -> list[tuple[int, float, int]]:
    """Matching (article id, score, story id) rows, best first (higher score is better):
    the best ``limit`` articles, or every match with its story for ``stories``."""
    params: dict[str, object] = {}
    story_join = (
        "JOIN memberships m ON m.article_id = a.id AND m.level = 'stories'" if stories else ""
    )
    story_col = "m.cluster_id" if stories else "0"
    tail = "" if stories else f"LIMIT {int(limit)}"
    filters = ""
    if since is not None:
        filters += " AND a.published >= :since"
        params["since"] = since
    if feed_id is not None:
        filters += " AND a.feed_id = :feed_id"
        params["feed_id"] = feed_id
    if s.get_bind().dialect.name == "postgresql":
        cte, params = _pg_queries(s, node, params)
        if cte is None:
            return []
        sql = f"""
            WITH q(cfg, query) AS ({cte})
            SELECT x.article_id, ts_rank_cd(x.document, q.query) AS score, {story_col}
            FROM q JOIN article_search x ON x.config = q.cfg AND x.document @@ q.query
            JOIN articles a ON a.id = x.article_id {story_join}
            WHERE TRUE {filters}
            ORDER BY score DESC, x.article_id DESC {tail}
        """
    else:
        params["match"] = fts5_match(node)
        sql = f"""
            SELECT x.rowid, -bm25(article_search, 3.0, 1.0) AS score, {story_col}
            FROM article_search x JOIN articles a ON a.id = x.rowid {story_join}
            WHERE article_search MATCH :match {filters}
            ORDER BY score DESC, x.rowid DESC {tail}
        """
    stmt = text(sql)
    if since is not None:
        stmt = stmt.bindparams(bindparam("since", type_=UTCDateTime()))
    return [(int(aid), float(score), int(cid)) for aid, score, cid in s.execute(stmt, params)]


def _pg_queries(
    s: Session, node: Node, params: dict[str, object]
) -> tuple[str | None, dict[str, object]]:
    """A VALUES list of (configuration, tsquery) for each configuration the index holds."""
    rows = []
    for k, cfg in enumerate(pg_configs(s)):
        name = f"cfg{k}"
        params[name] = cfg
        rows.append(f"SELECT CAST(:{name} AS text), {pg_tsquery(node, name, params)}")
    return (" UNION ALL ".join(rows) if rows else None), params


def _by_story(
    ranked: Sequence[tuple[int, float, int]], limit: int
) -> list[tuple[int, float, int, int]]:
    """(story id, best score, matching articles, best article) for the best ``limit`` stories."""
    best: dict[int, list[float | int]] = {}
    for aid, score, cid in ranked:  # best first: a story's first hit is its best
        entry = best.get(cid)
        if entry is None:
            best[cid] = [score, 1, aid]
        else:
            entry[1] = int(entry[1]) + 1
    order = sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], -kv[0]))
    return [(cid, float(v[0]), int(v[1]), int(v[2])) for cid, v in order[:limit]]


def story_matches_in(s: Session, node: Node, story_id: int) -> bool:
    params: dict[str, object] = {"story": story_id}
    if s.get_bind().dialect.name == "postgresql":
        cte, params = _pg_queries(s, node, params)
        if cte is None:
            return False
        sql = f"""
            WITH q(cfg, query) AS ({cte})
            SELECT 1 FROM memberships m JOIN article_search x ON x.article_id = m.article_id
            JOIN q ON x.config = q.cfg AND x.document @@ q.query
            WHERE m.level = 'stories' AND m.cluster_id = :story LIMIT 1
        """
    else:
        params["match"] = fts5_match(node)
        sql = """
            SELECT 1 FROM memberships m JOIN article_search x ON x.rowid = m.article_id
            WHERE m.level = 'stories' AND m.cluster_id = :story
              AND article_search MATCH :match LIMIT 1
        """
    return s.execute(text(sql), params).first() is not None


def _snippets(s: Session, node: Node, ids: Sequence[int]) -> dict[int, str]:
    """Each article's best passage with the matches marked."""
    if not ids:
        return {}
    marks = ", ".join(str(int(a)) for a in ids)  # integers from the database
    params: dict[str, object] = {}
    if s.get_bind().dialect.name == "postgresql":
        cte, params = _pg_queries(s, node, params)
        if cte is None:
            return {}
        sql = f"""
            WITH q(cfg, query) AS ({cte})
            SELECT a.id, ts_headline(CAST(q.cfg AS regconfig),
                       coalesce(nullif(a.summary, ''), '') || ' ' || left(a.text, 20000),
                       q.query, :opts)
            FROM articles a JOIN article_search x ON x.article_id = a.id
            JOIN q ON q.cfg = x.config
            WHERE a.id IN ({marks})
        """
        params["opts"] = (
            f'StartSel="{MARK_START}", StopSel="{MARK_END}", '
            f"MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}, MaxFragments=1"
        )
    else:
        params["match"] = fts5_match(node)
        sql = f"""
            SELECT rowid, snippet(article_search, -1, :ms, :me, '…', {SNIPPET_WORDS})
            FROM article_search WHERE article_search MATCH :match AND rowid IN ({marks})
        """
        params |= {"ms": MARK_START, "me": MARK_END}
    out = {int(aid): unindex_text(str(snip or "")) for aid, snip in s.execute(text(sql), params)}
    missing = [aid for aid in ids if MARK_START not in out.get(aid, "")]
    if missing:
        texts = s.execute(
            text(f"SELECT id, title, summary, text FROM articles WHERE id IN ({marks})")
        )
        phrases = [p.text for p in wanted(node)]
        for aid, title, summary, body in texts:
            if int(aid) in missing:
                out[int(aid)] = mark_literal(f"{title}\n{summary}\n{body}", phrases)
    return out


def mark_literal(body: str, phrases: Sequence[str]) -> str:
    """A passage around the first literal occurrence of one of ``phrases``, marked."""
    pattern = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True) if p)
    found = re.search(pattern, body, re.IGNORECASE) if pattern else None
    if found is None:
        return " ".join(body.split())[:_FALLBACK_CHARS]
    start = max(0, found.start() - _FALLBACK_CHARS // 2)
    end = min(len(body), found.end() + _FALLBACK_CHARS // 2)
    marked = (
        body[start : found.start()]
        + MARK_START
        + found.group(0)
        + MARK_END
        + body[found.end() : end]
    )
    prefix = "…" if start else ""
    suffix = "…" if end < len(body) else ""
    return prefix + " ".join(marked.split()) + suffix
