"""``python -m newsfold.cli`` (same as the ``newsfold`` command)."""

from newsfold.cli import entrypoint

if __name__ == "__main__":  # worker processes import this module without running it
    entrypoint()
