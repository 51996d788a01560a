"""newsfold: ingest feeds, normalise articles, fold near-duplicate reports into stories."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
