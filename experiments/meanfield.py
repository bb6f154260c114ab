"""Reproduce the 'meanfield' figure (MODEL.md §5); see particles/figures/meanfield.py.

Usage: python experiments/meanfield.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "meanfield", *sys.argv[1:]]))
