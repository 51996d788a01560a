"""Worker processes give exactly the clusters the in-process pipeline gives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsfold.cli.demo import DEMO_FILES, serve_demo_data
from newsfold.pipeline.service import Service

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from newsfold.config import Settings


def _clusters(settings: Settings) -> list[tuple[int, tuple[str, ...]]]:
    server, base = serve_demo_data()
    service = Service.open(settings)
    try:
        for name in DEMO_FILES:
            service.add_feed(f"{base}/{name}")
        summary = service.poll()
        assert summary.errors == 0 and summary.new_articles == 14
        assert service.poll().new_articles == 0  # re-poll: nothing new, nothing re-sketched
        stories = service.storage.list_clusters(limit=None)
        return sorted(
            (c.size, tuple(sorted(m.title for m in service.storage.cluster_detail(c.id).articles)))
            for c in stories
        )
    finally:
        service.close()
        server.shutdown()


def test_pooled_and_in_process_agree(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    def settings(name: str, workers: int) -> Settings:
        base = make_settings(f"sqlite:///{tmp_path / name}")
        return base.model_copy(
            update={
                "pipeline": base.pipeline.model_copy(
                    update={"workers": workers, "pool_min_feeds": 1}
                ),
                "fetch": base.fetch.model_copy(update={"min_host_delay_s": 0.0}),
            }
        )

    pooled = settings("pooled.db", 2)
    assert Service(pooled).preparer.use_pool(4)
    assert _clusters(pooled) == _clusters(settings("inline.db", 1))
