"""`python -m nstkit` is the same as the `nstkit` command."""

import sys

from .ui.cli import main

sys.exit(main())
