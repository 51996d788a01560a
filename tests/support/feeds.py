"""Small builders of feed documents for tests."""

from __future__ import annotations

from html import escape


def rss(title: str, site: str, items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 document; each item has title, link, guid, date (RFC 822) and html.

    An empty guid leaves the element out (the entry is then keyed by its link).
    """
    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        + (f'<guid isPermaLink="false">{escape(i["guid"])}</guid>' if i["guid"] else "")
        + f"<pubDate>{i['date']}</pubDate><description>{escape(i['html'])}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{site}</link><description>news</description>"
        f"{body}</channel></rss>"
    ).encode()
