"""Figure helpers shared by the demo and the experiments. matplotlib is imported
only when a function here is called, never when ``particles`` is imported."""

# One colour per scheme, the same in every figure.
SCHEME_COLORS = {
    "post": "#1f77b4",
    "pre": "#d62728",
    "peri": "#2ca02c",
    "mix": "#ff7f0e",
    "ngpt": "#9467bd",
    "sqrt": "#8c564b",
    "none": "#7f7f7f",
    "spannorm": "#e377c2",
}


def scheme_color(name: str) -> str:
    return SCHEME_COLORS.get(name, "#17becf")


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> None:
    """Save a figure atomically (temporary file, then rename)."""
    import os

    from ._io import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
