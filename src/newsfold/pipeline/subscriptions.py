"""The database as every command opens it: the schema migrated to the current revision and
the settings file's ``[[feeds]]`` subscribed. ``Service.open`` adds the pipeline on top;
the commands that only read (``stats``, ``clusters list``…) stop here, so they never import
the fetcher or the dedup stack (numpy and scipy, about half a second at start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsfold.storage import Storage

if TYPE_CHECKING:
    from datetime import datetime

    from newsfold.config import Settings


def sync_config_feeds(storage: Storage, settings: Settings, *, now: datetime) -> int:
    """Subscribe to the settings file's feeds (canonical URLs); disable ones taken out."""
    listed: list[tuple[str, str | None, int | None, bool, tuple[str, ...]]] = []
    if settings.feeds:
        # Imported here: the normalise package loads numpy, which a settings file that
        # lists no feeds (the shipped one) need not pay for at every command's start.
        from newsfold.normalise.urls import canonical_url

        listed = [
            (canonical_url(f.url) or f.url, f.title, f.interval_s, f.full_text, f.tags)
            for f in settings.feeds
        ]
    return storage.sync_config_feeds(
        listed, now=now, default_interval_s=settings.schedule.default_interval_s
    )


def open_storage(settings: Settings, *, now: datetime) -> Storage:
    """The configured database, migrated, with the settings file's feeds subscribed."""
    storage = Storage(settings.database_url)
    try:
        storage.upgrade()
        sync_config_feeds(storage, settings, now=now)
    except BaseException:
        storage.close()
        raise
    return storage
