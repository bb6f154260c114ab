"""Reproduce the 'layers_vs_ode' figure (MODEL.md §5); see particles/figures/layers_vs_ode.py.

Usage: python experiments/layers_vs_ode.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "layers_vs_ode", *sys.argv[1:]]))
