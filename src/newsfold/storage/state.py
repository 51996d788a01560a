"""Named values every worker shares through the ``state`` table.

``deletions``: a token that changes whenever articles are deleted (a prune, a feed
removed). A worker's in-memory index holds articles by id; when the token moves
under it, another process deleted some, and the index is rebuilt (as it is when
another worker merged stories). ``last_prune_at``: when the last prune finished,
so the daemons of one database prune once a day between them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from newsfold.storage.tables import StateRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DELETIONS = "deletions"
LAST_PRUNE = "last_prune_at"


def get(s: Session, key: str) -> bytes | None:
    value = s.scalar(select(StateRow.value).where(StateRow.key == key))
    return None if value is None else bytes(value)


def put(s: Session, key: str, value: bytes, *, now: datetime) -> None:
    """Insert or replace one value (an upsert: two writers never collide on the key)."""
    dialect = s.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(StateRow).values(key=key, value=value, updated_at=now)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=[StateRow.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )


def deletions(s: Session) -> bytes:
    """The current deletions token (empty until the first deletion)."""
    return get(s, DELETIONS) or b""


def note_deletion(s: Session) -> None:
    # A fresh random token rather than a counter: concurrent deleters need no
    # read-modify-write, and any change tells a worker its index is stale.
    put(s, DELETIONS, uuid.uuid4().bytes, now=datetime.now(UTC))


def last_prune(s: Session) -> datetime | None:
    value = get(s, LAST_PRUNE)
    return None if value is None else datetime.fromisoformat(value.decode())


def set_last_prune(s: Session, at: datetime) -> None:
    put(s, LAST_PRUNE, at.astimezone(UTC).isoformat().encode(), now=at)
