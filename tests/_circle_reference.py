"""An independent reference for the "lost in the middle" circle model (Duerinckx,
Geshkovski, Rossi, arXiv 2605.09213; MODEL.md §11), in plain numpy, as their public RK4
code does:

    θ̇_j = β Σ_k π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j)

(the published equation, with β in front), integrated with the classical RK4 at a
constant step. Tests import it (``from _circle_reference import rk4_circle``) to check
the package against it; tests/test_retrieval.py checks it on its own.
"""

import numpy as np


def circle_velocity(theta, prior, beta):
    """θ̇ of the circle model at angles ``theta`` (..., n), prior π (n, n), β."""
    diff = theta[..., None, :] - theta[..., :, None]  # diff[..., j, k] = θ_k − θ_j
    return beta * np.sum(prior * np.exp(beta * np.cos(diff)) * np.sin(diff), axis=-1)


def rk4_circle(theta0, prior, beta, t1, steps):
    """The angles at time ``t1`` of the circle model from ``theta0`` (..., n) (any
    leading batch axes), by ``steps`` classical RK4 steps of size t1/steps, in float64."""
    theta = np.array(theta0, dtype=np.float64)
    prior = np.asarray(prior, dtype=np.float64)
    h = t1 / steps
    for _ in range(steps):
        k1 = circle_velocity(theta, prior, beta)
        k2 = circle_velocity(theta + h / 2 * k1, prior, beta)
        k3 = circle_velocity(theta + h / 2 * k2, prior, beta)
        k4 = circle_velocity(theta + h * k3, prior, beta)
        theta = theta + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return theta
