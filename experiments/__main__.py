"""Entry point of ``python -m experiments`` (see :mod:`experiments.cli`)."""
import sys

from experiments.cli import entry

sys.exit(entry())
