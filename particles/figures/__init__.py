"""The published figures of MODEL.md §5, one module each, reproduced from the public API.

Each module has ``run(out_dir, size) -> list of written paths`` where ``size`` is
``"tiny"`` (seconds, for the test suite), ``"quick"`` (minutes on two CPU cores; the
committed PNGs) or ``"full"`` (the published resolution, meant for a GPU). Each writes
``NAME.png`` and the data behind it, ``NAME.nc``, into ``out_dir``.
Run one with ``particles figure NAME`` or ``python experiments/NAME.py``.
"""

import importlib

FIGURES = (
    "phase_diagram",
    "schemes_random_weights",
    "equiangular_rates",
    "metastability",
    "long_context",
    "collapse_rates",
    "layers_vs_ode",
    "noise_transition",
    "stability",
)
SIZES = ("tiny", "quick", "full")


def run(name: str, out_dir: str = "figures", size: str = "quick") -> list[str]:
    """Make figure ``name`` at resolution ``size``; return the paths written."""
    from .._validate import check_choice

    check_choice("figure", name, FIGURES)
    check_choice("size", size, SIZES)
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"figure {name!r} is not implemented yet") from None
    return module.run(out_dir, size)
