"""A seeded synthetic news corpus: N feeds × M items, with near-duplicate rewrites across feeds.

Words come from a Zipfian vocabulary of pronounceable pseudo-words (news
text is Zipfian, which is what the word-hash cache and shingle counts see);
each event has its own names, so reports of one event share capitalised
terms the way real coverage does. A configurable share of items are
rewrites of an item already published by another feed: the same body with
a few percent of words substituted and a different title suffix, which is
what syndicated wire copy looks like after each outlet's edits.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

_ONSETS = (
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "pr",
    "sh",
    "st",
    "tr",
    "th",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "io")
_CODAS = ("", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck")

VOCABULARY = 30_000
NAMES = 3_000
EDIT_RATE = 0.04  # share of words a rewrite substitutes


@dataclass(frozen=True, slots=True)
class Item:
    feed: int
    guid: str
    link: str
    title: str
    body: str  # paragraphs separated by blank lines
    published: datetime
    original: str | None  # guid of the item this one rewrites


@dataclass(frozen=True, slots=True)
class Corpus:
    feeds: int
    items_per_feed: int
    dup_share: float
    items: tuple[Item, ...]

    def by_feed(self) -> dict[int, list[Item]]:
        out: dict[int, list[Item]] = {f: [] for f in range(self.feeds)}
        for item in self.items:
            out[item.feed].append(item)
        return out

    @property
    def words(self) -> int:
        return sum(len(i.body.split()) for i in self.items)


class WordModel:
    """Zipf(1.0) over pseudo-words; sampling is one bisect per word."""

    def __init__(self, rng: random.Random) -> None:
        seen: set[str] = set()
        vocab: list[str] = []
        while len(vocab) < VOCABULARY:
            syllables = rng.choice((1, 2, 2, 3, 3, 4))
            w = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                for _ in range(syllables)
            )
            if w not in seen:
                seen.add(w)
                vocab.append(w)
        # Frequent words are short, as in any language (Zipf's law of abbreviation).
        vocab.sort(key=len)
        self.vocab = vocab
        self.cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(VOCABULARY)))
        self.names = [w.capitalize() for w in rng.sample(vocab, NAMES)]
        self.rng = rng

    def word(self) -> str:
        r = self.rng.random() * self.cum[-1]
        return self.vocab[bisect.bisect_left(self.cum, r)]

    def sentence(self, names: list[str]) -> str:
        n = self.rng.randint(8, 24)
        words = [self.word() for _ in range(n)]
        for _ in range(self.rng.randint(0, 2)):  # the event's names recur in its reports
            words[self.rng.randrange(1, n)] = self.rng.choice(names)
        return words[0].capitalize() + " " + " ".join(words[1:]) + "."

    def article(self, names: list[str]) -> str:
        target = self.rng.randint(400, 800)
        paragraphs: list[str] = []
        count = 0
        while count < target:
            para = " ".join(self.sentence(names) for _ in range(self.rng.randint(2, 5)))
            paragraphs.append(para)
            count += len(para.split())
        return "\n\n".join(paragraphs)

    def rewrite(self, body: str) -> str:
        """Substitute ~EDIT_RATE of the words, keeping paragraphs."""
        out = []
        for para in body.split("\n\n"):
            words = para.split(" ")
            for i in range(len(words)):
                if self.rng.random() < EDIT_RATE:
                    words[i] = self.word()
            out.append(" ".join(words))
        return "\n\n".join(out)


def generate(
    feeds: int,
    items_per_feed: int,
    *,
    dup_share: float = 0.3,
    seed: int = 8,
    now: datetime | None = None,
) -> Corpus:
    """The same arguments always give the same corpus."""
    rng = random.Random(seed)
    model = WordModel(rng)
    now = now or datetime.now(UTC).replace(microsecond=0)
    total = feeds * items_per_feed
    # Items are published over the last 12 hours, oldest first, round-robin over feeds.
    step = timedelta(hours=12) / max(total, 1)
    originals: list[Item] = []
    items: list[Item] = []
    for n in range(total):
        feed = n % feeds
        published = now - timedelta(hours=12) + step * n
        guid = f"https://outlet{feed}.example/news/{n}"
        pool = [o for o in originals[-200:] if o.feed != feed]
        if pool and rng.random() < dup_share:
            src = rng.choice(pool)
            item = Item(
                feed,
                guid,
                guid,
                f"{src.title.split(' | ')[0]} | Outlet {feed}",
                model.rewrite(src.body),
                published,
                src.guid,
            )
        else:
            names = rng.sample(model.names, 4)
            title = " ".join([names[0], *(model.word() for _ in range(rng.randint(4, 8)))])
            item = Item(
                feed, guid, guid, f"{title} | Outlet {feed}", model.article(names), published, None
            )
            originals.append(item)
        items.append(item)
    return Corpus(feeds, items_per_feed, dup_share, tuple(items))


def rss(feed: int, items: list[Item]) -> bytes:
    """An RSS 2.0 document, newest first, bodies as HTML paragraphs."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Outlet {feed}</title><link>https://outlet{feed}.example/</link>",
        f"<description>News from outlet {feed}</description>",
    ]
    for it in reversed(items):
        html = "".join(f"<p>{escape(p)}</p>" for p in it.body.split("\n\n"))
        parts.append(
            f"<item><title>{escape(it.title)}</title><link>{it.link}</link>"
            f'<guid isPermaLink="true">{it.guid}</guid>'
            f"<pubDate>{format_datetime(it.published)}</pubDate>"
            f"<description>{escape(html)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def documents(corpus: Corpus) -> dict[str, bytes]:
    """Path → feed document, as the local server serves them."""
    return {f"/feed{f}.xml": rss(f, items) for f, items in corpus.by_feed().items()}
