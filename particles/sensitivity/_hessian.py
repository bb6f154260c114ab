"""The top of the Hessian spectrum of a loss with respect to one sublayer's parameters,
by Lanczos on Hessian-vector products (Lanczos, J. Res. NBS 45, 1950)."""

import dataclasses
from collections.abc import Callable

import diffrax
import jax
import jax.flatten_util
import jax.numpy as jnp
from jaxtyping import ArrayLike, Float

from .._problem import Problem
from .._validate import check_choice, check_int, precision
from ._chain import (
    batched,
    chain,
    check_k,
    check_loss,
    flatten_batch,
    segments,
    setup,
    single_problem,
    unflatten,
)
from ._gradients import MLP_NAMES, layer_axis, weight_tree, with_weights

WRT = ("x0", "Q", "K", "V", "mlp", "gamma", "bias")
HESSIAN_METHODS = ("auto", "lanczos", "dense")

# -- Lanczos ----------------------------------------------------------------------------


def lanczos(matvec: Callable, dim: int, k: int, *, iters: int | None = None, key=None, dtype=None):
    """The k largest eigenvalues (descending) and their vectors (k, dim) of the symmetric
    operator ``matvec`` on R^dim, by ``iters`` Lanczos steps (default min(dim, 2k + 30))
    with full re-orthogonalisation (Gram–Schmidt twice), restarting from a fresh random
    direction orthogonal to the Krylov basis when it breaks down (an invariant
    subspace). With iters = dim the tridiagonal matrix is similar to the operator: every
    eigenvalue, multiplicities included."""
    iters = min(dim, 2 * k + 30) if iters is None else min(check_int("iters", iters, minimum=k), dim)
    key = jax.random.key(0) if key is None else key
    dtype = dtype or jnp.float32
    tiny = jnp.sqrt(jnp.finfo(dtype).eps)

    def orthogonalize(w, V):
        for _ in range(2):
            w = w - V.T @ (V @ w)
        return w

    def body(j, state):
        V, alpha, off = state
        v = V[j]
        w = matvec(v)
        a = jnp.vdot(v, w)
        w = orthogonalize(w, V)
        b = jnp.linalg.norm(w)
        fresh = orthogonalize(jax.random.normal(jax.random.fold_in(key, j + 1), (dim,), dtype), V)
        broke = b <= tiny * jnp.maximum(jnp.abs(a), jnp.linalg.norm(jnp.abs(alpha), jnp.inf) + 1e-30)
        w = jnp.where(broke, fresh / jnp.linalg.norm(fresh), w / jnp.where(b > 0, b, 1))
        V = V.at[j + 1].set(jnp.where(j + 1 < iters, w, 0))
        return V, alpha.at[j].set(a), off.at[j].set(jnp.where(broke, 0, b))

    v0 = jax.random.normal(key, (dim,), dtype)
    V = jnp.zeros((iters + 1, dim), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    init = (V, jnp.zeros(iters, dtype), jnp.zeros(iters, dtype))
    V, alpha, off = jax.lax.fori_loop(0, iters, body, init)
    T = jnp.diag(alpha) + jnp.diag(off[:-1], 1) + jnp.diag(off[:-1], -1)
    theta, S = jnp.linalg.eigh(T)
    order = jnp.argsort(theta)[::-1][:k]
    return theta[order], (V[:iters].T @ S[:, order]).T


# -- Hessian spectra --------------------------------------------------------------------

GROUPS = {"Q": ("Q",), "K": ("K",), "V": ("V",), "mlp": MLP_NAMES, "gamma": ("gamma",), "bias": ("bias",)}


@dataclasses.dataclass(frozen=True)
class HessianSpectrum:
    """The top ``k`` eigenvalues (*batch, k), descending, of the Hessian of the loss with
    respect to ``wrt`` (of ``layer``, or all layers when None), and with
    ``vectors=True`` the eigenvectors (*batch, k, N) in the flattened coordinates
    (``jax.flatten_util.ravel_pytree`` of the parameters: x0 (n, d); the arrays of a
    weight group in the order W1, b1, W2, b2)."""

    eigenvalues: Float[ArrayLike, "*batch k"]
    vectors: Float[ArrayLike, "*batch k N"] | None
    wrt: str
    layer: int | None
    method: str


def _check_parameters(problem: Problem, wrt: str, layer):
    """Check that the problem has the parameters ``wrt`` names (and ``layer``)."""
    if wrt == "x0":
        return None
    weights = weight_tree(problem, GROUPS[wrt], materialize=True)
    if not weights:
        need = "an mlp" if wrt == "mlp" else "norm='layernorm' (or 'rmsnorm' for gamma)"
        raise ValueError(f"wrt={wrt!r}: the problem has no such weights; give {need}")
    if layer is None:
        return
    layered = {name: w for name, w in weights.items() if layer_axis(problem, name, w)}
    if not layered:
        raise ValueError(
            f"layer={layer}: the {wrt} weights are shared by all layers (no layer axis); drop layer"
        )
    size = min(w.shape[0] for w in layered.values())
    layer = check_int("layer", layer, minimum=0)
    if layer >= size:
        raise ValueError(
            f"layer={layer} is out of range: the {wrt} weights have {size} layers (0..{size - 1})"
        )


def _hessian_loss(problem, config, segs, loss, wrt, layer, x0):
    """(the flat parameters, ℓ as a function of them) for one trajectory."""
    adjoint = None if segs.layered else diffrax.DirectAdjoint()  # forward-over-reverse through diffrax
    run = lambda p, x: loss(chain(p, config, segs, x, adjoint=adjoint)[0])
    if wrt == "x0":
        flat, unravel = jax.flatten_util.ravel_pytree(x0)
        return flat, lambda v: run(problem, unravel(v))
    weights = weight_tree(problem, GROUPS[wrt], materialize=True)
    if layer is None:
        flat, unravel = jax.flatten_util.ravel_pytree(weights)
        return flat, lambda v: run(with_weights(problem, unravel(v)), x0)
    part = {name: w[layer] for name, w in weights.items() if layer_axis(problem, name, w)}
    flat, unravel = jax.flatten_util.ravel_pytree(part)

    def f(v):
        new = {name: weights[name].at[layer].set(w) for name, w in unravel(v).items()}
        return run(with_weights(problem, new), x0)

    return flat, f


def _hessian_top(p, x, config, segs, loss, wrt, layer, method, k, steps, seed):
    flat, f = _hessian_loss(p, config, segs, loss, wrt, layer, x)
    if method == "dense":
        vals, vecs = jnp.linalg.eigh(jax.hessian(f)(flat))
        return vals[::-1][:k], vecs[:, ::-1][:, :k].T
    hvp = lambda v: jax.jvp(jax.grad(f), (flat,), (v,))[1]
    return lanczos(hvp, flat.shape[0], k, iters=steps, key=jax.random.key(seed), dtype=flat.dtype)


def hessian_spectrum(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    wrt: str,
    k: int,
    beta,
    t1,
    layer: int | None = None,
    vectors: bool = False,
    method: str = "auto",
    iters: int | None = None,
    seed: int = 0,
    **simulate_options,
) -> HessianSpectrum:
    """The top-k eigenvalues (the k largest, descending) of the Hessian of ℓ =
    ``loss``(x(t1)) with respect to ``wrt``: "x0" (the tokens), "Q", "K", "V", "mlp"
    (W1, b1, W2, b2), "gamma", "bias" (the norm's), all layers or one ``layer``.
    Identity attention weights and a default γ = 1, b = 0 are differentiated at those
    values. "lanczos": ``iters`` Lanczos steps (:func:`lanczos`, default 2k + 30) on
    Hessian-vector products Hv = ∂_ε ∇ℓ(p + εv) (forward-over-reverse: a JVP of the
    gradient; diffrax's DirectAdjoint in the ODE mode), never forming the Hessian;
    "dense": ``jax.hessian`` and its eigendecomposition; "auto": dense when the
    parameters are no more than the Lanczos steps. The curvature blocks of Petrov et al.,
    arXiv 2510.16927 (MODEL.md §9)."""
    problem, config = setup(x0, scheme, beta, t1, simulate_options)
    check_choice("wrt", wrt, WRT)
    check_choice("method", method, HESSIAN_METHODS)
    if wrt == "x0" and layer is not None:
        raise ValueError("layer= selects weights; wrt='x0' has none")
    loss = check_loss(loss, problem)
    _check_parameters(problem, wrt, layer)
    segs = segments(problem, config)
    with precision(problem.dtype):
        x, *batch = (a[0] for a in flatten_batch(problem))
        one = single_problem(problem, x, *batch)
        dim = jax.eval_shape(lambda: _hessian_loss(one, config, segs, loss, wrt, layer, x)[0]).shape[0]
    k = check_k(k, dim)
    steps = min(dim, 2 * k + 30) if iters is None else min(check_int("iters", iters, minimum=k), dim)
    if method == "auto":
        method = "dense" if dim <= steps else "lanczos"

    vals, vecs = batched(problem, _hessian_top, config, segs, loss, wrt, layer, method, k, steps, seed)
    vals = unflatten(problem, vals)
    return HessianSpectrum(vals, unflatten(problem, vecs) if vectors else None, wrt, layer, method)
