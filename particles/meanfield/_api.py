"""The closed forms about the uniform state (MODEL.md §12), checked arguments."""

import numpy as np

from .._validate import check_float, check_int
from . import _kernel
from ._start import check_common, check_scheme


def linear_rates(scheme="post", *, beta, noise=0.0, d=2, attention="softmax", kmax=8, t=0.0) -> np.ndarray:
    """λ_k, k = 0..kmax: the growth rate of the degree-k harmonics of a perturbation of
    the uniform state (Funk–Hecke; MODEL.md §12),

        λ_k = k(k+d−2) (μ_k(β)/(β μ_0(β) s) − D)   (softmax),
        λ_k = k(k+d−2) (μ_k(β)/(β s) − D)           (USA),

    μ_k(β) = Γ(d/2)(2/β)^{d/2−1} I_{k+d/2−1}(β) (d = 2: I_k(β)) and s the scheme's speed
    at the uniform state at time ``t`` (post 1, sqrt √(t+1), ngpt |A|/α)."""
    beta, noise, d, usa = check_common(beta=beta, noise=noise, d=d, attention=attention)
    kmax = check_int("kmax", kmax, minimum=1)
    t = check_float("t", t, nonnegative=True)
    obj = check_scheme(scheme, t)
    return _kernel.rates(obj, beta, noise, d, usa, kmax, t)


def threshold(scheme="post", *, beta, d=2, attention="softmax", t=0.0) -> float:
    """The noise above which the uniform state is linearly stable: D_1(β) =
    μ_1/(β μ_0 s) (softmax; I_1(β)/(β I_0(β)) on the circle), D_#(β) = μ_1/(β s) (USA;
    I_1(β)/β); 1/d at β = 0."""
    beta, _, d, usa = check_common(beta=beta, noise=0.0, d=d, attention=attention)
    t = check_float("t", t, nonnegative=True)
    return _kernel.threshold(check_scheme(scheme, t), beta, d, usa, t)


def critical_beta(d=2) -> float:
    """β_*^{(d)} of Mun and Rosenzweig (arXiv 2606.05140): I_{d/2+1}(β_*)/I_{d/2}(β_*)
    = 1/d. Above it USA's noisy transition is discontinuous (d = 2: 2.4469)."""
    return _kernel.critical_beta(check_int("d", d, minimum=2))
