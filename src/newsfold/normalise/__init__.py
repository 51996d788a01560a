"""The normalise stage: one ``RawEntry`` in, one clean ``Article`` out.

Owns text cleaning, boilerplate removal, canonical URLs, dates, language and the
entry key. Owns no I/O: fetching pages for full-text mode and storing the learned
boilerplate model are the service's job; this package only reads them.

The pipeline itself is ``entry.py`` (``normalise_entry`` and its ``STEPS``);
``extract.py`` runs it over a whole document for inspection.
"""

from __future__ import annotations

from newsfold.normalise.boilerplate import BoilerplateModel
from newsfold.normalise.entry import (
    STEPS,
    TEMPLATE_RULE,
    Context,
    Step,
    content_hash,
    normalise_entry,
    without_template,
)
from newsfold.normalise.extract import extract_report
from newsfold.normalise.html import html_to_text
from newsfold.normalise.page import PageExtract, extract_page
from newsfold.normalise.template import FeedTemplate
from newsfold.normalise.urls import canonical_url

__all__ = [
    "STEPS",
    "TEMPLATE_RULE",
    "BoilerplateModel",
    "Context",
    "FeedTemplate",
    "PageExtract",
    "Step",
    "canonical_url",
    "content_hash",
    "extract_page",
    "extract_report",
    "html_to_text",
    "normalise_entry",
    "without_template",
]
