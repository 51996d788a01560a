"""Clustering quality on labelled data (``newsfold eval``).

    scoring.py       metrics and the replay through the ingest path
    datasets.py      labelled JSONL sets and ``syndicate()``

Knows nothing of feeds or storage.
"""

from __future__ import annotations

from newsfold.evaluation.datasets import read_dataset, syndicate, write_dataset
from newsfold.evaluation.scoring import evaluate

__all__ = ["evaluate", "read_dataset", "syndicate", "write_dataset"]
