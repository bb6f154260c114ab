"""Reproduce the 'metastability' figure (MODEL.md §5); see particles/figures/metastability.py.

Usage: python experiments/metastability.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "metastability", *sys.argv[1:]]))
