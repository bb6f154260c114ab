"""Reproduce the 'phase_diagram' figure (MODEL.md §5); see particles/figures/phase_diagram.py.

Usage: python experiments/phase_diagram.py [--tiny | --full] [--out-dir figures]
"""

import sys

from particles.cli import main

sys.exit(main(["figure", "phase_diagram", *sys.argv[1:]]))
