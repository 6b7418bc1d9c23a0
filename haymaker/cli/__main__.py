"""``python -m haymaker.cli``: the same as the `haymaker` console script."""

from haymaker.cli import entry

entry()
