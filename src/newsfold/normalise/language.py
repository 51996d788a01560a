"""Language of an article (ISO 639-1) with py3langid, or ``None`` when unsure.

Only a prefix of the text is classified: accuracy is flat past a few hundred
characters and cost grows linearly with length.
"""

from __future__ import annotations

import re
import threading
from typing import Protocol

SAMPLE_CHARS = 300
MIN_CHARS = 40
MIN_CONFIDENCE = 0.8
_NOT_LETTERS = re.compile(r"[\W\d_]+")


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


_lock = threading.Lock()
_identifier: _Identifier | None = None


def _get() -> _Identifier:
    global _identifier  # noqa: PLW0603 - the model is loaded once, lazily (it takes ~0.3 s)
    if _identifier is None:
        with _lock:
            if _identifier is None:
                # Loaded on first use: the model takes a noticeable time to read.
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                loaded: _Identifier = LanguageIdentifier.from_model_file(
                    MODEL_FILE, norm_probs=True
                )
                _identifier = loaded
    return _identifier


def detect_language(text: str, *, min_chars: int = MIN_CHARS) -> str | None:
    sample = text[:SAMPLE_CHARS]
    if len(_NOT_LETTERS.sub("", sample)) < min_chars:
        return None
    lang, confidence = _get().classify(sample)
    if confidence < MIN_CONFIDENCE or len(lang) != 2:
        return None
    return lang


def article_language(title: str, text: str, *, min_chars: int = MIN_CHARS) -> str | None:
    """The language of an article: its text, with the title when the text is short.

    Ingest and ``eval`` both call this, so a labelled set is read as ingest reads it.
    """
    sample = text if len(text) >= 200 or title in text else f"{title}\n{text}"
    return detect_language(sample, min_chars=min_chars)


__all__ = ["article_language", "detect_language"]
