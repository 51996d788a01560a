"""Feed templates and identifiers, end to end through ``fetch`` on SQLite and PostgreSQL.

Templated feeds (a Reddit-style "submitted by … [link] [comments]" feed, a video channel
whose every item carries the channel's description, an agency's catalogue notes that
differ only in a CVE id) must form no copy groups, while a Reddit cross-post and a
syndicated copy under a new headline still fold, in one poll and after a rebuild.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from newsfold.cli import main
from tests.support.feeds import rss
from tests.support.server import Static

if TYPE_CHECKING:
    from tests.support.server import FeedServer

CROSS_POST = "Beyond Nmap: Building Custom Recon Pipelines"
CHANNEL = (
    "Hak5 -- Cyber Security Education, Inspiration, News and Community since 2005. "
    "Our Site: https://www.hak5.org Shop: https://shop.hak5.org Community: "
    "https://www.hak5.org/community Support the show on Patreon and follow us everywhere. "
    "Founded in 2005, our mission is to advance the InfoSec industry through award winning "
    "educational podcasts, leading pentest gear and an inclusive community where all hackers "
    "belong."
)
KEV_TITLE = "CISA Adds One Known Exploited Vulnerability to Catalog"
WIRE = (
    "Regulators in three countries opened an inquiry on Tuesday into a data broker that sold "
    "location histories of millions of phone users to advertisers and at least two government "
    "agencies, according to documents seen by reporters. The broker, which trades under the "
    "name Meridian Signals, collected the data through software kits embedded in weather, "
    "fitness and prayer apps. Its chief executive said the company had broken no law and "
    "would cooperate with the authorities. Privacy groups said the case showed how little "
    "control people have over where their movements end up, and called for a ban on the sale "
    "of precise location data. The inquiry could lead to fines of up to four percent of the "
    "company's annual turnover."
)


def _item(feed: str, i: int, title: str, html: str, day: int = 3) -> dict[str, str]:
    return {
        "title": title,
        "link": f"https://{feed}.example/{i}",
        "guid": f"{feed}-{i}",
        "date": f"Mon, {day:02d} Nov 2025 {i % 24:02d}:15:00 +0000",
        "html": html,
    }


def _reddit(feed: str, users: list[str], titles: list[str]) -> bytes:
    items = [
        _item(
            feed,
            i,
            title,
            f'submitted by <a href="https://reddit.example/u/{user}">/u/{user}</a> '
            f'<a href="https://x.example/{i}">[link]</a> <a href="https://r.example/{i}">[comments]</a>',
        )
        for i, (user, title) in enumerate(zip(users, titles, strict=True))
    ]
    return rss(feed, f"https://{feed}.example", items)


def _kev(cve: str) -> str:
    return (
        "CISA has added one new vulnerability to its Known Exploited Vulnerabilities (KEV) "
        f"Catalog, based on evidence of active exploitation. {cve} Gladinet Triofox Improper "
        "Access Control Vulnerability. These types of vulnerabilities are frequent attack "
        "vectors for malicious cyber actors and pose significant risks to the federal "
        "enterprise. CISA urges all organizations to reduce their exposure to cyberattacks by "
        "prioritizing timely remediation of Catalog vulnerabilities as part of their "
        "vulnerability management practice."
    )


@pytest.fixture
def templated(feed_server: FeedServer) -> FeedServer:
    topics = [f"Field notes {n}: {t}" for n, t in enumerate("abcdefghi")]
    netsec = [CROSS_POST, *topics]
    users = ["voidrane", "alt69785", "alt69785", "mabote", "Fit_Wing3352", "RoseSec_"] * 2
    feed_server.route("/netsec.xml", Static(_reddit("netsec", users[:10], netsec)))
    other = [f"Question of the day {n}" for n in range(9)]
    feed_server.route(
        "/cybersec.xml",
        Static(_reddit("cybersec", ["voidrane", *users[1:10]], [CROSS_POST, *other])),
    )
    videos = [f"Episode {n}: what changed this week #technews" for n in range(9)]
    feed_server.route(
        "/channel.xml",
        Static(
            rss(
                "Channel",
                "https://channel.example",
                [_item("channel", i, t, f"<p>{CHANNEL}</p>") for i, t in enumerate(videos)],
            )
        ),
    )
    cves = [f"CVE-2025-{12480 + 17 * n}" for n in range(9)]
    feed_server.route(
        "/cisa.xml",
        Static(
            rss(
                "CISA",
                "https://cisa.example",
                [_item("cisa", i, KEV_TITLE, f"<p>{_kev(c)}</p>") for i, c in enumerate(cves)],
            )
        ),
    )
    feed_server.route(
        "/wire.xml",
        Static(
            rss(
                "Wire",
                "https://wire.example",
                [
                    _item(
                        "wire",
                        0,
                        "Regulators open inquiry into location data broker",
                        f"<p>{WIRE}</p>",
                    )
                ],
            )
        ),
    )
    feed_server.route(
        "/herald.xml",
        Static(
            rss(
                "Herald",
                "https://herald.example",
                [
                    _item(
                        "herald",
                        0,
                        "Phone location seller faces three-country probe",
                        f"<p>The Herald, your independent voice</p><p>{WIRE}</p>",
                        day=4,
                    )
                ],
            )
        ),
    )
    return feed_server


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _copy_groups(capsys: pytest.CaptureFixture[str]) -> list[set[str]]:
    groups = cli(capsys, "clusters", "list", "--level", "copies", "--min-size", "2", "--limit", "0")
    titles = {
        a["id"]: (a["title"], a["url"]) for a in cli(capsys, "articles", "list", "--limit", "0")
    }
    out = []
    for g in groups:
        shown = cli(capsys, "clusters", "show", str(g["id"]), "--level", "copies")
        out.append({titles[a["id"]][1] for a in shown["articles"]})
    return out


def test_templates_and_identifiers_keep_reports_apart(
    templated: FeedServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSFOLD_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSFOLD_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFOLD_FETCH__MIN_HOST_DELAY_S", "0")
    for path in (
        "/netsec.xml",
        "/cybersec.xml",
        "/channel.xml",
        "/cisa.xml",
        "/wire.xml",
        "/herald.xml",
    ):
        cli(capsys, "feeds", "add", templated.url(path), "--no-check")
    summary = cli(capsys, "fetch")
    assert summary["new_articles"] == 10 + 10 + 9 + 9 + 1 + 1
    expected = [
        {"https://netsec.example/0", "https://cybersec.example/0"},  # the cross-post
        {"https://wire.example/0", "https://herald.example/0"},  # a new headline and banner
    ]
    assert sorted(_copy_groups(capsys), key=sorted) == sorted(expected, key=sorted)
    # The next poll runs in a new process: the index is rebuilt from storage and the
    # templates are read back with their feeds. A new note and a new post stay alone.
    cves = [f"CVE-2025-{12480 + 17 * n}" for n in range(10)]
    templated.route(
        "/cisa.xml",
        Static(
            rss(
                "CISA",
                "https://cisa.example",
                [
                    _item("cisa", i, KEV_TITLE, f"<p>{_kev(c)}</p>", day=5)
                    for i, c in enumerate(cves)
                ],
            )
        ),
    )
    users = ["voidrane", "alt69785", "alt69785", "mabote", "Fit_Wing3352", "RoseSec_"] * 2
    titles = [CROSS_POST, *(f"Field notes {n}: {t}" for n, t in enumerate("abcdefghij"))]
    templated.route("/netsec.xml", Static(_reddit("netsec", users[:11], titles)))
    again = cli(capsys, "fetch")
    assert again["new_articles"] == 2
    assert sorted(_copy_groups(capsys), key=sorted) == sorted(expected, key=sorted)
