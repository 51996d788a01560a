"""The order a batch of new documents is placed in, wherever the batch comes from.

Placement is one pass: where a document lands depends on what was placed
before it. Ingest (a poll's new entries across all its feeds) and ``eval`` (a
labelled file) both sort by ``placement_key`` — story time, then fields of the
document itself — so the same documents give the same stories whichever feed
was fetched first or listed them in which order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from newsfold.dedup import DedupDoc


def placement_key(doc: DedupDoc) -> tuple[datetime, str, str]:
    """Story time first; equal times (a feed without dates) by URL, then content."""
    return (doc.published, doc.url or "", doc.content_hash)


def placement_order(docs: Sequence[DedupDoc]) -> list[int]:
    """Positions of ``docs`` in the order to place them."""
    return sorted(range(len(docs)), key=lambda i: placement_key(docs[i]))


__all__ = ["placement_key", "placement_order"]
