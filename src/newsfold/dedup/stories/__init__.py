"""Tier 2: reports of the same event from different outlets, joined into stories.

Each document carries a sketch of its strongest content terms (hashed, with
title and name boosts) that needs no corpus statistics, so it is computed
once and stored (``blob``). Corpus statistics are applied at comparison time:
document frequencies over the documents in the window (so a rebuild from
stored sketches recomputes them exactly) turn the bags into TF-IDF vectors.
A story is the sum of its members' bags; a document joins the story whose
TF-IDF cosine is highest, if it clears the threshold (``scoring``).
Candidates come from an inverted index over the document's most distinctive
terms (``postings``).

    blob.py      the stored sketch: encode, decode, parse many
    columns.py   per-document bags as columns (DocColumns)
    store.py     per-story vectors and members (StoryStore, Story)
    postings.py  term → stories (Postings), term → document frequency (Vocabulary)
    scoring.py   which story a document joins (Matcher, StoryMatch)
    rebuild.py   many documents at once, from stored sketches (Rebuild)
    index.py     StoryIndex: the parts above, changed together
"""

from newsfold.dedup.stories.blob import decode, encode
from newsfold.dedup.stories.index import StoryIndex
from newsfold.dedup.stories.scoring import StoryMatch

__all__ = ["StoryIndex", "StoryMatch", "decode", "encode"]
