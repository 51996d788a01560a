"""Labelled datasets for ``newsfold eval``: JSONL records, and ``syndicate()``.

``syndicate()`` turns real articles into a labelled near-duplicate set by the
transformations republishers apply (see ``TRANSFORMS``), keeping the untouched
originals as distractors. Knows nothing of feeds or storage.
"""

from __future__ import annotations

import html
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from selectolax.lexbor import LexborHTMLParser as HTMLParser

from newsfold.dedup.shingles import words
from newsfold.errors import NewsfoldError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path


class DatasetError(NewsfoldError):
    """A labelled dataset file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class Record:
    """One labelled document of an evaluation set (a JSONL line)."""

    id: str
    cluster: str
    title: str
    text: str
    published: datetime | None = None
    source: str | None = None
    url: str | None = None
    language: str | None = None  # ISO 639-1; None: identified from the text, as ingest does

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "cluster": self.cluster,
            "title": self.title,
            "text": self.text,
            "published": self.published.isoformat() if self.published else None,
            "source": self.source,
            "url": self.url,
        } | ({"language": self.language} if self.language else {})


def _parse_time(value: object, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as e:
        raise DatasetError(f"{where}: bad published value {value!r}") from e
    # Naive times are taken as UTC, as the normaliser does for feeds without a zone.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def read_dataset(path: Path) -> list[Record]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            raw = json.loads(line)
            records.append(
                Record(
                    id=str(raw["id"]),
                    cluster=str(raw["cluster"]),
                    title=str(raw.get("title") or ""),
                    text=str(raw.get("text") or ""),
                    published=_parse_time(raw.get("published"), where),
                    source=raw.get("source"),
                    url=raw.get("url"),
                    language=raw.get("language") or None,
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise DatasetError(f"{where}: not a labelled record ({e})") from e
    if not records:
        raise DatasetError(f"{path}: no records")
    return records


def write_dataset(path: Path, records: Iterable[Record]) -> int:
    n = 0
    try:
        with path.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                n += 1
    except OSError as e:
        raise DatasetError(f"cannot write {path}: {e}") from e
    return n


# ------------------------------------------------------------------- replay


def plain_text(text: str) -> str:
    """HTML to text for wrapped copies: what the normaliser does before dedup."""
    if "<" not in text or ">" not in text:
        return text
    tree = HTMLParser(text)
    for node in tree.css("script, style"):
        node.decompose()
    blocks = [
        n.text(separator=" ").strip() for n in tree.css("p, h1, h2, h3, li, div:not(:has(*))")
    ]
    lines = [b for b in blocks if b]
    return "\n".join(lines) if lines else (tree.text(separator="\n") or "")


# ---------------------------------------------------------------- syndicate

# Site furniture that republishers wrap around wire copy (top and bottom).
_BOILER_TOP = (
    "{site} | Breaking news, analysis and opinion",
    "Advertisement",
    "Listen to this article",
    "By {site} staff with agency reports",
)
_BOILER_BOTTOM = (
    "Subscribe to the {site} newsletter for the day's top stories.",
    "Follow {site} on social media for the latest updates.",
    "© {site}. All rights reserved. This material may not be redistributed.",
    "Share this article: Facebook Twitter Email",
    "Related: more world news from {site}",
)
_DATELINES = ("{CITY} (AP) — ", "{CITY} (Reuters) - ", "{CITY} (AFP) - ", "{CITY}, (dpa) — ")
_CITIES = ("WASHINGTON", "LONDON", "PARIS", "NEW YORK", "BERLIN", "LOS ANGELES")
_SITES = ("Daily Courier", "Metro Wire", "The Observer Post", "City Herald", "Newsline 24")
# Light edits: what a copy desk changes without rewriting (house style, synonyms).
_EDITS = {
    "said": "stated",
    "says": "stated",
    "told": "informed",
    "about": "around",
    "after": "following",
    "before": "prior to",
    "but": "however",
    "also": "additionally",
    "percent": "%",
    "more than": "over",
}
TRANSFORMS = ("headline", "boilerplate", "dateline", "trim", "reorder", "edit", "summary", "html")


def _edit_line(line: str, rng: random.Random, rate: float) -> str:
    out = []
    for word in line.split(" "):
        key = word.lower()
        if key in _EDITS and rng.random() < 0.5:
            out.append(_EDITS[key])
        elif rng.random() >= rate / 2:  # else a dropped word
            out.append(word)
    return " ".join(out)


def _copy(original: Record, n: int, rng: random.Random) -> tuple[Record, tuple[str, ...]]:
    """One republished copy: a random subset of the documented transformations."""
    lines = [ln for ln in original.text.splitlines() if ln.strip()] or [original.title]
    site = rng.choice(_SITES)
    summary = rng.random() < 0.2
    used = ["headline"]
    if summary:
        # Summary-only copy: the lead sentences, as aggregators and push alerts run them.
        keep, words_kept = [], 0
        for line in lines:
            keep.append(line)
            words_kept += len(line.split())
            if words_kept >= 30:
                break
        lines = keep
        used.append("summary")
    else:
        if len(lines) > 4 and rng.random() < 0.5:
            lines = lines[: max(3, int(len(lines) * rng.uniform(0.6, 0.9)))]
            used.append("trim")
        if len(lines) > 3 and rng.random() < 0.4:
            i = rng.randrange(1, len(lines) - 1)
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            used.append("reorder")
        if rng.random() < 0.6:
            lines = [_edit_line(ln, rng, 0.03) for ln in lines]
            used.append("edit")
    if rng.random() < 0.5:
        lines[0] = rng.choice(_DATELINES).format(CITY=rng.choice(_CITIES)) + lines[0]
        used.append("dateline")
    if not summary and rng.random() < 0.7:
        top = [b.format(site=site) for b in rng.sample(_BOILER_TOP, rng.randint(1, 2))]
        bottom = [b.format(site=site) for b in rng.sample(_BOILER_BOTTOM, rng.randint(1, 3))]
        lines = top + lines + bottom
        used.append("boilerplate")
    text = "\n".join(lines)
    if rng.random() < 0.3:
        body = "".join(f"<p>{html.escape(ln)}</p>" for ln in lines)
        text = (
            f'<html><head><style>p{{margin:0}}</style></head><body><div class="story">{body}'
            '</div><script>track("view")</script></body></html>'
        )
        used.append("html")
    headline = original.title.rstrip(".") + f" | {site}"
    if rng.random() < 0.5:
        lead = (original.text.split("\n", 1)[0] or original.title).split()
        headline = " ".join(lead[: rng.randint(6, 10)]).rstrip(",;:") + f" - {site}"
    published = (
        original.published + timedelta(minutes=rng.randint(5, 600)) if original.published else None
    )
    record = Record(
        id=f"{original.id}#copy{n}",
        cluster=f"copy:{original.id}",
        title=headline,
        text=text,
        published=published,
        source=site.lower().replace(" ", "") + ".example",
        url=None,
    )
    return record, tuple(used)


def distinct(records: Sequence[Record], size: int = 3) -> list[Record]:
    """Records minus those whose text is a near-copy of an earlier record's.

    Exact word-shingle sets: Jaccard ≥ 0.5, or ≥ 80% of the shorter text
    inside the longer (ECB+, for one, holds a few such pairs).
    """
    kept: list[Record] = []
    sets: list[set[str]] = []
    owners: dict[str, list[int]] = defaultdict(list)
    for r in records:
        tokens = words(plain_text(r.text))
        mine = {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}
        overlap: Counter[int] = Counter(k for sh in mine for k in owners.get(sh, ()))
        if any(
            n / len(mine | sets[k]) >= 0.5 or n / min(len(mine), len(sets[k])) >= 0.8
            for k, n in overlap.items()
        ):
            continue
        for sh in mine:
            owners[sh].append(len(kept))
        kept.append(r)
        sets.append(mine)
    return kept


def syndicate(
    records: Sequence[Record], *, copies: int = 3, share: float = 0.5, seed: int = 0
) -> list[Record]:
    """A labelled near-duplicate set made from real articles.

    Originals that already are copies of an earlier one are dropped first
    (``distinct``), so the gold labels mean what they say. A ``share`` of the
    articles with some text are republished ``copies`` times each, with the
    transformations in ``TRANSFORMS``. Every original stays in the set; the
    untouched ones are distractors, often other reports of the same event.
    Gold: an original and its copies form one cluster (``copy:<id>``), and
    every distractor is its own cluster. Copies appear a little later in the
    stream than their original, as republished wire copy does.
    """
    rng = random.Random(seed)
    records = distinct(records)
    eligible = [r for r in records if len(r.text.split()) >= 40]
    chosen = {r.id for r in rng.sample(eligible, round(len(eligible) * share))}
    stream: list[tuple[float, int, Record]] = []
    for i, r in enumerate(records):
        if r.id not in chosen:
            stream.append((i, 0, replace(r, cluster=f"copy:{r.id}")))
            continue
        stream.append((i, 0, replace(r, cluster=f"copy:{r.id}")))
        for n in range(1, copies + 1):
            record, _ = _copy(r, n, rng)
            stream.append((i + rng.uniform(0.5, 40), n, record))
    stream.sort(key=lambda item: (item[0], item[1]))
    return [r for _, _, r in stream]
