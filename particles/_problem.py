"""What is simulated: the initial tokens, the scheme, the attention, the time span,
checked and broadcast once (:func:`make_problem`)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._attention import HEAD_REDUCTIONS, Attention
from ._layers import RESIDUALS, LayerLimit
from ._mlp import MLP, AbstractMLP
from ._model import Causal, NoPosition, as_kernel, as_position
from ._norms import Norm, as_norm, ode_limit_exists
from ._transformer import Transformer
from ._validate import (
    as_key,
    check_choice,
    check_finite_array,
    check_float,
    check_int,
    default_dtype,
    precision,
)
from .schemes import AbstractScheme, closes_on_gram, get_scheme


class Problem(eqx.Module):
    """A checked simulation problem: tokens ``x0`` (*batch, n, d) broadcast against
    ``beta`` (inside ``attention``), the ``scheme``, and the span [t0, t1]. Build it
    with :func:`make_problem`; solve it with :func:`particles.integrate`."""

    x0: Float[Array, "*batch n d"]
    scheme: AbstractScheme
    attention: Attention
    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    beta_record: str = eqx.field(static=True)  # beta as the caller gave it (JSON), for the record
    norm: Norm = Norm()
    mlp: AbstractMLP | None = None
    layers: int | None = eqx.field(static=True, default=None)  # None: the ODE (continuous depth)
    residual: str = eqx.field(static=True, default="constant")
    noise: float = eqx.field(static=True, default=0.0)  # D of MODEL.md §10 (0: the ODE)
    key: jax.Array | None = None  # the Brownian paths' key (with noise > 0)
    mlp_norm: Norm | None = None  # the MLP sublayer's norm where it differs from the attention's

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.x0.shape[:-2])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.x0.dtype)

    @property
    def keeps_span(self) -> bool:
        """Whether every token stays in the span of the initial tokens: the scheme
        declares it (``keeps_span``: dθ_i/dt ∝ P_{θ_i} A_i) and the attention vectors
        A_i = Σ_j w_ij θ_j are combinations of the tokens (V = I) with weights that
        depend on inner products only (Q = K = I)."""
        att = self.attention
        return bool(
            att.identity_weights
            and att.position.inner_products_only
            and self.scheme.keeps_span
            and self.noise == 0
        )

    @property
    def closes_on_gram(self) -> bool:
        """Whether the flow closes on the Gram matrix and radii (MODEL.md §8), so that
        :func:`particles.solve_gram` solves it exactly: continuous depth, the projection norm,
        no MLP, no noise, Q = K = V = I and a speed scheme with the
        generic velocity."""
        return bool(
            self.keeps_span and self.layers is None and self.mlp is None and self.norm.kind == "projection"
            and closes_on_gram(self.scheme) and self.attention.position.gram_flow
        )  # fmt: skip

    def jump_times(self) -> list[float]:
        """Times in (t0, t1) where the vector field is discontinuous (weights per layer,
        a scheme's switch), sorted."""
        own = [t for t in self.scheme.jump_times() if self.t0 < t < self.t1]
        return sorted(set(self.attention.layer_jumps(self.t0, self.t1)) | set(own))

    def with_start(self, x0, beta, positions=None) -> "Problem":
        """The same problem from tokens ``x0`` at inverse temperature ``beta`` (e.g. one
        trajectory of a batch, with its ``positions`` where they differ across the batch)."""
        return eqx.tree_at(lambda p: p.x0, self, x0).with_attention(
            self.attention.with_batch(beta, positions)
        )

    def with_attention(self, attention: Attention) -> "Problem":
        return eqx.tree_at(lambda p: p.attention, self, attention)

    def describe(self) -> dict:
        """The problem as plain values (for a Trajectory's ``config``)."""
        att = self.attention
        n, d = self.x0.shape[-2:]
        return {
            "scheme": self.scheme.name,
            "scheme_params": self.scheme.params(),
            "n": int(n),
            "d": int(d),
            "beta": json.loads(self.beta_record),
            "t0": self.t0,
            "t1": self.t1,
            "attention": att.kind,
            "causal": att.causal,
            **(
                {}
                if type(att.position) in (NoPosition, Causal)  # the "causal" entry says it
                else {"position": att.position.label}
            ),
            "heads": att.heads,
            "weights": "identity" if att.identity_weights else f"custom, {att.num_layers} layer(s)",
            **self._layer_record(),
            "dtype": self.dtype.name,
        }

    def _layer_record(self) -> dict:
        """The depth, norm and MLP entries of :meth:`describe` (none for today's default ODE)."""
        record = {} if self.layers is None else {"layers": self.layers, "residual": self.residual}
        if self.noise:
            record["noise"] = self.noise
        if self.norm.kind != "projection":
            record.update(norm=self.norm.kind, ln_eps=self.norm.eps)
        if self.mlp is not None:
            record.update(mlp_width=self.mlp.width, activation=self.mlp.activation)
        return record


def _weights(name, w, d, rectangular=False):
    """Q, K (``rectangular``: (…, d_k, d), d_k ≤ d, a head's query/key dimension) or V
    (…, d, d), as (layers, heads, ·, d)."""
    if w is None:
        return None
    w = check_finite_array(name, w)
    rows_ok = (1 <= w.shape[-2] <= d) if rectangular and w.ndim >= 2 else w.shape[-2:] == (d, d)
    if w.ndim < 2 or w.ndim > 4 or w.shape[-1] != d or not rows_ok:
        square = (
            "(d_k, d), (heads, d_k, d) or (layers, heads, d_k, d) with d_k <= d"
            if rectangular
            else ("(d, d), (heads, d, d) or (layers, heads, d, d)")
        )
        raise ValueError(f"{name} has shape {w.shape}; expected {square} with d={d}")
    return jnp.asarray(w.reshape((1,) * (4 - w.ndim) + w.shape))


def _query_key(Q, K, d):
    """Q and K checked: (…, d_k, d) each, the same d_k (the identity stands for d_k = d)."""
    Q, K = _weights("Q", Q, d, rectangular=True), _weights("K", K, d, rectangular=True)
    d_q = d if Q is None else Q.shape[-2]
    d_k = d if K is None else K.shape[-2]
    if d_q != d_k:
        raise ValueError(
            f"Q and K give queries and keys of different sizes ({d_q} and {d_k}); give both with the same d_k"
        )
    return Q, K


def _biases(name, b, size, heads=True):
    """A bias of a trained layer of ``size`` entries (per head: as (layers, heads, size);
    else as (layers, size))."""
    if b is None:
        return None
    b = check_finite_array(name, b)
    rank = 3 if heads else 2
    if b.ndim < 1 or b.ndim > rank or b.shape[-1] != size:
        axes = "(layers, heads, size)" if heads else "(layers, size)"
        raise ValueError(f"{name} has shape {b.shape}; expected {axes} or fewer leading axes, size {size}")
    return jnp.asarray(b.reshape((1,) * (rank - b.ndim) + b.shape))


def _affine(O, q_bias, k_bias, out_bias, Q, K, V, d):
    """A trained layer's output factor O (…, d, d_v) and biases, checked against Q and V."""
    if O is not None:
        O = check_finite_array("O", O)
        if V is None or O.ndim < 2 or O.shape[-2] != d or O.shape[-1] != V.shape[-2]:
            raise ValueError(
                f"O has shape {O.shape}; expected (layers, heads, d, d_v) = (…, {d}, d_v) with V (…, d_v, d)"
            )
        O = jnp.asarray(O.reshape((1,) * (4 - O.ndim) + O.shape))
    d_k = d if Q is None else Q.shape[-2]
    affine = dict(
        O=O, q_bias=_biases("q_bias", q_bias, d_k), k_bias=_biases("k_bias", k_bias, d_k),
        out_bias=_biases("out_bias", out_bias, d, heads=False),
    )  # fmt: skip
    # the heads broadcast (one array serves every head): each has 1 or H heads
    per_head = {"Q": Q, "K": K, "V": V, **{k: affine[k] for k in ("O", "q_bias", "k_bias")}}
    num_heads = max((w.shape[1] for w in per_head.values() if w is not None), default=1)
    for name, w in per_head.items():
        if w is not None and w.shape[1] not in (1, num_heads):
            raise ValueError(
                f"{name} has {w.shape[1]} heads where the attention has {num_heads}; give 1 or {num_heads}"
            )
    return affine


def _positions(positions, n, batch, dtype):
    """The tokens' positions p_i, finite: shape (n,), the same for every trajectory, or
    (…, n) broadcast against the batch shape to (*batch, n) (None: 0..n−1, kept as None)."""
    if positions is None:
        return None
    p = check_finite_array("positions", positions)
    try:
        ok = p.ndim >= 1 and p.shape[-1] == n and np.broadcast_shapes(p.shape[:-1], batch) == batch
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"positions has shape {p.shape}; expected ({n},), one per token, or (..., {n}) broadcasting "
            f"against the batch shape {batch}"
        )
    return jnp.asarray(p.astype(dtype) if p.ndim == 1 else np.broadcast_to(p.astype(dtype), (*batch, n)))


def check_logit_range(att, beta, x, scheme, dtype):
    """Refuse a beta whose logits β⟨Q θ_i, K θ_j⟩ overflow the dtype: e^{logit} for USA
    (float32 overflows at 88.7, float64 at 709.8), the logit itself for softmax (which
    subtracts the row max, so any finite logit is safe). The bound |β|·max‖Q‖‖K‖ is
    exact for sphere-attending schemes; schemes that attend to the tokens x = rθ get
    max|x_0|² in it, a bound at t0 only (a later blow-up ends as a failed trajectory)."""
    limit = att.kernel.logit_limit(dtype)
    tokens = float(np.max(np.sum(np.asarray(x, float) ** 2, axis=-1))) if scheme.attends_to_tokens else 1.0
    beta_max = float(np.max(np.abs(beta), initial=0.0))

    def logit_bound(order):
        if att.identity_weights:
            return beta_max * tokens
        eye = np.eye(x.shape[-1])
        q, k = (
            np.linalg.norm(eye if w is None else np.asarray(w, float), ord=order, axis=(-2, -1))
            for w in (att.Q, att.K)
        )
        return beta_max * float(np.max(q * k)) * tokens

    # the Frobenius norm bounds the spectral one and costs no SVD (256 layers of 128 x 128
    # weights took seconds); the spectral bound decides only when the cheap one is too big
    if logit_bound("fro") <= limit:
        return
    bound = logit_bound(2)
    if bound > limit:
        what = att.kernel.overflow(bound)
        raise ValueError(
            f"attention={att.kind!r} with |beta|={np.max(np.abs(beta)):g}: {what} {np.dtype(dtype).name} "
            f"(largest logit allowed {limit:.4g}); lower |beta|, use float64, or softmax attention"
        )


def check_dtype(dtype, x=None) -> np.dtype:
    """float32 or float64; ``None``: that of ``x`` if it is a float array, else JAX's default."""
    if dtype is None:
        dtype = x.dtype if x is not None and np.issubdtype(x.dtype, np.floating) else default_dtype()
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} must be float32 or float64")
    return dtype


def check_tokens(x0) -> np.ndarray:
    """x0 as a numpy array of shape (..., n, d), finite, d ≥ 2, no zero-norm token."""
    x0 = np.asarray(x0)
    if x0.ndim < 2:
        raise ValueError(f"x0 has shape {x0.shape}; expected (..., n, d)")
    check_finite_array("x0", x0)
    check_int("n", x0.shape[-2], minimum=1)
    check_int("d", x0.shape[-1], minimum=2)
    if np.any(np.linalg.norm(x0, axis=-1) == 0):
        raise ValueError("x0 contains a zero-norm token; every token needs a direction")
    return x0


def make_problem(
    x0,
    scheme,
    *,
    beta=None,
    t1=None,
    t0=0.0,
    attention="softmax",
    Q=None,
    K=None,
    V=None,
    causal=False,
    position=None,
    positions=None,
    heads="sum",
    block_size=None,
    dtype=None,
    layers=None,
    norm=None,
    gamma=None,
    bias=None,
    ln_eps=1e-5,
    mlp=None,
    activation="gelu",
    residual="constant",
    noise=0.0,
    key=None,
    O=None,
    q_bias=None,
    k_bias=None,
    out_bias=None,
    mlp_norm=None,
    **scheme_params,
) -> Problem:
    """Check every argument and build the :class:`Problem` (see :func:`particles.simulate`
    for their meaning). Errors are one-line ``ValueError`` messages naming the argument.
    ``scheme`` may be a :class:`particles.Transformer`: it supplies the scheme, β, the
    depth (t1 = t0 + layers, unit steps), weights, biases, position, norms and MLP."""
    if isinstance(scheme, Transformer):
        given = dict(Q=Q, K=K, V=V, O=O, q_bias=q_bias, k_bias=k_bias, out_bias=out_bias, norm=norm, gamma=gamma,
                     bias=bias, mlp=mlp, mlp_norm=mlp_norm, position=position, causal=causal or None,
                     attention=None if attention == "softmax" else attention)  # fmt: skip
        return make_problem(
            x0, **scheme.problem_arguments(layers, given, beta=beta, t0=t0, t1=t1), positions=positions,
            heads=heads, block_size=block_size, dtype=dtype, residual=residual, noise=noise, key=key, **scheme_params,
        )  # fmt: skip
    if beta is None or t1 is None:
        raise ValueError(
            f"{'beta' if beta is None else 't1'} is required (only a Transformer supplies its own)"
        )
    scheme = get_scheme(scheme, **scheme_params)
    if layers is not None:
        layers = check_int("layers", layers, minimum=1)
    attention = as_kernel(attention)
    check_choice("heads", heads, HEAD_REDUCTIONS)
    if block_size is not None:
        block_size = check_int("block_size", block_size, minimum=1)
    t0, t1 = check_float("t0", t0), check_float("t1", t1)
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")
    x0 = check_tokens(x0)
    d = x0.shape[-1]
    beta_np = check_finite_array("beta", beta)
    try:
        batch = np.broadcast_shapes(x0.shape[:-2], beta_np.shape)
    except ValueError:
        raise ValueError(
            f"beta of shape {beta_np.shape} does not broadcast against the batch shape {x0.shape[:-2]}"
        ) from None
    dtype = check_dtype(dtype, x0)
    with precision(dtype):
        Q, K = _query_key(Q, K, d)
        V = _weights("V", V, d, rectangular=O is not None)
        att = Attention(
            beta=jnp.asarray(np.broadcast_to(np.asarray(beta_np, dtype), batch)),
            Q=Q,
            K=K,
            V=V,
            kind=attention,
            heads=heads,
            block_size=block_size,
            position=as_position(position, bool(causal)),
            positions=_positions(positions, x0.shape[-2], batch, dtype),
            **_affine(O, q_bias, k_bias, out_bias, Q, K, V, d),
        )
        att.position.check(x0.shape[-2], d if att.Q is None else att.Q.shape[-2])
        check_logit_range(att, beta_np, x0, scheme, dtype)
        x = jnp.asarray(np.broadcast_to(x0.astype(dtype), (*batch, *x0.shape[-2:])))
        depth = _depth(scheme, d, t0, t1, layers, norm, gamma, bias, ln_eps, mlp, activation, residual, dtype,
                       mlp_norm)  # fmt: skip
        norm, mlp, mlp_norm = depth["norm"], depth["mlp"], depth["mlp_norm"]
        if depth["limit"] is not None:  # the ODE of the layer map with this norm / MLP
            scheme = depth["limit"]
            if scheme.scheme.post_normalized(t0):  # the limit starts where the norm's iterates land
                x = norm.at_layer(0).fixed_point(x)
    record = json.dumps(beta_np.tolist())
    noise, key = _noise(noise, key, layers, batch)
    return Problem(x, scheme, att, t0, t1, record, norm, mlp, layers, residual, noise, key, mlp_norm)


def _noise(noise, key, layers, batch):
    """The noise level D ≥ 0 and, for D > 0, the key of the Brownian paths: one key for
    the whole batch, or one per trajectory (keys or integer seeds of the batch shape)."""
    noise = check_float("noise", noise, nonnegative=True)
    if noise == 0:
        return 0.0, None
    if layers is not None:
        raise ValueError("noise applies to the ODE mode (continuous depth), not to layers=L")
    if key is None:
        raise ValueError("noise > 0 needs key= (an int seed or a jax.random key) for the Brownian paths")
    return noise, brownian_keys(key, tuple(batch))


def brownian_keys(key, batch: tuple[int, ...]) -> jax.Array:
    """``key`` as one ``jax.random`` key (from a key or an integer seed), or as an array
    of keys of shape ``batch``, one per trajectory (from such an array, or from integer
    seeds s of that shape, each giving ``jax.random.key(s)``)."""
    legacy = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,)  # a raw key
    if isinstance(key, int | np.integer) or (isinstance(key, jax.Array) and key.ndim == 0) or legacy:
        return as_key(key)
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        keys = key
    else:
        seeds = np.asarray(key)
        if not np.issubdtype(seeds.dtype, np.integer):
            raise ValueError(
                f"key={key!r} must be a jax.random key, an integer seed, or one of either per trajectory"
            )
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds.ravel())).reshape(seeds.shape)
    if keys.shape != batch:
        raise ValueError(f"key has shape {keys.shape}; give one key, or one per trajectory (shape {batch})")
    return keys


def _mlp_norm(mlp_norm, mlp, d, layers, scheme, t0, t1):
    """The MLP sublayer's own :class:`Norm` (a trained model's second norm per layer), with
    an MLP; None: the attention's norm serves both sublayers. In the ODE mode only for
    pre-type layers (a post-type layer ending with two different norms has no limit)."""
    if mlp_norm is None:
        return None
    if not isinstance(mlp_norm, Norm):
        raise ValueError(f"mlp_norm={mlp_norm!r} must be a Norm (the MLP sublayer's own norm)")
    if mlp is None:
        raise ValueError("mlp_norm is the MLP sublayer's norm: give mlp= too")
    if layers is None and scheme.normalizes_layer_output(t0, t1):
        raise ValueError(
            f"scheme {scheme.name!r} ends each sublayer with its own norm (norm, mlp_norm): no ODE limit; "
            "run discrete layers (layers=L) instead"
        )
    return mlp_norm.validate(d, layers)


def _depth(
    scheme, d, t0, t1, layers, norm, gamma, bias, ln_eps, mlp, activation, residual, dtype, mlp_norm=None
):
    """Check the real-layer arguments (MODEL.md §7): the Norm, the MLP, the residual
    scaling, and in the ODE mode (``layers=None``) whether the limit exists. Returns the
    norm, the MLP and, where the ODE of a layer map replaces the scheme's flow, its
    :class:`particles._layers.LayerLimit`."""
    check_choice("residual", residual, RESIDUALS)
    if layers is None and residual != "constant":
        raise ValueError(f"residual={residual!r} scales the steps of discrete layers; give layers=L")
    if isinstance(norm, Norm):
        if gamma is not None or bias is not None:
            raise ValueError("gamma and bias were given with a Norm instance; set them on the Norm")
    else:
        cast = lambda w: None if w is None else jnp.asarray(check_finite_array("gamma/bias", w), dtype)
        kind = "projection" if norm is None else norm
        check_choice("norm", kind, ("projection", "layernorm", "rmsnorm"))
        norm = Norm(
            kind, gamma=cast(gamma), bias=cast(bias), eps=check_float("ln_eps", ln_eps, positive=True)
        )
    norm = as_norm(norm).validate(d, layers)
    if mlp is not None and not isinstance(mlp, AbstractMLP):
        if len(mlp) != 4:
            raise ValueError("mlp must be an MLP or a tuple (W1, b1, W2, b2)")
        W1, b1, W2, b2 = (jnp.asarray(check_finite_array("mlp", w), dtype) for w in mlp)
        mlp = MLP(W1, W2, b1, b2, activation=activation)
    if mlp is not None:
        mlp = mlp.validate(d, layers)
    mlp_norm = _mlp_norm(mlp_norm, mlp, d, layers, scheme, t0, t1)
    limit = None
    if layers is None and (norm.kind != "projection" or mlp is not None):
        exists, reason = ode_limit_exists(scheme, norm, t0=t0, t1=t1)
        if not exists:
            raise ValueError(reason)
        limit = LayerLimit(scheme, norm, mlp, mlp_norm)
    elif layers is not None:
        scheme.check_layer_norm(norm)
    return {"norm": norm, "mlp": mlp, "mlp_norm": mlp_norm, "limit": limit}
