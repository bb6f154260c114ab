"""Reproduce the 'schemes_random_weights' figure (MODEL.md §5); see particles/figures/schemes_random_weights.py.

Usage: python experiments/schemes_random_weights.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "schemes_random_weights", *sys.argv[1:]]))
