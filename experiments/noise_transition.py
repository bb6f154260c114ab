"""Reproduce the 'noise_transition' figure (MODEL.md §5); see particles/figures/noise_transition.py.

Usage: python experiments/noise_transition.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "noise_transition", *sys.argv[1:]]))
