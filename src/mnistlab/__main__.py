"""`python -m mnistlab` runs the command-line interface."""

from mnistlab.cli import entry

entry()
