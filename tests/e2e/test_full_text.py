"""Full-text mode through the real pipeline: each new entry's page is fetched and extracted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from newsfold.cli import main
from tests.support.server import Static

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.support.server import FeedServer

PARAGRAPHS = [
    "The harbour authority in Port Ellis closed the northern channel on Tuesday after a survey "
    "vessel found a shifting sandbank across the approach used by most container traffic.",
    "Pilots said ships drawing more than nine metres would be sent through the southern channel, "
    "adding about two hours to each passage, until dredging crews finish their work next month.",
    "Local fishing crews welcomed the decision but asked for a clearer timetable, saying the "
    "southern route crosses grounds where they set pots throughout the winter season.",
]


def _page(base: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (
        "<!doctype html><html><head><title>Channel closed | Ellis Post</title>"
        f'<link rel="canonical" href="{base}/news/channel-closed"></head><body>'
        "<header>Ellis Post</header><nav><a href='/'>Home</a></nav>"
        f"<main><article><h1>Northern channel closed</h1>{body}</article></main>"
        "<footer>Subscribe to our newsletter</footer></body></html>"
    ).encode()


def _feed(base: str) -> bytes:
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Ellis Post</title>
<link>{base}/</link>
<item><guid>1</guid><title>Northern channel closed</title><link>{base}/news/channel-closed?utm_source=rss</link>
<pubDate>Tue, 17 Nov 2026 08:00:00 GMT</pubDate><description>Ships diverted south.</description></item>
<item><guid>2</guid><title>Ferry timetable</title><link>{base}/news/missing-page</link>
<pubDate>Tue, 17 Nov 2026 09:00:00 GMT</pubDate><description>The winter ferry timetable starts on Monday with fewer evening crossings.</description></item>
</channel></rss>""".encode()


def test_full_text_mode_uses_the_page_and_falls_back_to_the_feed(
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = feed_server.base_url
    feed_server.route("/rss.xml", Static(_feed(base)))
    feed_server.route("/news/channel-closed", Static(_page(base), content_type="text/html"))
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", f"sqlite:///{tmp_path / 'ft.db'}")
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    assert main(["feeds", "add", feed_server.url("/rss.xml"), "--full-text", "--no-check"]) == 0
    assert main(["fetch"]) == 0
    capsys.readouterr()
    assert main(["articles", "list", "--json"]) == 0
    articles = {a["title"]: a for a in json.loads(capsys.readouterr().out)}

    assert main(["articles", "show", str(articles["Northern channel closed"]["id"]), "--json"]) == 0
    page_article = json.loads(capsys.readouterr().out)
    for paragraph in PARAGRAPHS:
        assert paragraph in page_article["text"]
    assert "Subscribe" not in page_article["text"] and "Home" not in page_article["text"]
    assert page_article["url"] == f"{base}/news/channel-closed"

    # The second page is a 404: the feed's own content is kept.
    assert main(["articles", "show", str(articles["Ferry timetable"]["id"]), "--json"]) == 0
    fallback = json.loads(capsys.readouterr().out)
    assert fallback["text"].startswith("The winter ferry timetable")
    # Only new entries are fetched as pages: the feed changes, the stored entry's page is
    # not fetched again.
    extra = b"<item><guid>3</guid><title>Tide tables</title><description>New tide tables.</description></item>"
    feed_server.route("/rss.xml", Static(_feed(base).replace(b"</channel>", extra + b"</channel>")))
    assert main(["fetch", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new_articles"] == 1
    assert feed_server.hits("/news/channel-closed") == 1
