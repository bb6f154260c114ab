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
    "lost_in_the_middle",
    "positions",
    "meanfield",
)
SIZES = ("tiny", "quick", "full")


def is_published(out_dir) -> bool:
    """Whether ``out_dir`` is the ``figures/`` folder of a checkout of this package (the
    committed quick-size PNGs and their data), which a ``tiny`` run must never overwrite."""
    import os

    folder = os.path.realpath(out_dir)
    checkout = os.path.dirname(folder)
    return os.path.basename(folder) == "figures" and os.path.isfile(
        os.path.join(checkout, "particles", "figures", "__init__.py")
    )


def run(name: str, out_dir: str = "figures", size: str = "quick") -> list[str]:
    """Make figure ``name`` at resolution ``size``; return the paths written. A ``tiny``
    run is refused where it would overwrite the published figures (:func:`is_published`)."""
    from .._validate import check_choice

    check_choice("figure", name, FIGURES)
    check_choice("size", size, SIZES)
    if size == "tiny" and is_published(out_dir):
        raise ValueError(
            f"out_dir={out_dir!r} holds the published figures: a tiny (smoke) run would overwrite "
            "them; choose another folder"
        )
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"figure {name!r} is not implemented yet") from None
    return module.run(out_dir, size)
