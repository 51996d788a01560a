"""Story search ranks a bounded pool of articles, with the order of ranking every match:
stories by their best article, then by how many of their articles match (exact counts),
ties at the pool's edge included; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event, insert

from newsfold.storage import Storage
from newsfold.storage import search as search_module
from newsfold.storage.search_index import index_rows
from newsfold.storage.tables import ArticleRow, ClusterRow, FeedRow, MembershipRow

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FILLER = [
    "harbour",
    "council",
    "bridge",
    "market",
    "river",
    "budget",
    "tram",
    "school",
    "road",
    "evening",
    "crews",
    "water",
    "cellar",
    "street",
    "mayor",
    "rain",
    "night",
    "district",
    "weekend",
    "station",
]


def _stories(rng: random.Random) -> list[list[str]]:
    """50 stories of 1-4 bodies; in about half, most bodies mention storm 1-3 times.
    Every fifth storm story opens with the previous one's first body (tied scores)."""
    out: list[list[str]] = []
    last = ""
    for k in range(50):
        stormy = k % 2 == 0
        bodies = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(FILLER) for _ in range(rng.randint(20, 40))]
            for _ in range(rng.randint(1, 3) if stormy and rng.random() < 0.7 else 0):
                words.insert(rng.randrange(len(words)), "storm")
            if rng.random() < 0.3:
                words.append("ferry")
            bodies.append(" ".join(words))
        if stormy and k % 10 == 0 and last:
            bodies[0] = last
        if stormy:
            last = bodies[0]
        out.append(bodies)
    return out


@pytest.fixture
def storage(database_url: str) -> Iterator[tuple[Storage, dict[int, int]]]:
    """The stories' articles over two feeds; yields the storage and each
    article's story."""
    rng = random.Random(5)
    stories = _stories(rng)
    st = Storage(database_url)
    st.upgrade()
    feeds = [
        {
            "id": f,
            "url": f"http://feed{f}.example/rss",
            "title": f"feed {f}",
            "tags": "",
            "full_text": False,
            "origin": "cli",
            "created_at": NOW,
            "next_fetch_at": NOW,
            "interval_s": 900,
            "error_count": 0,
            "redirect_seen": 0,
        }
        for f in (1, 2)
    ]
    articles: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    story_of: dict[int, int] = {}
    sizes: dict[int, int] = {}
    numbered = [(k, body) for k, bodies in enumerate(stories) for body in bodies]
    founder: dict[int, int] = {}  # a story's id is its first article's
    for aid, (k, body) in enumerate(numbered, start=1):
        story = founder.setdefault(k, aid)
        story_of[aid] = story
        sizes[story] = sizes.get(story, 0) + 1
        articles.append(
            {
                "id": aid,
                "feed_id": 1 + aid % 2,
                "entry_key": f"e{aid}",
                "url": f"http://feed.example/{aid}",
                "title": f"Report {aid}",
                "summary": "",
                "text": body,
                "language": "en",
                "published": NOW + timedelta(hours=aid),
                "stream_at": NOW + timedelta(hours=aid),
                "date_source": "feed",
                "fetched_at": NOW,
                "content_hash": f"{aid:064x}",
                "revision": 1,
                "signature": b"",
                "story_sketch": b"",
            }
        )
        members.append(
            {
                "article_id": aid,
                "level": "stories",
                "cluster_id": story,
                "tier": "new" if aid == story else "story",
                "similarity": 1.0,
                "matched_article_id": None,
                "joined_at": NOW,
            }
        )
    clusters = [
        {
            "level": "stories",
            "id": cid,
            "parent_id": None,
            "title": f"story {cid}",
            "size": size,
            "first_seen": NOW,
            "last_seen": NOW,
            "merged_into": None,
        }
        for cid, size in sizes.items()
    ]
    with st.session(write=True) as s:
        conn = s.connection()
        conn.execute(insert(FeedRow.__table__), feeds)  # type: ignore[arg-type]
        conn.execute(insert(ArticleRow.__table__), articles)  # type: ignore[arg-type]
        conn.execute(insert(MembershipRow.__table__), members)  # type: ignore[arg-type]
        conn.execute(insert(ClusterRow.__table__), clusters)  # type: ignore[arg-type]
        index_rows(conn, [(a["id"], a["title"], "", a["text"], "en") for a in articles])
    yield st, story_of
    st.close()


def _reference(
    st: Storage, story_of: dict[int, int], query: str, **filters: Any
) -> list[tuple[int, float, int, int]]:
    """Every matching article ranked (the article level), grouped into stories."""
    best: dict[int, tuple[float, int]] = {}
    count: dict[int, int] = {}
    for hit in st.search(query, limit=1000, **filters):
        cid = story_of[hit.id]
        best.setdefault(cid, (hit.score, hit.id))
        count[cid] = count.get(cid, 0) + 1
    order = sorted(best, key=lambda c: (-best[c][0], -count[c], -c))
    return [(c, best[c][0], count[c], best[c][1]) for c in order]


@pytest.mark.parametrize(
    "filters",
    [{}, {"feed_id": 2}, {"since": NOW + timedelta(hours=30)}],
    ids=["all", "feed", "since"],
)
def test_story_ranking_from_a_small_pool_equals_ranking_every_match(
    storage: tuple[Storage, dict[int, int]],
    monkeypatch: pytest.MonkeyPatch,
    filters: dict[str, Any],
) -> None:
    st, story_of = storage
    # A pool of 2 articles per result: it must grow for every limit here, and cut
    # stories whose other matching articles lie past it.
    monkeypatch.setattr(search_module, "STORY_POOL", 2)
    monkeypatch.setattr(search_module, "STORY_POOL_MIN", 1)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(st.engine, "before_cursor_execute", seen)
    for query in ("storm", "storm OR harbour", "storm -ferry"):
        reference = _reference(st, story_of, query, **filters)
        assert len(reference) > 5
        assert any(n > 1 for _, _, n, _ in reference)  # stories with several matches
        for limit in (1, 3, 7, 50):
            hits = st.search(query, stories=True, limit=limit, **filters)
            got = [(h.id, h.score, h.matches, h.article_id) for h in hits]
            assert got == reference[:limit], (query, limit)
            assert all(h.snippet and h.size for h in hits)
    event.remove(st.engine, "before_cursor_execute", seen)
    # No statement ranks every match: each that reads the index stops at a LIMIT, or is
    # confined to the chosen stories' members.
    reading = [q for q in statements if "article_search" in q and "memberships" in q]
    assert reading
    assert all("LIMIT" in q or "cluster_id IN" in q for q in reading)
