r"""Normalizations of real transformer layers (MODEL.md §7), and when layers built with
them have a small-step ODE limit.

For tokens y of shape (..., n, d), normalised one token at a time:

    projection  N(y)  = y / |y|
    layernorm   LN(y) = γ ⊙ (y − μ(y) 1) / √(σ²(y) + ε) + b
    rmsnorm     RN(y) = γ ⊙ y / √(mean(y²) + ε)

μ, σ² are the mean and the biased variance (as PyTorch) over the d coordinates, γ and b
have shape (d,) (defaults 1 and 0), ε = 1e-5 (PyTorch's default). RMSNorm has no bias
(as PyTorch's ``nn.RMSNorm``), the projection neither gain nor bias.

The ODE limit of a layer stack
==============================

A layer is residual sublayers f (attention A, then the MLP F), each placed by the
scheme (:mod:`particles.schemes`); L layers of step h = T/L. Two kinds of placement:

*Pre-type* (pre, peri, spannorm, none; mix after τ): x ← x + h g(x) with g = f∘N,
N∘f∘N, N(x + f(N x)), f. Each layer is one explicit Euler step of dx/dt = g(x), whatever
N is (γ, b included), so the layers converge to that ODE at first order, e.g. Pre-LN
dx/dt = A(LN x) + F(LN x) (the two sublayers differ from one step of the sum by O(h²)).

*Post-type* (post, sqrt, ngpt; mix up to τ): x ← N(x + h f(x)). As h → 0 the layer tends
to x ← N(x), an O(1) move unless x is a fixed point of N; a limit exists only when the
iterates of N converge to a manifold M on which they then stay, and then the limit flow
is the tangential part of f on M. Write P = I − 11ᵀ/d (the centring) and z = x − b₀1.

- Projection: M = S^{d−1}, N∘N = N, N(x + hf) = x + h P_x f + O(h²): dx/dt = P_x f,
  P_x v = v − ⟨x, v⟩ x (the flow of MODEL.md §2; ngpt's α P_x N(f), sqrt's
  P_x f/√(t+1) alike). nGPT is defined with the projection only.
- LayerNorm with γ = c1 (c > 0, c² > ε), b = b₀1 (the default γ = 1, b = 0 included). The
  centring removes b₀1, and LN is scale-invariant up to ε, so LN(y) = b₀1 + c P y/s(y)
  with s² = |Py|²/d + ε. The variance v = |z|²/d of a centred output obeys
  v ← c² v/(v + ε): its fixed point v* = c² − ε attracts at rate ε/c² per application.
  So M = {x : μ(x) = b₀, |x − b₀1|² = d(c² − ε)}, the centred sphere of radius
  √(d(c² − ε)) (≈ √d for the defaults, exactly √(d(1 − ε))) around b₀1. At x ∈ M
  (s = c) the derivative of LN is
      D LN(x) u = P u − z⟨z, P u⟩/(d c²) = P^c_x u + (ε/c²) ẑ⟨ẑ, P u⟩,
  where P^c_x u = P u − ⟨ẑ, P u⟩ ẑ (ẑ = z/|z|) is the projection onto the tangent space
  of M: remove the mean component, then the radial one. One layer moves x by
  h P^c_x f + O(h²) along M and by h(ε/c²)⟨ẑ, P f⟩ off it; the next layer contracts
  that offset by ε/c², so it stays O(εh) and vanishes as h → 0. The limit is
      dx/dt = P^c_x f(x)   on M,
  started from the point the first layer lands near, x(0⁺) = b₀1 + √(d(c² − ε)) P x₀/|P x₀|
  (:meth:`Norm.fixed_point`), not x₀ itself: the first layer is an O(1) jump.
- RMSNorm with γ = c1 (c > 0): the same without the centring; M the sphere of radius
  √(d(c² − ε)), dx/dt = P_x f(x) there.
- Any other γ, b: no limit. LN(x + hf) → LN(x) ≠ x, an O(1) move per layer: with b = 0
  the iterates of LN are power iterations of P diag(γ) P and drive every token to
  ± its top eigenvector within a number of layers set by its spectral gap (not by h),
  whatever the attention does; as h → 0 with
  T fixed the L = T/h layers are dominated by that map (a nonconstant b moves the
  fixed points but acts alike). The same for RMSNorm with diag(γ).

:func:`ode_limit_exists` applies these rules to a scheme and a norm; checked
numerically in tests/test_layers.py (one layer and a stack of layers against the ODE).
"""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._validate import check_choice, check_float
from .sphere import normalize, tangent_projection

NORM_KINDS = ("projection", "layernorm", "rmsnorm")


def projection(y: Float[Array, "*b n d"]) -> Float[Array, "*b n d"]:
    """N(y) = y/|y| per token."""
    return normalize(y)


def _affine(out, gamma, bias):
    if gamma is not None:
        out = out * jnp.asarray(gamma).astype(out.dtype)
    if bias is not None:
        out = out + jnp.asarray(bias).astype(out.dtype)
    return out


def layernorm(y: Float[Array, "*b n d"], gamma=None, bias=None, eps: float = 1e-5) -> Float[Array, "*b n d"]:
    """LN(y) = γ ⊙ (y − μ(y)1)/√(σ²(y) + ε) + b per token, μ and the biased σ² over
    the d coordinates (as PyTorch ``nn.LayerNorm``)."""
    centred = y - jnp.mean(y, axis=-1, keepdims=True)
    var = jnp.mean(centred * centred, axis=-1, keepdims=True)
    return _affine(centred * jax.lax.rsqrt(var + eps), gamma, bias)


def rmsnorm(y: Float[Array, "*b n d"], gamma=None, eps: float = 1e-5) -> Float[Array, "*b n d"]:
    """RN(y) = γ ⊙ y/√(mean(y²) + ε) per token (as PyTorch ``nn.RMSNorm``)."""
    return _affine(y * jax.lax.rsqrt(jnp.mean(y * y, axis=-1, keepdims=True) + eps), gamma, None)


def _is_constant(a, value=None) -> float | None:
    """The common value of a concrete array whose entries are all equal (all equal to
    ``value`` if given), else None."""
    a = np.asarray(a, dtype=np.float64).ravel()
    c = float(a[0])
    if not np.all(a == c) or (value is not None and c != value):
        return None
    return c


class Norm(eqx.Module):
    """A normalization: ``kind`` one of :data:`NORM_KINDS`, gain ``gamma`` and ``bias``
    of shape (d,) or (layers, d) (``None``: 1 and 0), ``eps`` the ε of layernorm and
    rmsnorm.

    A Norm with per-layer parameters is applied one layer at a time: ``norm.at_layer(l)``
    (``l`` may be traced, e.g. a ``lax.scan`` counter) gives the Norm of layer ``l``.
    """

    kind: str = eqx.field(static=True)
    gamma: Float[Array, "*layers d"] | None
    bias: Float[Array, "*layers d"] | None
    eps: float = eqx.field(static=True)

    def __init__(self, kind: str = "projection", *, gamma=None, bias=None, eps: float = 1e-5):
        check_choice("kind", kind, NORM_KINDS)
        self.kind = kind
        self.eps = check_float("eps", eps, positive=True)
        if kind == "projection" and (gamma is not None or bias is not None):
            raise ValueError("gamma and bias apply to layernorm and rmsnorm only; the projection has neither")
        if kind == "rmsnorm" and bias is not None:
            raise ValueError("bias applies to layernorm only; rmsnorm has no bias (as PyTorch nn.RMSNorm)")
        for name, value in (("gamma", gamma), ("bias", bias)):
            if value is not None and jnp.ndim(value) not in (1, 2):
                raise ValueError(f"{name} has shape {jnp.shape(value)}; expected (d,) or (layers, d)")
        if gamma is not None and bias is not None and jnp.shape(gamma)[-1] != jnp.shape(bias)[-1]:
            raise ValueError(
                f"gamma has shape {jnp.shape(gamma)} and bias {jnp.shape(bias)}; their last axes (d) must agree"
            )
        self.gamma = None if gamma is None else jnp.asarray(gamma)
        self.bias = None if bias is None else jnp.asarray(bias)

    @property
    def num_layers(self) -> int | None:
        """The leading axis of per-layer parameters; None if they are shared."""
        layered = [w.shape[0] for w in (self.gamma, self.bias) if w is not None and w.ndim == 2]
        return max(layered) if layered else None

    def validate(self, d: int, layers: int | None = None) -> "Norm":
        """Check the parameters against the token dimension ``d`` and the number of
        layers (``None``: any), raising one-line ``ValueError``; returns ``self``."""
        if self.kind == "layernorm" and d < 2:
            raise ValueError(f"layernorm needs d >= 2 (with d={d} every centred token is 0); use rmsnorm")
        for name, w in (("gamma", self.gamma), ("bias", self.bias)):
            if w is None:
                continue
            ok = w.shape == (d,) or (
                w.ndim == 2 and w.shape[1] == d and w.shape[0] in (1, layers or w.shape[0])
            )
            if not ok:
                want = f"(d,) or (layers, d) = ({d},) or ({layers if layers else 'layers'}, {d})"
                raise ValueError(f"{name} has shape {w.shape}; expected {want}")
        if self.gamma is not None and self.bias is not None and self.gamma.ndim == self.bias.ndim == 2:
            if self.gamma.shape[0] != self.bias.shape[0]:
                raise ValueError(
                    f"gamma has {self.gamma.shape[0]} layers and bias {self.bias.shape[0]}; they must agree"
                )
        return self

    def at_layer(self, layer) -> "Norm":
        """The Norm of layer ``layer`` (an int or a traced integer): per-layer parameters
        sliced, shared ones kept."""

        def pick(w):
            if w is None or w.ndim == 1:
                return w
            return jax.lax.dynamic_index_in_dim(w, jnp.clip(layer, 0, w.shape[0] - 1), keepdims=False)

        return Norm(self.kind, gamma=pick(self.gamma), bias=pick(self.bias), eps=self.eps)

    def __call__(self, y: Float[Array, "*b n d"]) -> Float[Array, "*b n d"]:
        self.validate(y.shape[-1])
        if (self.num_layers or 1) > 1:
            raise ValueError(
                f"this Norm has {self.num_layers} layers of parameters; apply norm.at_layer(l) to one layer"
            )
        gamma, bias = (None if w is None else w.reshape(-1) for w in (self.gamma, self.bias))
        if self.kind == "projection":
            return projection(y)
        if self.kind == "layernorm":
            return layernorm(y, gamma, bias, self.eps)
        return rmsnorm(y, gamma, self.eps)

    # -- the small-h limit of post-type layers (module docstring) ---------------------

    _RETRACTING: ClassVar[str] = "γ = c·1 with c² > ε and (layernorm) b = b₀·1"

    def retraction(self) -> tuple[float, float] | None:
        """(c, b₀) when the iterates of this norm converge to a manifold (γ = c1 with
        c² > ε, b = b₀1; the projection: (1, 0)), else None. Needs concrete parameters."""
        if self.kind == "projection":
            return 1.0, 0.0
        c = 1.0 if self.gamma is None else _is_constant(self.gamma)
        b0 = 0.0 if self.bias is None else _is_constant(self.bias)
        if c is None or b0 is None or c <= 0 or c * c <= self.eps:
            return None
        return c, b0

    def _gain_shift(self, dtype):
        """(c, b₀) as arrays: the means of γ and b (they are c1 and b₀1 where the
        limit exists; traceable, unlike :meth:`retraction`)."""
        c = jnp.ones((), dtype) if self.gamma is None else jnp.mean(self.gamma).astype(dtype)
        b0 = jnp.zeros((), dtype) if self.bias is None else jnp.mean(self.bias).astype(dtype)
        return c, b0

    def fixed_point(self, x: Float[Array, "*b n d"]) -> Float[Array, "*b n d"]:
        """The limit of N applied repeatedly to x: where the small-h limit of a post-type
        stack starts from x₀. Projection x/|x|; layernorm b₀1 + √(d(c² − ε)) Px/|Px|;
        rmsnorm √(d(c² − ε)) x/|x|. Meaningful where :meth:`retraction` is not None
        (γ = c1, b = b₀1; c and b₀ are taken as the means of γ and b, so this traces)."""
        if self.kind == "projection":
            return projection(x)
        c, b0 = self._gain_shift(x.dtype)
        radius = jnp.sqrt(x.shape[-1] * (c * c - self.eps))
        if self.kind == "layernorm":
            return b0 + radius * projection(x - jnp.mean(x, axis=-1, keepdims=True))
        return radius * projection(x)

    def tangent(self, x: Float[Array, "*b n d"], v: Float[Array, "*b n d"]) -> Float[Array, "*b n d"]:
        """The projection of v onto the tangent space at x of the manifold the norm's
        iterates converge to: the velocity of the small-h limit of x ← N(x + h v).
        Projection and rmsnorm P_x v; layernorm P^c_x v = Pv − ⟨ẑ, Pv⟩ẑ, ẑ = N(x − b₀1)
        (b₀ the mean of b, as in :meth:`fixed_point`; traceable)."""
        if self.kind == "layernorm":
            _, b0 = self._gain_shift(x.dtype)
            v = v - jnp.mean(v, axis=-1, keepdims=True)
            x = x - b0
        return tangent_projection(projection(x), v)


def as_norm(norm) -> Norm:
    """A Norm from a Norm, a kind name, or None (the projection)."""
    if norm is None:
        return Norm()
    if isinstance(norm, str):
        return Norm(norm)
    if not isinstance(norm, Norm):
        raise ValueError(f"norm={norm!r} must be a Norm, one of {', '.join(NORM_KINDS)}, or None")
    return norm


def ode_limit_exists(scheme, norm: "Norm | str | None" = None, *, t0: float = 0.0, t1: float = math.inf):
    """Whether the layers of ``scheme`` with ``norm`` on [t0, t1) converge to an ODE as
    the step h → 0 (module docstring): ``(True, "")`` or ``(False, reason)``, the reason
    a one-line message for an integrator to raise (it suggests ``layers=``).

    Pre-type layers always have a limit. Post-type ones (where
    ``scheme.normalizes_layer_output(t0, t1)``) need a norm whose iterates converge to a
    manifold: the projection, or layernorm/rmsnorm with γ = c1 (c² > ε), b = b₀1.
    ``norm``'s parameters must be concrete (call it outside jit)."""
    norm = as_norm(norm)
    try:
        scheme.check_layer_norm(norm)
    except ValueError as e:
        return False, str(e)
    if not scheme.normalizes_layer_output(t0, t1) or norm.retraction() is not None:
        return True, ""
    return False, (
        f"scheme {scheme.name!r} renormalises each layer's output with {norm.kind} whose gamma, bias "
        f"are not {Norm._RETRACTING}: N(x + hA) -> N(x) != x, an O(1) move per layer, so there is "
        "no ODE limit; run discrete layers (layers=L) instead"
    )
