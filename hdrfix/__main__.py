"""``python -m hdrfix``: the same command line as the ``hdrfix`` script."""

from hdrfix.cli import main

main(prog_name="hdrfix")
