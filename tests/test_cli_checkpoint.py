"""`particles simulate --checkpoint DIR --tokens IDS`: a trained model's layers from the
command line, its per-layer table checked against the numpy reference forward pass."""

import re

import numpy as np
import pytest
from _hf_reference import numpy_forward, write_tiny_checkpoint

import particles
from particles.cli import main


def mean_cosine(x):
    """(1/(n(n−1))) Σ_{i≠j} ⟨x_i/|x_i|, x_j/|x_j|⟩, written out."""
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    n = u.shape[-2]
    return (np.einsum("...id,...jd->...", u, u) - n) / (n * (n - 1))


def test_simulate_checkpoint_prints_each_layer_and_writes_the_trajectory(tmp_path, capsys):
    """The table's mean cosine and mean |x| per layer are the reference's; --out writes them."""
    folder = tmp_path / "gpt2"
    write_tiny_checkpoint("gpt2", folder, seed=3)
    ids = np.array([5, 1, 8, 2, 9])
    hidden = np.asarray(numpy_forward(folder, ids)["hidden"])
    out = tmp_path / "run.nc"
    argv = ["simulate", "--checkpoint", str(folder), "--tokens", "5,1,8,2,9", "--x64", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("Transformer(gpt2: pre, L=2")
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s+\d+\s", line)]
    table = np.array([[float(v) for v in row] for row in rows])
    np.testing.assert_array_equal(table[:, 0], np.arange(len(hidden)))
    np.testing.assert_allclose(table[:, 1], mean_cosine(hidden), atol=1e-6)
    np.testing.assert_allclose(table[:, 2], np.linalg.norm(hidden, axis=-1).mean(-1), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(particles.load(out).x), hidden, atol=1e-10)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--tokens", "1,2"], "--checkpoint and --tokens go together"),
        (["--checkpoint", "{folder}", "--tokens", "1,x"], "--tokens '1,x' must be integers"),
        (["--checkpoint", "{folder}", "--tokens", "1,999"], "outside the vocabulary"),
        (
            ["--checkpoint", "{folder}", "--tokens", "1,2", "--layers", "5"],
            "exceeds this gpt2 model's 2 layers",
        ),
        (["--checkpoint", "{folder}/nowhere", "--tokens", "1"], "does not exist"),
    ],
)
def test_simulate_checkpoint_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, match):
    folder = tmp_path / "gpt2"
    write_tiny_checkpoint("gpt2", folder)
    assert main(["simulate", *(a.format(folder=folder) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and match in err
