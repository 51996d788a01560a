"""newsfold benchmark suite: ``python -m benchmarks`` (see ``benchmarks/README.md``).

Every ratio compares against a baseline measured in the same run on the same
corpus, so numbers from different machines are comparable by their ratios.
"""
