"""Reproduce the 'long_context' figure (MODEL.md §5); see particles/figures/long_context.py.

Usage: python experiments/long_context.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "long_context", *sys.argv[1:]]))
