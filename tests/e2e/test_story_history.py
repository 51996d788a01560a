"""Story history end to end, on SQLite and PostgreSQL: a split and a merge that
re-clustering records are shown by ``clusters show --json``, the JSON API and
the story page, and the output feeds' entries stay as they were for a story
that re-clustering leaves alone.

The split: a story of three reports (b, c first; a, an older report, joins it
late) meets a fourth report d, four days after a. d is far closer to b and c
than a is, and a and d are more than the story window apart, so they can
never share a story: the batch's re-clustering keeps b, c, d together and
sends a off on its own (a split from the story); d's own story merges in.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from typer.testing import CliRunner

from newsfold.api.app import create_app
from newsfold.api.feeds_out import FeedMeta, render_atom, render_json_feed, story_id_uri
from newsfold.cli import app as cli_app
from newsfold.storage.tables import ArticleRow, ClusterRow
from tests.e2e.test_story_time import Clock, _service
from tests.support.feeds import rss
from tests.support.server import Reply

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from newsfold.config import Settings
    from tests.support.server import FeedServer

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EVENT = NOW - timedelta(days=5)

_CORE = (
    "The Xalatepec volcano near Puebla erupted on Sunday, sending a column of ash eight "
    "kilometres high over the villages of San Nicolas and Tlamacas. Civil protection "
    "officials evacuated 4,000 residents and closed the Puebla airport."
)
_MORE = (
    " Governor Rosalba Quintero said shelters in Atlixco were open and that the Xalatepec "
    "ashfall had buried crops in Tlamacas. Seismologists at UNAM recorded tremors all night."
)
DOCS = {
    # guid: (feed, title, text, published)
    "a": (
        1,
        "Xalatepec volcano rumbles near Puebla",
        "The Xalatepec volcano near Puebla rumbled, and officials watched the crater at "
        "San Nicolas. Civil protection officials said Puebla residents should stay alert.",
        EVENT,
    ),
    "b": (
        2,
        "Xalatepec volcano erupts near Puebla, 4,000 evacuated",
        _CORE + _MORE,
        EVENT + timedelta(days=2),
    ),
    "c": (
        3,
        "Xalatepec eruption: ash over Puebla villages",
        _CORE + _MORE,
        EVENT + timedelta(days=2, hours=6),
    ),
    "d": (
        4,
        "Xalatepec volcano ash buries Tlamacas crops",
        _CORE + _MORE,
        EVENT + timedelta(days=4),
    ),
    "e": (
        5,
        "Xalatepec volcano: Tlamacas counts the cost",
        _CORE + _MORE,
        EVENT + timedelta(days=7, hours=12),
    ),
}


def _feed(guids: list[str]) -> bytes:
    feed = DOCS[guids[0]][0]
    items = [
        {
            "title": DOCS[g][1],
            "link": f"https://outlet{feed}.example/{g}",
            "guid": g,
            "date": DOCS[g][3].strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "html": f"<p>{DOCS[g][2]}</p>",
        }
        for g in guids
    ]
    return rss(f"Outlet {feed}", f"https://outlet{feed}.example/", items)


class History:
    """The four feeds served, and a service on one clock over ``database_url``."""

    def __init__(
        self, feed_server: FeedServer, make_settings: Callable[..., Settings], url: str
    ) -> None:
        for g in DOCS:
            body = _feed([g])
            feed_server.route(f"/{g}.xml", lambda _r, body=body: Reply(200, body))
        self.server = feed_server
        self.clock = Clock(EVENT + timedelta(days=2, hours=8))
        self.service = _service(make_settings, url, self.clock)

    def poll(self, *guids: str) -> None:
        for g in guids:
            self.service.add_feed(self.server.url(f"/{g}.xml"))
        assert self.service.poll().errors == 0

    def story_of(self, guid: str) -> int:
        for story in self.service.storage.published_stories(limit=None):
            if any(m.url and m.url.endswith(f"/{guid}") for m in story.members):
                return story.id
        raise AssertionError(guid)

    def entries(self) -> dict[str, dict[str, object]]:
        """The JSON output feed's items by id (the Atom feed is built from the same)."""
        stories = self.service.storage.published_stories(limit=None)
        doc = render_json_feed(stories, FeedMeta(), now=self.clock.at)
        items = doc["items"]
        assert isinstance(items, list)
        return {str(i["id"]): i for i in items}

    def atom(self) -> dict[str, str]:
        """Atom entry id → its updated time."""
        stories = self.service.storage.published_stories(limit=None)
        root = ET.fromstring(render_atom(stories, FeedMeta(), now=self.clock.at))
        ns = {"a": "http://www.w3.org/2005/Atom"}
        return {
            e.findtext("a:id", namespaces=ns) or "": e.findtext("a:updated", namespaces=ns) or ""
            for e in root.findall("a:entry", ns)
        }


def _split(h: History) -> tuple[int, int, int]:
    """b and c, then a (older) joins, then d splits a off: (story, split-off story, d's)."""
    h.poll("b", "c")
    h.clock.at += timedelta(hours=2)
    h.poll("a")
    story = h.story_of("b")
    assert h.story_of("a") == story
    h.clock.at = EVENT + timedelta(days=4, hours=2)
    h.service.add_feed(h.server.url("/d.xml"))
    with h.service.storage.session() as s:
        before = set(s.scalars(select(ClusterRow.id).where(ClusterRow.level == "stories")))
    assert h.service.poll().errors == 0
    assert h.story_of("d") == h.story_of("c") == story
    off = h.story_of("a")
    assert off != story
    with h.service.storage.session() as s:
        d_id = s.scalar(select(ArticleRow.id).where(ArticleRow.guid == "d"))
    assert d_id is not None
    assert d_id not in before
    return story, off, int(d_id)


def test_a_split_and_a_merge_show_in_clusters_show_the_api_and_the_page(
    feed_server: FeedServer,
    make_settings: Callable[..., Settings],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = History(feed_server, make_settings, database_url)
    try:
        story, off, d_id = _split(h)
        when = h.clock.at
        client = TestClient(create_app(h.service.settings, service=h.service))
        api = client.get(f"/api/clusters/{story}").json()
        api_off = client.get(f"/api/clusters/{off}").json()
        page = client.get(f"/stories/{story}").text
        page_off = client.get(f"/stories/{off}").text
        page_d = client.get(f"/stories/{d_id}").text
        listed = {i["id"]: i for i in client.get("/api/clusters?limit=50").json()["items"]}
    finally:
        h.service.close()
    # A list item carries the same history as the story's own answer.
    history_keys = ("merged_from", "split_from", "split_into")
    for detail in (api, api_off):
        assert {k: listed[detail["id"]][k] for k in history_keys} == {
            k: detail[k] for k in history_keys
        }
    at = when.isoformat().replace("+00:00", "Z")
    assert api["merged_from"] == [d_id]
    assert api["split_from"] == []
    assert api["split_into"] == [{"id": off, "split_at": at}]
    assert api_off["merged_from"] == []
    assert api_off["split_from"] == [{"id": story, "split_at": at}]
    assert api_off["split_into"] == []
    assert f'merged from <a href="/stories/{d_id}">#{d_id}</a>' in page
    assert f'split into <a href="/stories/{off}"' in page
    assert f'split from <a href="/stories/{story}">#{story}</a>' in page_off
    assert "merged from" not in page_off
    # d's own story was absorbed: its id resolves to the survivor's page.
    assert f"Story {story} (story {d_id} was merged into it)" in page_d

    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", h.service.settings.database_url)
    runner = CliRunner()
    shown = runner.invoke(cli_app, ["clusters", "show", str(off), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["split_from"] == [{"id": story, "split_at": at}]
    assert data["split_into"] == []
    shown = runner.invoke(cli_app, ["clusters", "show", str(story), "--json"])
    data = json.loads(shown.stdout)
    assert data["merged_from"] == [d_id]
    assert data["split_into"] == [{"id": off, "split_at": at}]
    # The joins re-clustering made keep their evidence: d, placed first in a story of its
    # own, now names its closest fellow member and their score; a is alone, a founder.
    members = {m["url"].rsplit("/", 1)[-1]: m for m in data["articles"]}
    assert members["d"]["tier"] == "story" and members["d"]["similarity"] > 0.3
    assert members["d"]["matched_article_id"] in {members["b"]["id"], members["c"]["id"]}
    alone = json.loads(runner.invoke(cli_app, ["clusters", "show", str(off), "--json"]).stdout)
    assert [(m["tier"], m["matched_article_id"]) for m in alone["articles"]] == [("new", None)]
    table = runner.invoke(cli_app, ["clusters", "show", str(story)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert f"merged from #{d_id}; split into #{off}" in table.stdout
    # ``clusters list --json`` carries the same history for each story it lists.
    listed_cli = runner.invoke(cli_app, ["clusters", "list", "--json", "--limit", "0"])
    assert listed_cli.exit_code == 0, listed_cli.output
    by_id = {i["id"]: i for i in json.loads(listed_cli.stdout)}
    for detail in (api, api_off):
        assert {k: by_id[detail["id"]][k] for k in history_keys} == {
            k: detail[k] for k in history_keys
        }


def test_feed_entries_change_with_a_story_s_articles_not_with_re_clustering(
    feed_server: FeedServer, make_settings: Callable[..., Settings], database_url: str
) -> None:
    h = History(feed_server, make_settings, database_url)
    try:
        h.poll("b", "c")
        story = story_id_uri(h.story_of("b"))
        first = h.entries()[story]
        # An older report joins: the story's last publication stays, its content changed.
        h.clock.at += timedelta(hours=2)
        h.poll("a")
        joined = h.entries()[story]
        assert joined["date_modified"] > first["date_modified"]
        assert h.atom()[story] == joined["date_modified"]
        # Re-polled with nothing new: the entry stays.
        h.clock.at += timedelta(hours=1)
        h.poll()
        assert h.entries()[story] == joined
        # d re-clusters the story: a splits off, d's story merges in (both entries change,
        # the merged-away one is gone, and the story keeps its entry id).
        h.clock.at = EVENT + timedelta(days=4, hours=2)
        h.poll("d")
        after = h.entries()
        assert story in after
        assert after[story]["date_modified"] > joined["date_modified"]
        off = story_id_uri(h.story_of("a"))
        d_id = h.service.storage.cluster_detail(h.story_of("d")).merged_from
        assert d_id
        assert not {story_id_uri(i) for i in d_id} & after.keys()
        assert after[off]["date_modified"] == after[story]["date_modified"]
        # A later report of the same volcano, too late for either story, is
        # re-clustered with them and stays apart: neither entry changes.
        h.clock.at = EVENT + timedelta(days=7, hours=14)
        h.poll("e")
        later = h.entries()
        assert h.story_of("e") not in {h.story_of("a"), h.story_of("b")}
        assert later[story] == after[story]
        assert later[off] == after[off]
    finally:
        h.service.close()


def test_a_list_page_reads_every_story_s_history_at_once(
    feed_server: FeedServer, make_settings: Callable[..., Settings], database_url: str
) -> None:
    """``/api/clusters`` asks the database as many times for a page of one story as for a
    page of all of them: no statement per story."""
    h = History(feed_server, make_settings, database_url)
    try:
        _split(h)
        h.clock.at = EVENT + timedelta(days=7, hours=14)
        h.poll("e")
        client = TestClient(create_app(h.service.settings, service=h.service))
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        engine = h.service.storage.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            per_page = {}
            for limit in (1, 50):
                statements.clear()
                page = client.get(f"/api/clusters?limit={limit}").json()
                per_page[limit] = (len(page["items"]), len(statements))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    finally:
        h.service.close()
    (one, n_one), (many, n_many) = per_page[1], per_page[50]
    assert one == 1 and many >= 3, per_page
    assert n_many == n_one, per_page
