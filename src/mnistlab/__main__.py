"""`python -m mnistlab` runs the command-line interface."""

from mnistlab.cli.main import entry

entry()
