"""Argument checks when a problem is built: a one-line ValueError naming the argument."""

import diffrax
import numpy as np
import pytest

import particles

X0 = np.eye(3, 4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x0=np.ones((0, 4))), "n=0"),
        (dict(x0=np.ones((3, 1))), "d=1"),
        (dict(x0=np.ones(4)), "x0 has shape"),
        (dict(x0=np.array([[1.0, 0], [np.nan, 1]])), "non-finite"),
        (dict(x0=np.array([[1.0, 0], [0, 0]])), "zero-norm"),
        (dict(beta=np.inf), "beta"),
        (dict(x0=np.stack([X0, X0]), beta=np.ones(5)), "broadcast"),
        (dict(scheme="layernorm"), "scheme='layernorm'"),
        (dict(attention="linear"), "attention='linear'"),
        (dict(t1=0.0), "t1=0.0 must be greater"),
        (dict(ts=[0.5, 0.2]), "increasing"),
        (dict(ts=[0.5, 3.0]), r"\[t0, t1\]"),
        (dict(Q=np.eye(3)), "Q has shape"),
        (dict(V=np.ones((2, 5, 4, 4, 4))), "V has shape"),
        (dict(tau=1.0), "has no parameter 'tau'"),
        (dict(rtol=-1.0), "rtol"),
        (dict(solver=diffrax.Euler()), "step_size"),
        (dict(dtype="int32"), "dtype"),
    ],
)
def test_bad_input_is_a_one_line_value_error(kwargs, match):
    args = dict(x0=X0, scheme="post", beta=1.0, t1=1.0) | kwargs
    with pytest.raises(ValueError, match=match) as info:
        particles.simulate(args.pop("x0"), args.pop("scheme"), **args)
    assert "\n" not in str(info.value)


def test_usa_overflow_is_refused_clearly():
    x0 = particles.init.uniform_sphere(1, 4, 3)
    x32 = np.asarray(x0, np.float32)
    for beta, x in ((89.0, x32), (-89.0, x32), (710.0, x0)):
        with pytest.raises(ValueError, match="overflows float") as info:
            particles.simulate(x, "post", beta=beta, t1=1.0, attention="usa")
        assert "\n" not in str(info.value) and "float64" in str(info.value)
    W = 3.0 * np.eye(3)  # ‖Q‖‖K‖ = 9 multiplies the logits
    with pytest.raises(ValueError, match="exp\\(90"):
        particles.simulate(x32, "post", beta=10.0, t1=1.0, attention="usa", Q=W, K=W)
    with pytest.raises(ValueError, match="exp\\(900"):  # "none" attends to x = r θ, |x0|² = 900
        particles.simulate(30 * x0, "none", beta=1.0, t1=1.0, attention="usa")
