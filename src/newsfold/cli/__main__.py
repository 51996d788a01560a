from newsfold.cli import entrypoint

entrypoint()
