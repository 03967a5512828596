"""`python -m stopover`: the same entry point as the console script."""

from stopover.cli import main

raise SystemExit(main())
