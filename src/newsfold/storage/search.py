"""Full-text search over articles and stories (the index itself: ``search_index``).

Articles are ranked by relevance (SQLite: BM25 with the title weighted 3:1;
PostgreSQL: ``ts_rank_cd`` with title weight A, body B), ties by id, newest first.
A story matches when one of its articles does; stories rank by their best
article, then by how many of their articles match. Both levels rank in SQL and
stop at a LIMIT: the story level groups a pool of the best articles, grown only
when it could hide a story that belongs in the result (``_top_stories``), so a
word in half the articles costs about what the article level does. Snippets come
from the database's highlighter, with the matched words between ``MARK_START``
and ``MARK_END``; where it marks nothing (a PostgreSQL snippet of unspaced
script) the query's phrases are marked where they occur literally.
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
# Story search ranks the best STORY_POOL × limit matching articles (at least
# STORY_POOL_MIN), not every match (``_top_stories``).
STORY_POOL = 10
STORY_POOL_MIN = 200
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
            if stories:
                top = _top_stories(s, node, since=since, feed_id=feed_id, limit=limit)
            else:
                ranked = _ranked(s, node, since=since, feed_id=feed_id, stories=False, limit=limit)
                top = [(aid, score, 1, aid) for aid, score, _ in ranked]
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
) -> list[tuple[int, float, int | None]]:
    """The best ``limit`` matching (article id, score, story id or None) rows, best first
    (higher score is better; ties by id, newest first). The ranking stops at ``limit`` in
    SQL; only those rows are then looked up in ``memberships`` (``stories``)."""
    params, filters = _filters(since, feed_id)
    # The articles table is joined only to filter: every indexed row has its article.
    article_join = "JOIN articles a ON a.id = {id}" if filters else ""
    if s.get_bind().dialect.name == "postgresql":
        cte, params = _pg_queries(s, node, params)
        if cte is None:
            return []
        ranking = f"""
            SELECT x.article_id AS aid, ts_rank_cd(x.document, q.query) AS score
            FROM q JOIN article_search x ON x.config = q.cfg AND x.document @@ q.query
            {article_join.format(id="x.article_id")}
            WHERE TRUE {filters}
            ORDER BY score DESC, x.article_id DESC LIMIT {int(limit)}
        """
        head = f"WITH q(cfg, query) AS ({cte}), top AS ({ranking})"
    else:
        params["match"] = fts5_match(node)
        ranking = f"""
            SELECT x.rowid AS aid, -bm25(article_search, 3.0, 1.0) AS score
            FROM article_search x {article_join.format(id="x.rowid")}
            WHERE article_search MATCH :match {filters}
            ORDER BY score DESC, x.rowid DESC LIMIT {int(limit)}
        """
        head = f"WITH top AS ({ranking})"
    # A correlated lookup per ranked row (the membership key's index), not a join the
    # planner may answer by reading every membership.
    story = (
        "(SELECT m.cluster_id FROM memberships m"
        " WHERE m.article_id = top.aid AND m.level = 'stories')"
        if stories
        else "NULL"
    )
    stmt = text(f"{head} SELECT top.aid, top.score, {story} FROM top ORDER BY 2 DESC, 1 DESC")
    if since is not None:
        stmt = stmt.bindparams(bindparam("since", type_=UTCDateTime()))
    return [
        (int(aid), float(score), None if cid is None else int(cid))
        for aid, score, cid in s.execute(stmt, params)
    ]


def _filters(since: datetime | None, feed_id: int | None) -> tuple[dict[str, object], str]:
    params: dict[str, object] = {}
    filters = ""
    if since is not None:
        filters += " AND a.published >= :since"
        params["since"] = since
    if feed_id is not None:
        filters += " AND a.feed_id = :feed_id"
        params["feed_id"] = feed_id
    return params, filters


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


def _top_stories(
    s: Session, node: Node, *, since: datetime | None, feed_id: int | None, limit: int
) -> list[tuple[int, float, int, int]]:
    """(story id, best score, matching articles, best article) of the best ``limit`` stories.

    A story ranks by its best article, so the stories of the best-ranked articles are the
    best stories: only a pool of the top articles is ranked (``STORY_POOL`` per result).
    The pool grows while it could hide a story that belongs in the result: it is full and
    holds fewer than ``limit`` stories, or its last article ties the ``limit``-th story's
    best score. The order is then exactly that of ranking every match; ``matches`` is
    counted over each chosen story's members, not the pool.
    """
    pool = max(STORY_POOL_MIN, limit * STORY_POOL)
    while True:
        ranked = _ranked(s, node, since=since, feed_id=feed_id, stories=True, limit=pool)
        best: dict[int, tuple[float, int]] = {}
        seen: dict[int, int] = {}
        for aid, score, cid in ranked:  # best first: a story's first row is its best
            if cid is not None:
                best.setdefault(cid, (score, aid))
                seen[cid] = seen.get(cid, 0) + 1
        scores = sorted((v[0] for v in best.values()), reverse=True)
        cutoff = scores[limit - 1] if len(scores) >= limit else None
        every = len(ranked) < pool  # the pool holds every match
        if every or (cutoff is not None and ranked[-1][1] < cutoff):
            break
        pool *= 8
    chosen = [c for c, v in best.items() if cutoff is None or v[0] >= cutoff]
    counts = seen if every else _match_counts(s, node, chosen, since=since, feed_id=feed_id)
    order = sorted(chosen, key=lambda c: (-best[c][0], -counts.get(c, 1), -c))[:limit]
    return [(c, best[c][0], counts.get(c, 1), best[c][1]) for c in order]


def _match_counts(
    s: Session,
    node: Node,
    story_ids: Sequence[int],
    *,
    since: datetime | None,
    feed_id: int | None,
) -> dict[int, int]:
    """How many of each story's articles match (under the same filters)."""
    out: dict[int, int] = {}
    for start in range(0, len(story_ids), 500):
        marks = ", ".join(str(int(c)) for c in story_ids[start : start + 500])  # from the db
        params, filters = _filters(since, feed_id)
        article_join = "JOIN articles a ON a.id = m.article_id" if filters else ""
        if s.get_bind().dialect.name == "postgresql":
            cte, params = _pg_queries(s, node, params)
            if cte is None:
                return {}
            sql = f"""
                WITH q(cfg, query) AS ({cte})
                SELECT m.cluster_id, count(*) FROM memberships m {article_join}
                JOIN article_search x ON x.article_id = m.article_id
                JOIN q ON x.config = q.cfg AND x.document @@ q.query
                WHERE m.level = 'stories' AND m.cluster_id IN ({marks}) {filters}
                GROUP BY m.cluster_id
            """
        else:
            params["match"] = fts5_match(node)
            sql = f"""
                SELECT m.cluster_id, count(*) FROM memberships m {article_join}
                JOIN article_search x ON x.rowid = m.article_id
                WHERE m.level = 'stories' AND m.cluster_id IN ({marks})
                  AND article_search MATCH :match {filters}
                GROUP BY m.cluster_id
            """
        stmt = text(sql)
        if since is not None:
            stmt = stmt.bindparams(bindparam("since", type_=UTCDateTime()))
        out |= {int(cid): int(n) for cid, n in s.execute(stmt, params)}
    return out


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
