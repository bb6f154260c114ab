"""The entry point: check the arguments into a :class:`~particles.Problem` and a
:class:`~particles.SolveConfig`, :func:`~particles.integrate`, return a Trajectory."""

import inspect

import diffrax

from ._config import DEFAULTS, SolveConfig
from ._integrate import integrate
from ._problem import make_problem
from ._trajectory import Trajectory
from ._validate import precision
from .schemes import check_keywords


def simulate(
    x0,
    scheme,
    *,
    beta=None,
    t1=None,
    ts=None,
    t0=0.0,
    attention="softmax",
    Q=None,
    K=None,
    V=None,
    causal=False,
    position=None,
    positions=None,
    heads="sum",
    solver=None,
    rtol=DEFAULTS.rtol,
    atol=DEFAULTS.atol,
    step_size=None,
    dtype=None,
    max_steps=DEFAULTS.max_steps,
    progress=False,
    stop_at_collapse=None,
    block_size=None,
    shard=True,
    reduce_span=None,
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
    **scheme_params,
) -> Trajectory:
    """Simulate n tokens under the attention flow of a normalization scheme.

    dθ_i/dt = (1/s_i) P_{θ_i} A_i(Θ), dr_i/dt = the scheme's radial rate (MODEL.md §2;
    Karagodin et al., arXiv 2510.22026), integrated with a diffrax solver (Tsit5 by
    default, with its stages unrolled: :class:`particles.UnrolledTsit5`) under
    adaptive step control; ``step_size`` gives constant steps instead.

    ``x0`` has shape (..., n, d); ``beta`` is a scalar or an array broadcast against
    the leading batch dimensions. A batch is solved as one state in one compiled call;
    the step size is controlled so that every trajectory meets ``rtol``/``atol`` in
    its own RMS norm. ``ts`` are the save times (default: 101 points on [t0, t1]).
    ``Q``, ``K``, ``V``: (d, d), (heads, d, d) or (layers, heads, d, d) arrays (see
    :func:`particles.random_weights`); ``None`` is the identity. Q and K may be
    rectangular, (…, d_k, d) with d_k ≤ d (a head's query/key dimension).

    Positions (MODEL.md §11): ``position`` a position part, or a tuple of them applied
    in order: :class:`particles.Causal` (also ``causal=True``), :class:`particles.ALiBi`,
    :class:`particles.RoPE`, :class:`particles.PositionalPrior`; ``positions`` the
    tokens' positions p_i, shape (n,) (default 0..n−1), or (…, n) broadcast against the
    batch shape (each trajectory its own). RoPE makes the logits depend on
    more than ⟨θ_i, θ_j⟩: the span reduction is then skipped. ``dtype`` defaults to
    that of ``x0``; ``float64`` turns on JAX's 64-bit mode for this call.

    ``stop_at_collapse=δ`` ends the solve (a diffrax event, located by root finding) at
    the first time every trajectory of the batch has collapsed, min_{i≠j} ⟨θ_i, θ_j⟩
    ≥ 1 − δ. The save times after the stop are dropped and the state at the stop is
    appended as the last save, so ``traj.ts[-1] == traj.stats["t_stop"]``;
    ``stats["collapsed"]`` says whether the stop happened (else the run reached t1). A
    batch already collapsed at t0 has no crossing and runs to t1.

    ``block_size``: rows of queries attended at a time (default: chosen from n and the
    batch size, dense for small problems; see :class:`particles.Attention`). ``shard``:
    with several local devices (GPUs, or CPU devices from
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) the leading batch axis is
    split across them; the results are those of one device.

    ``reduce_span``: with n < d, identity Q, K, V and a speed scheme (every built-in
    one), dθ_i/dt is a combination of θ_1..θ_n, so the tokens stay in the span of the
    initial tokens; the solve then runs in n orthonormal coordinates of that span
    (from a QR factorization of Θ(t0)ᵀ) and maps back, for n·n instead of n·d numbers
    per trajectory: the same flow, the error still measured in R^d. With constant
    steps the two agree to rounding; with adaptive steps the error estimate is taken
    component by component in other coordinates, so the step sequences (not the
    tolerance met) differ. ``False`` solves in R^d; unset (``None``), the reduction
    applies where the flow keeps the span; ``True`` with a position part whose logits
    depend on more than ⟨q_i, k_j⟩ (RoPE) is refused.

    Real layers (MODEL.md §7). ``layers=L`` runs L discrete layers (one compiled
    ``lax.scan``) with residual step h = (t1 − t0)/L (``t1=L`` is the textbook
    transformer), each the scheme's layer map (:meth:`AbstractScheme.layer`): attention,
    then the MLP ``mlp=(W1, b1, W2, b2)`` (shapes (L, m, d), (L, m), (L, d, m), (L, d),
    F(y) = W2 σ(W1 y + b1) + b2, ``activation`` "gelu" (exact erf form, PyTorch's
    default) or "relu"; or an :class:`MLP`), each a residual sublayer normalised by
    ``norm`` ("projection" (default), "layernorm", "rmsnorm" with ``gamma``, ``bias`` of
    shape (d,) or (L, d) and ``ln_eps``; or a :class:`Norm`). ``residual`` scales the
    steps: "constant" h, "inv_sqrt_depth" h/√L, "inv_depth" h/L, "inv_sqrt_layer"
    h/√(l+1). x0 enters the first layer as it is; the saves are the inputs of every
    layer and the output (``ts``, if given, must lie on the grid t0 + l h). Q, K, V of
    shape (layers, heads, d, d) give layer l its own weights (the last one past their
    end). Without ``layers``, ``norm``/``mlp`` give the ODE of the layer map where the
    small-step limit exists (pre, peri, spannorm, none; post-type schemes only with
    γ = c·1, b = b₀·1, started on the norm's sphere), and a one-line error otherwise.

    Noise (MODEL.md §10). ``noise=D`` with ``key`` (an int seed or a jax.random key) and
    constant ``step_size``: each direction follows the Stratonovich SDE
    dθ_i = (drift) dt + √(2D) P_θ_i ∘ dW_i, W_i independent Brownian motions in R^d per
    token and trajectory (a diffrax VirtualBrownianTree from ``key``: same key, same
    paths; ``key`` of the batch shape, keys or integer seeds, gives each trajectory the
    paths of its own key, whatever else is in the batch); radii follow their ODE. The
    solver defaults to ``diffrax.Heun()`` (converges to
    the Stratonovich solution; weak order 1). ``noise=0`` is the ODE.

    A trained model. ``scheme`` may be a :class:`particles.Transformer` (from
    :func:`particles.from_checkpoint`), ``x0 = tf.embed(token_ids)``: it supplies the
    scheme, β = 1/√d_k, weights, biases, position, norms and MLP; its L layers run with
    unit residual steps (``beta``, ``t1``, ``layers`` and ``residual`` may still be
    given; a shared-layer model such as ALBERT may run more layers than L).

    Failures. A single trajectory that does not reach t1 (step budget spent, the state
    non-finite) raises :class:`SimulationError`. In a batch the others are kept: when
    the batched solve fails, each trajectory is solved again on its own (with its own
    ``max_steps``, no collapse stop), and those that fail again are marked in
    ``traj.status`` (1 non-finite state or a radius ≤ 0, 2 step budget; see
    :class:`Status`) with NaN at the saves they did not validly reach, and a :class:`SimulationWarning` is issued; a batch
    never raises for a failed solve, even when every trajectory fails.
    With USA attention, a ``beta`` whose weights e^{β⟨Qθ,Kθ⟩} overflow the dtype is
    refused up front (ValueError). Negative ``beta`` is supported: it weights far
    tokens more, but the flow still collapses (E_β is maximal at consensus for all β ≠ 0).
    """

    check_keywords("simulate", _KEYWORDS, scheme_params)
    problem = make_problem(
        x0, scheme, beta=beta, t0=t0, t1=t1, attention=attention, Q=Q, K=K, V=V, causal=causal,
        position=position, positions=positions, heads=heads, block_size=block_size, dtype=dtype, layers=layers, norm=norm, gamma=gamma,
        bias=bias, ln_eps=ln_eps, mlp=mlp, activation=activation, residual=residual, noise=noise, key=key,
        **scheme_params,
    )  # fmt: skip
    if reduce_span and not problem.attention.position.inner_products_only:
        raise ValueError(
            f"reduce_span=True with position {problem.attention.position.label!r}: its logits depend on "
            "more than <q_i, k_j>, so the tokens leave their span; leave reduce_span unset"
        )
    reduce_span = True if reduce_span is None else reduce_span
    if problem.noise and solver is None:
        solver = diffrax.Heun()  # Stratonovich (integrate's STRATONOVICH_SOLVERS)
    config = SolveConfig(
        solver=solver, rtol=rtol, atol=atol, step_size=step_size, max_steps=max_steps, ts=ts,
        stop_at_collapse=stop_at_collapse, progress=progress, shard=shard, reduce_span=reduce_span,
    )  # fmt: skip
    with precision(problem.dtype):
        return Trajectory.from_raw(integrate(problem, config), problem, config)


_KEYWORDS = tuple(inspect.signature(simulate).parameters)[2:-1]  # simulate's own keywords
