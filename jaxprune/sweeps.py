"""Launcher: `python -m jaxprune.sweeps ...` runs `jaxprune.results.sweep_cli.main`.

The code lives in the results layer (`jaxprune/results/`); this module only
keeps the command line other tools rely on.
"""

import sys

from jaxprune.results.sweep_cli import main

if __name__ == "__main__":
  sys.exit(main())
