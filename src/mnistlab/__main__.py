"""`python -m mnistlab` runs the command-line interface."""

import sys

from mnistlab.cli import main

sys.exit(main())
