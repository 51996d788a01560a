"""``python -m newsfold``: the same as the ``newsfold`` command."""

from __future__ import annotations

from newsfold.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
