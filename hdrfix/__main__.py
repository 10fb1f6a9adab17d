"""``python -m hdrfix``: the same command line as the ``hdrfix`` script."""

from hdrfix.cli import run

run()
