"""Reproduce the 'equiangular_rates' figure (MODEL.md §5); see particles/figures/equiangular_rates.py.

Usage: python experiments/equiangular_rates.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "equiangular_rates", *sys.argv[1:]]))
