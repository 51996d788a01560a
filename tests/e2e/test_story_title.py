"""One story title everywhere: the CLI, the JSON API, the web page and the output feeds all
show a story under its representative's title (earliest-published report, tie → lower id),
and a report without a title is shown under the opening words of its text."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import feedparser
import pytest

from newsfold.api.feeds_out import FeedMeta, render_atom, render_json_feed
from newsfold.api.schemas import cluster_detail_out, cluster_out
from newsfold.api.web import make_env
from newsfold.cli import main
from newsfold.config import load_settings
from newsfold.pipeline.service import Service
from newsfold.representative import display_title, representative
from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.server import FeedServer

NOW = datetime.now(UTC).replace(microsecond=0)
BODY = " ".join(
    f"Harbour officials in Porto Velho said on day {i} that the flood barrier held while crews"
    f" pumped water from {i} streets and the mayor promised an inquiry into the {i} failures."
    for i in range(12)
)


def _item(title: str, link: str, hours_ago: float) -> dict[str, str]:
    when = email.utils.format_datetime(NOW - timedelta(hours=hours_ago))
    return {"title": title, "link": link, "guid": link, "date": when, "html": f"<p>{BODY}</p>"}


@pytest.fixture
def story(feed_server: FeedServer, tmp_path: Path) -> tuple[Service, int]:
    # The newest report is polled first, so it founds the story; the earliest comes later.
    feed_server.route(
        "/late.xml",
        Static(
            rss(
                "Late",
                "https://late.example/",
                [_item("Newest headline", "https://late.example/1", 1)],
            )
        ),
    )
    feed_server.route(
        "/early.xml",
        Static(
            rss(
                "Early",
                "https://early.example/",
                [_item("Earliest headline", "https://early.example/1", 5)],
            )
        ),
    )
    settings = load_settings(
        None,
        read_file=False,
        database_url=f"sqlite:///{tmp_path / 't.db'}",
        allow_private_networks=True,
    )
    service = Service.open(settings)
    for path in ("/late.xml", "/early.xml"):
        service.add_feed(feed_server.url(path))
        service.poll([feed_server.url(path)])
    (cluster,) = [c for c in service.storage.list_clusters() if c.size == 2]
    return service, cluster.id


def test_one_title_everywhere(
    story: tuple[Service, int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, cid = story
    want = "Earliest headline"
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", service.settings.database_url)
    capsys.readouterr()
    assert main(["clusters", "list", "--json"]) == 0
    listed = {c["id"]: c["title"] for c in json.loads(capsys.readouterr().out)}
    assert listed[cid] == want
    assert main(["clusters", "show", str(cid), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == want

    published = service.storage.published_story(cid)
    assert cluster_out(published).title == want
    assert cluster_detail_out(service.storage.cluster_detail(cid)).title == want
    meta = FeedMeta(story_url="http://x/stories/{id}")
    atom = feedparser.parse(render_atom([published], meta, now=NOW))
    assert atom.entries[0].title == want
    assert render_json_feed([published], meta, now=NOW)["items"][0]["title"] == want
    page = (
        make_env()
        .get_template("index.html")
        .render(stories=[published], recent=True, hours=24, now=NOW)
    )
    assert f">{want}</a>" in page and "Newest headline" not in page
    story_page = (
        make_env()
        .get_template("story.html")
        .render(story=published, by_id={m.id: m for m in published.members}, requested_id=cid)
    )
    assert f'<h2 dir="auto">{want}</h2>' in story_page


class _R:
    def __init__(self, id_: int, hours_ago: float) -> None:
        self.id = id_
        self.published = NOW - timedelta(hours=hours_ago)


def test_representative_rule() -> None:
    assert representative([_R(5, 1), _R(9, 3), _R(2, 2)]).id == 9  # earliest published
    assert representative([_R(7, 3), _R(4, 3)]).id == 4  # tie: lower id


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("  Spaced   title ", "x", "Spaced title"),
        ("", "Floods close the port. Crews pump water all night.", "Floods close the port."),
        (None, "", "(untitled)"),
        ("", " ", "(untitled)"),
        (None, "word " * 40, ("word " * 18).strip() + "…"),
    ],
)
def test_derived_title(title: str | None, text: str, expected: str) -> None:
    assert display_title(title, text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.links.example/2026/dam-gates/?id=3#top", "links.example/2026/dam-gates"),
        ("https://links.example/", "links.example"),
        ("https://links.example/" + "a" * 200, "links.example/" + "a" * 75 + "…"),
        ("not a url", "(untitled)"),
        (None, "(untitled)"),
    ],
)
def test_without_title_or_text_the_url_names_the_report(url: str | None, expected: str) -> None:
    assert display_title(None, "", url) == expected
    assert display_title("Headline", "", url) == "Headline"  # a title still wins
