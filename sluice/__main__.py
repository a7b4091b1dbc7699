"""`python -m sluice ...`: the same command as the `sluice` console script."""

from sluice.cli import run

run()
