"""How many rows the CLI's lists would show without their ``--limit``: one ``COUNT(*)`` with
the list's own filter, asked only when a list came back full."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from newsfold.storage.tables import ArticleRow, ClusterRow
from newsfold.types import Level

if TYPE_CHECKING:
    import contextlib
    from datetime import datetime

    from sqlalchemy.orm import Session


class CountsMixin:
    if TYPE_CHECKING:

        def session(self, *, write: bool = False) -> contextlib.AbstractContextManager[Session]: ...

    def count_clusters(
        self, *, level: Level = Level.STORIES, since: datetime | None = None, min_size: int = 1
    ) -> int:
        """The clusters ``list_clusters`` selects with the same filter, however many."""
        stmt = select(func.count()).where(ClusterRow.level == level, ClusterRow.size >= min_size)
        if since is not None:
            stmt = stmt.where(ClusterRow.last_seen >= since)
        with self.session() as s:
            return int(s.scalar(stmt) or 0)

    def count_articles(self, *, feed_id: int | None = None) -> int:
        """The articles ``list_articles`` selects with the same filter, however many."""
        stmt = select(func.count()).select_from(ArticleRow)
        if feed_id is not None:
            stmt = stmt.where(ArticleRow.feed_id == feed_id)
        with self.session() as s:
            return int(s.scalar(stmt) or 0)
