"""Reproduce the 'collapse_rates' figure (MODEL.md §5); see particles/figures/collapse_rates.py.

Usage: python experiments/collapse_rates.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "collapse_rates", *sys.argv[1:]]))
