"""`python -m sia_core` entry point."""

import sys

from sia_core.cli import main

sys.exit(main())
