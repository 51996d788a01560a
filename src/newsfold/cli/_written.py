"""``export -o FILE`` says what it wrote, in one line, as ``eval syndicate`` does:
"wrote an Atom feed of 4 entries to stories.atom".

The line is read back from the file the command wrote, so it reports the file as it is.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from newsfold.cli._common import plural, say

if TYPE_CHECKING:
    from collections.abc import Callable


def saying_what_was_written(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (its options unchanged), then one line on stdout when it wrote to ``output``."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        command(**kwargs)
        output = kwargs.get("output")
        if isinstance(output, Path):
            say(f"wrote {_feed(output, str(kwargs.get('fmt')))} to {output}")

    return wrapper


def _feed(path: Path, fmt: str) -> str:
    from newsfold.api.feeds_out import ATOM_NS

    data = path.read_bytes()
    if fmt == "atom":
        entries = len(ET.fromstring(data).findall(f"{{{ATOM_NS}}}entry"))
        return f"an Atom feed of {plural(entries, 'entry', 'entries')}"
    items = json.loads(data).get("items") or []
    return f"a JSON Feed of {plural(len(items), 'item')}"
