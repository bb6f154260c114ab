"""Position parts (MODEL.md §11) against a plain numpy attention written from the
formulas: causal, ALiBi, RoPE (both conventions, several heads with d_k < d), positional
priors and their combinations, in the attention field and in one discrete layer of pre
and post with LayerNorm and an MLP; and the invariances §11 states."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import particles

# -- numpy reference ------------------------------------------------------------------


def np_rope(x, p, base, convention):
    """Rotate coordinate pair a of each row x_i by p_i ω_a, ω_a = base^{−2a/d_k}."""
    d_k = x.shape[-1]
    omega = np.array([base ** (-2 * a / d_k) for a in range(d_k // 2)])
    out = np.empty_like(x)
    for i in range(len(x)):
        for a in range(d_k // 2):
            u, v = (a, a + d_k // 2) if convention == "half" else (2 * a, 2 * a + 1)
            c, s = math.cos(p[i] * omega[a]), math.sin(p[i] * omega[a])
            out[i, u] = c * x[i, u] - s * x[i, v]
            out[i, v] = s * x[i, u] + c * x[i, v]
    return out


def np_attention(
    y, beta, Q, K, V, kernel="softmax", causal=False, slopes=None, rope=None, prior=None, p=None
):
    """A_i = Σ_h Σ_j w^h_ij V_h y_j, logits β⟨q_i, k_j⟩ − m_h (p_i − p_j), masked to
    j ≤ i where causal (ALiBi is causal), weights softmax or USA (e^ℓ/n), a prior π
    replacing USA's 1/n and weighting softmax's terms."""
    n, d = y.shape
    p = np.arange(n, dtype=float) if p is None else np.asarray(p, float)
    out = np.zeros((n, d))
    for h in range(len(Q)):
        q, k = y @ Q[h].T, y @ K[h].T
        if rope is not None:
            q, k = np_rope(q, p, *rope), np_rope(k, p, *rope)
        logits = beta * q @ k.T
        allowed = np.ones((n, n), bool)
        if slopes is not None:
            logits = logits - slopes[h] * (p[:, None] - p[None, :])
        if causal or slopes is not None:
            allowed &= np.tril(np.ones((n, n), bool))
        prior_h = np.full((n, n), 1.0 / n) if prior is None else prior
        allowed &= prior_h > 0
        if kernel == "softmax":
            e = np.where(allowed, np.exp(logits - logits.max(axis=1, keepdims=True)), 0) * (
                1.0 if prior is None else prior
            )
            total = e.sum(axis=1, keepdims=True)
            w = np.where(total > 0, e / np.where(total > 0, total, 1), 0)
        else:
            w = np.where(allowed, np.exp(logits), 0) * prior_h
        out += (w @ y) @ V[h].T
    return out


def np_layernorm(x, gamma, bias, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + bias


def np_mlp(y, W1, b1, W2, b2):
    u = y @ W1.T + b1
    return (0.5 * u * (1 + erf(u / math.sqrt(2)))) @ W2.T + b2


@eqx.filter_jit
def _field(att, theta):
    return att(0.0, jnp.asarray(theta))


# -- cases ------------------------------------------------------------------------------

N, D, DK, HEADS, BETA = 7, 6, 4, 2, 0.9


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(HEADS, DK, D)) / math.sqrt(D)
    K = rng.normal(size=(HEADS, DK, D)) / math.sqrt(D)
    V = rng.normal(size=(HEADS, D, D)) / math.sqrt(D)
    return Q, K, V


def _prior(n, lam=1.0):
    j, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pi = np.where(k < j, np.exp(-lam * (j - k) / n), 0.0)
    rows = pi.sum(1, keepdims=True)
    return np.where(rows > 0, pi / np.where(rows > 0, rows, 1), 0)


SLOPES = (0.5, 0.125)
POSITIONS = np.array([0.0, 1.5, 2.0, 4.0, 4.5, 7.0, 9.0])
CASES = {
    "causal": (dict(position=particles.Causal()), dict(causal=True)),
    "alibi": (dict(position=particles.ALiBi(SLOPES)), dict(slopes=SLOPES)),
    "alibi-default": (dict(position=particles.ALiBi()), dict(slopes=(2.0**-4, 2.0**-8))),
    "rope-half": (dict(position=particles.RoPE(base=50.0)), dict(rope=(50.0, "half"))),
    "rope-interleaved": (
        dict(position=particles.RoPE(base=50.0, convention="interleaved")),
        dict(rope=(50.0, "interleaved")),
    ),
    "rope+causal": (
        dict(position=(particles.RoPE(base=20.0), particles.Causal())),
        dict(rope=(20.0, "half"), causal=True),
    ),
    "rope+alibi+positions": (
        dict(position=(particles.RoPE(base=30.0), particles.ALiBi(SLOPES)), positions=POSITIONS),
        dict(rope=(30.0, "half"), slopes=SLOPES, p=POSITIONS),
    ),
    "prior-usa": (
        dict(position=particles.PositionalPrior(_prior(N)), kind="usa"),
        dict(prior=_prior(N), kernel="usa"),
    ),
    "prior-softmax+rope": (
        dict(position=(particles.PositionalPrior(_prior(N)), particles.RoPE(base=10.0))),
        dict(prior=_prior(N), rope=(10.0, "half")),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_attention_field_equals_numpy(case):
    ours, ref = dict(CASES[case][0]), CASES[case][1]
    Q, K, V = _weights()
    theta = particles.init.uniform_sphere(3, N, D, dtype=np.float64)
    positions = ours.pop("positions", None)
    att = particles.Attention(
        jnp.asarray(BETA), Q=jnp.asarray(Q[None]), K=jnp.asarray(K[None]), V=jnp.asarray(V[None]),
        positions=None if positions is None else jnp.asarray(positions), **ours,
    )  # fmt: skip
    got = np.asarray(_field(att, theta))
    np.testing.assert_allclose(
        got, np_attention(np.asarray(theta), BETA, Q, K, V, **ref), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "scheme, case",
    [("pre", "alibi"), ("pre", "rope-interleaved"), ("post", "rope+causal"), ("post", "prior-usa")],
)
def test_one_layer_with_layernorm_and_mlp_equals_numpy(scheme, case):
    ours, ref = CASES[case]
    ours = dict(ours)
    attention = ours.pop("kind", "softmax")
    Q, K, V = _weights(1)
    rng = np.random.default_rng(2)
    gamma, bias = 1 + 0.1 * rng.normal(size=D), 0.1 * rng.normal(size=D)
    m = 5
    mlp = (
        rng.normal(size=(1, m, D)) / math.sqrt(D), 0.1 * rng.normal(size=(1, m)),
        rng.normal(size=(1, D, m)) / math.sqrt(m), 0.1 * rng.normal(size=(1, D)),
    )  # fmt: skip
    x0 = rng.normal(size=(N, D))
    traj = particles.simulate(
        x0, scheme, beta=BETA, t1=1.0, layers=1, Q=Q, K=K, V=V, norm="layernorm", gamma=gamma, bias=bias,
        mlp=mlp, attention=attention, dtype="float64", **ours,
    )  # fmt: skip
    W = [w[0] for w in mlp]
    A = lambda y: np_attention(y, BETA, Q, K, V, **ref)  # noqa: E731
    LN = lambda y: np_layernorm(y, gamma, bias)  # noqa: E731
    if scheme == "pre":
        x = x0 + A(LN(x0))
        x = x + np_mlp(LN(x), *W)
    else:
        x = LN(x0 + A(x0))
        x = LN(x + np_mlp(x, *W))
    np.testing.assert_allclose(np.asarray(traj.x[-1]), x, rtol=1e-12, atol=1e-12)


# -- invariances --------------------------------------------------------------------------


def test_rope_flow_depends_on_relative_positions_only():
    Q, K, V = _weights(4)
    x0 = particles.init.uniform_sphere(5, N, D, dtype=np.float64)
    kw = dict(
        beta=1.3, t1=1.0, ts=[1.0], Q=Q, K=K, V=V, position=particles.RoPE(base=7.0), rtol=1e-10, atol=1e-12
    )
    a = particles.simulate(x0, "pre", positions=POSITIONS, **kw)
    b = particles.simulate(x0, "pre", positions=POSITIONS + 123.25, **kw)
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(b.x), rtol=0, atol=1e-12)


def test_zero_frequencies_and_zero_slopes_are_no_positions():
    """ω = 0 (every position equal) is no RoPE; ALiBi with slope 0 is the causal mask.
    (A base → ∞ leaves ω_0 = base^0 = 1: pair 0 still turns, so it is not "no RoPE".)"""
    Q, K, V = (jnp.asarray(w[None]) for w in _weights(5))
    theta = particles.init.uniform_sphere(6, N, D, dtype=np.float64)
    att = lambda **kw: particles.Attention(jnp.asarray(1.1), Q=Q, K=K, V=V, **kw)  # noqa: E731
    plain = _field(att(), theta)
    still = _field(att(position=particles.RoPE(), positions=jnp.full(N, 3.0)), theta)
    np.testing.assert_allclose(np.asarray(still), np.asarray(plain), rtol=0, atol=1e-14)
    flat = _field(att(position=particles.ALiBi([0.0, 0.0])), theta)
    np.testing.assert_allclose(
        np.asarray(flat), np.asarray(_field(att(causal=True), theta)), rtol=0, atol=1e-14
    )
    huge = _field(att(position=particles.RoPE(base=math.inf)), theta)
    expected = np_attention(theta, 1.1, *_weights(5), rope=(math.inf, "half"))
    np.testing.assert_allclose(np.asarray(huge), expected, rtol=1e-12, atol=1e-12)


def test_causal_softmax_collapses_onto_the_first_token():
    x0 = particles.init.uniform_sphere(0, 8, 3, dtype=np.float64)
    traj = particles.simulate(
        x0, "post", beta=1.0, t1=40.0, ts=[0.0, 40.0], causal=True, rtol=1e-10, atol=1e-12
    )
    theta = np.asarray(traj.theta)
    np.testing.assert_allclose(theta[-1, 0], theta[0, 0], rtol=0, atol=1e-12)  # token 0 does not move
    assert np.min(theta[-1] @ theta[0, 0]) > 1 - 1e-6


def test_a_prior_row_of_zeros_keeps_that_token_still():
    pi = _prior(N)
    x0 = particles.init.uniform_sphere(1, N, 3, dtype=np.float64)
    for attention in ("usa", "softmax"):
        traj = particles.simulate(
            x0,
            "post",
            beta=1.0,
            t1=1.0,
            ts=[1.0],
            attention=attention,
            position=particles.PositionalPrior(pi),
        )
        np.testing.assert_allclose(np.asarray(traj.theta[-1, 0]), x0[0], rtol=0, atol=1e-14)
        assert np.all(np.isfinite(np.asarray(traj.x)))


def test_rope_skips_the_span_reduction_and_the_gram_flow():
    x0 = particles.init.uniform_sphere(2, 4, 8, dtype=np.float64)
    kw = dict(beta=1.0, t1=1.0, ts=[1.0], rtol=1e-10, atol=1e-12)
    traj = particles.simulate(x0, "post", position=particles.RoPE(base=5.0), **kw)
    ambient = particles.simulate(x0, "post", position=particles.RoPE(base=5.0), reduce_span=False, **kw)
    np.testing.assert_allclose(np.asarray(traj.x), np.asarray(ambient.x), rtol=0, atol=0)
    problem = particles.make_problem(x0, "post", beta=1.0, t1=1.0, position=particles.RoPE())
    assert not problem.keeps_span and not problem.closes_on_gram
    alibi = particles.make_problem(x0, "post", beta=1.0, t1=1.0, position=particles.ALiBi())
    assert alibi.keeps_span and not alibi.closes_on_gram


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(positions=np.arange(3.0)), "positions has shape"),
        (dict(positions=[0, 1, np.nan, 3, 4, 5, 6]), "positions"),
        (
            dict(position=particles.ALiBi([1.0, 2.0, 3.0]), Q=np.stack([np.eye(4)] * 2)),
            "slopes has 3 values for 2 heads",
        ),
        (dict(Q=np.ones((3, 4)), K=np.ones((2, 4))), "different sizes"),
        (dict(Q=np.ones((5, 4))), "d_k <= d"),
        (dict(position="rope"), "position part"),
    ],
)
def test_bad_position_input_is_one_line(kw, match):
    x0 = particles.init.uniform_sphere(0, N, 4, dtype=np.float64)
    with pytest.raises(ValueError, match=match) as info:
        particles.simulate(x0, "post", beta=1.0, t1=1.0, **kw)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: particles.RoPE(base=-1.0), "base"),
        (lambda: particles.RoPE(convention="spiral"), "convention"),
        (lambda: particles.PositionalPrior(-np.eye(3)), "nonnegative"),
        (lambda: particles.PositionalPrior(np.full((3, 3), 0.5)), "row 0 sums to 1.5"),
        (lambda: particles.PositionalPrior(np.ones(3)), "shape"),
        (lambda: particles.ALiBi([np.inf]), "slopes"),
    ],
)
def test_bad_position_parts_are_one_line(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_explicit_span_reduction_with_rope_is_refused():
    """reduce_span=True asks for the span chart: refused where the logits are not inner
    products (RoPE), granted where they are (causal)."""
    x0 = particles.init.uniform_sphere(0, N, 8, dtype=np.float64)
    with pytest.raises(ValueError, match="reduce_span=True with position 'rope'") as info:
        particles.simulate(x0, "post", beta=1.0, t1=1.0, position=particles.RoPE(), reduce_span=True)
    assert "\n" not in str(info.value)
    particles.simulate(x0, "post", beta=1.0, t1=1.0, ts=[1.0], causal=True, reduce_span=True)


@pytest.mark.parametrize("layers", [None, 4])
def test_positions_of_each_trajectory_of_a_batch(layers):
    """Positions (batch, n) give each trajectory of a batch its own: equal to solving each
    alone with its positions; (1, n) broadcasts to every trajectory."""
    rng = np.random.default_rng(5)
    x0 = np.asarray(particles.init.uniform_sphere(1, N, 6, dtype=np.float64))
    positions = rng.uniform(0, 10, size=(2, N))
    Q, K, V = particles.random_weights(2, 6, heads=2, dtype=np.float64)
    kw = dict(beta=1.0, t1=1.0, ts=[0.5, 1.0], Q=Q[..., :4, :], K=K[..., :4, :], V=V, layers=layers,
              position=(particles.RoPE(base=50.0), particles.ALiBi([0.3, 0.1])))  # fmt: skip
    if layers is None:
        kw["step_size"] = 0.05  # the same steps alone and in the batch
    batch = particles.simulate(np.stack([x0, x0]), "pre", positions=positions, **kw)
    for b in range(2):
        alone = particles.simulate(x0, "pre", positions=positions[b], **kw)
        np.testing.assert_allclose(np.asarray(batch.x[b]), np.asarray(alone.x), rtol=0, atol=1e-12)
    assert not np.allclose(np.asarray(batch.x[0]), np.asarray(batch.x[1]), atol=1e-3)
    shared = particles.simulate(np.stack([x0, x0]), "pre", positions=positions[:1], **kw)
    alone = particles.simulate(x0, "pre", positions=positions[0], **kw)
    np.testing.assert_allclose(np.asarray(shared.x[1]), np.asarray(alone.x), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"positions has shape \(3, 7\); expected \(7,\)"):
        particles.simulate(np.stack([x0, x0]), "pre", positions=np.zeros((3, N)), **kw)


def test_noise_with_causal_attention_keeps_token_zero_blind_to_the_others():
    """Under causal attention token 0 attends to itself only: with noise (the same
    Brownian paths from the same key) its path does not depend on the later tokens,
    and it still moves, by the noise alone; with RoPE and ALiBi the noisy flow runs."""
    x0 = np.asarray(particles.init.uniform_sphere(3, N, 4, dtype=np.float64))
    other = x0.copy()
    other[1:] = particles.init.uniform_sphere(4, N - 1, 4, dtype=np.float64)
    kw = dict(beta=2.0, t1=0.5, ts=[0.25, 0.5], step_size=0.01, noise=0.05, key=7)
    a = particles.simulate(x0, "post", causal=True, **kw)
    b = particles.simulate(other, "post", causal=True, **kw)
    np.testing.assert_allclose(np.asarray(a.theta[:, 0]), np.asarray(b.theta[:, 0]), rtol=0, atol=1e-12)
    assert np.max(np.abs(np.asarray(a.theta[-1, 0]) - x0[0])) > 1e-3
    assert not np.allclose(np.asarray(a.theta[-1, 1:]), np.asarray(b.theta[-1, 1:]))
    noisy = particles.simulate(x0, "post", position=(particles.RoPE(base=10.0), particles.ALiBi()), **kw)
    assert np.all(np.isfinite(np.asarray(noisy.theta)))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(noisy.theta), axis=-1), 1.0, atol=1e-12)


def test_rope_with_odd_query_dimension_is_refused():
    x0 = particles.init.uniform_sphere(0, N, 4, dtype=np.float64)
    Q = np.ones((3, 4))
    with pytest.raises(ValueError, match="even"):
        particles.simulate(x0, "post", beta=1.0, t1=1.0, Q=Q, K=Q, position=particles.RoPE())


def test_lost_in_the_middle_model_is_the_published_equation():
    """PositionalPrior + USA on the circle (post: θ̇_j = P_θj Σ_k π_jk e^{β⟨θ_j, θ_k⟩} θ_k)
    is θ̇_j = Σ_k π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j): the published equation (β in
    front) at time t is ours at time β t (MODEL.md §11). Against an independent RK4."""
    from _circle_reference import rk4_circle

    n, beta, t = 16, 1.5, 1.0
    pi = particles.analysis.lost_in_the_middle_prior(n, 1.0)
    angles = np.random.default_rng(3).uniform(0, 2 * np.pi, size=n)
    x0 = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    traj = particles.simulate(
        x0, "post", beta=beta, t1=beta * t, ts=[beta * t], attention="usa",
        position=particles.PositionalPrior(pi), rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    expected = rk4_circle(angles, pi, beta, t, steps=2000)
    got = np.asarray(traj.theta[-1])
    np.testing.assert_allclose(
        got, np.stack([np.cos(expected), np.sin(expected)], axis=-1), rtol=0, atol=1e-8
    )


def test_command_line_positions(capsys):
    from particles.cli import main

    argv = ["--no-cache", "simulate", "--n", "5", "--d", "4", "--t1", "1", "--x64"]
    assert main([*argv, "--position", "rope+causal", "--rope-base", "100"]) == 0
    assert "final mean cosine" in capsys.readouterr().out
    assert main([*argv, "--position", "alibi+spiral"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'spiral' is not one of: none, causal, alibi, rope" in err and "\n" not in err


def test_lost_in_the_middle_figure_tiny(tmp_path):
    """The figure's Monte Carlo profile follows the linear response at the sources k < n − 1
    (within its noise and the 1/n of a leading-order prediction), is U-shaped at t = 2 against the middle, and
    its continuum t_crit is §11's."""
    import xarray as xr

    from particles.figures import run

    paths = run("lost_in_the_middle", str(tmp_path), "tiny")
    assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["nc", "png"]
    ds = xr.open_dataset(tmp_path / "lost_in_the_middle.nc", engine="h5netcdf")
    assert abs(ds.t_crit - 2.4575) < 1e-4
    n = ds.sizes["position"]
    sources = ds.isel(position=slice(None, -1))  # the last token's own start is O(t²/n) off (it moves too)
    gap = np.abs(sources.profile - sources.linear_response)
    assert float((gap - 4 * sources.profile_stderr).max()) < 1.0 / n
    late = ds.linear_response.sel(time=2.0).values
    assert late[0] > 1.5 * late[n // 2]  # primacy
    u = particles.analysis.linear_response_profile(
        particles.analysis.lost_in_the_middle_prior(32, 1.0), 2.0, 1.0
    )
    k_min = int(np.argmin(u[:-1]))  # n = 32 (§11): primacy and recency around an interior minimum
    assert 0 < k_min < 30 and u[0] > u[k_min] < u[30]
    np.testing.assert_allclose(ds.angle.isel(token=0), ds.angle.isel(token=0, trajectory_time=0), atol=1e-12)


@pytest.mark.parametrize("case", ["alibi+positions", "rope+causal", "prior-softmax+rope"])
def test_row_blocks_equal_the_dense_field(case):
    """Blocks of 3 of the 7 queries (the last one padded) give the dense field."""
    ours = {
        "alibi+positions": dict(position=particles.ALiBi(SLOPES), positions=jnp.asarray(POSITIONS)),
        "rope+causal": dict(CASES["rope+causal"][0]),
        "prior-softmax+rope": dict(CASES["prior-softmax+rope"][0]),
    }[case]
    Q, K, V = (jnp.asarray(w[None]) for w in _weights(6))
    theta = particles.init.uniform_sphere(8, N, D, batch=2, dtype=np.float64)
    dense = _field(particles.Attention(jnp.asarray([0.7, 1.4]), Q=Q, K=K, V=V, block_size=N, **ours), theta)
    blocks = _field(particles.Attention(jnp.asarray([0.7, 1.4]), Q=Q, K=K, V=V, block_size=3, **ours), theta)
    np.testing.assert_allclose(np.asarray(blocks), np.asarray(dense), rtol=1e-13, atol=1e-14)


def test_positions_figure_tiny(tmp_path):
    """Every variant clusters (mean cosine rises from its start); under causal attention
    with V = I every token's distance to the merged earlier ones decays, at a fitted rate
    that is finite and at most k/(k+1) (the slowest, token 1's 1/2, sets the pace)."""
    import xarray as xr

    from particles.figures import run

    run("positions", str(tmp_path), "tiny")
    ds = xr.open_dataset(tmp_path / "positions.nc", engine="h5netcdf")
    assert list(ds.variant.values) == ["none", "causal", "ALiBi", "RoPE 10", "RoPE 1e2", "RoPE 1e4"]
    assert np.all(ds.mean_cosine.isel(time=-1) > ds.mean_cosine.isel(time=0) + 0.5)
    assert np.all(ds.effective_rank.isel(time=-1) < ds.effective_rank.isel(time=0))
    rates = ds.measured_rate.values
    assert np.all(np.isfinite(rates)) and np.all(rates <= ds.linearised_rate.values + 0.02)
    np.testing.assert_allclose(rates[0], 0.5, atol=0.02)  # token 1 against token 0: rate 1/2


def test_sweep_over_positions_equals_simulate(tmp_path):
    """The axis ``position`` of labels: each unit is the simulate call of its batch."""
    labels = ["none", "causal", "alibi:0.5", "rope:100+causal"]
    ds = particles.sweep(
        tmp_path / "s", beta=[1.0, 2.0], n=6, d=4, t1=2.0, seeds=2, save_every=1.0, position=labels,
        dtype="float64", progress=False,
    )  # fmt: skip
    assert list(ds.position.values) == labels
    x0 = np.stack([particles.init.uniform_sphere(s, 6, 4, dtype=np.float64) for s in range(2)])
    parts = (particles.RoPE(base=100.0), particles.Causal())
    for beta in (1.0, 2.0):  # the two betas are one solve (a beta group): simulate gets that batch
        x = np.concatenate([x0, x0])
        b = np.repeat([1.0, 2.0], 2)
        traj = particles.simulate(
            x, "post", beta=b, t1=2.0, ts=ds.time.values, position=parts, dtype="float64"
        )
        rows = slice(0, 2) if beta == 1.0 else slice(2, 4)
        expected = np.asarray(particles.analysis.mean_cosine(traj.theta))[rows]
        got = ds.mean_cosine.sel(position="rope:100+causal", beta=beta).values
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(position=["spiral"]), "'spiral' is not one of"),
        (dict(position=["rope:abc"]), "not a number"),
        (dict(position=["causal:2"]), "is not one of"),
        (dict(position=["alibi"], gram=True), "gram=True solves the Gram flow"),
    ],
)
def test_bad_sweep_positions_are_refused_before_the_store(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match) as info:
        particles.sweep(tmp_path / "s", beta=1.0, n=4, d=3, t1=1.0, progress=False, **kw)
    assert "\n" not in str(info.value) and not (tmp_path / "s").exists()


@pytest.mark.slow
def test_linear_response_is_the_leading_order_in_one_over_n():
    """MODEL.md §11's linear response at β = λ = 1, t = 1, n = 32, 64, 128 (4000 runs
    each): the largest gap is the last token's own entry, 1 − c(n−1) against 1, many
    standard errors wide and halving as n doubles (measured 0.0213, 0.0108, 0.0057);
    at every other source the Monte Carlo profile is within its noise (4 s.e.) plus 1/n."""
    from particles.figures.lost_in_the_middle import monte_carlo

    gaps = []
    for n in (32, 64, 128):
        profile = monte_carlo(n, 4000, (1.0,), seed=7)
        mean, stderr = profile.mean[0], profile.stderr[0]
        linear = particles.analysis.linear_response_profile(
            particles.analysis.lost_in_the_middle_prior(n, 1.0), 1.0, 1.0
        )
        gaps.append(abs(mean[-1] - linear[-1]))
        assert gaps[-1] > 10 * stderr[-1]
        assert np.all(np.abs(mean[:-1] - linear[:-1]) < 4 * stderr[:-1] + 1.0 / n)
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3, gaps


def test_gradients_through_a_flow_with_positions_match_finite_differences():
    """Sensitivity with position parts: ∂ℓ/∂x(0) of the pre flow with RoPE and ALiBi
    against central differences of simulate."""
    x0 = np.random.default_rng(11).normal(size=(4, 4))
    kw = dict(
        beta=0.9, t1=0.5, rtol=1e-11, atol=1e-13, position=(particles.RoPE(base=3.0), particles.ALiBi([0.3]))
    )
    weights = jnp.arange(1.0, 17.0).reshape(4, 4)

    def loss(x):
        return jnp.sum(jnp.sin(x) * weights)

    g = particles.sensitivity.gradients(x0, "pre", loss=loss, ts=[0.0, 0.5], **kw)[0]

    # the 2 × 16 perturbed starts as one batch (one solve: both signs take the same steps)
    e = 1e-6 * np.eye(x0.size).reshape(x0.size, *x0.shape)
    final = particles.simulate(np.concatenate([x0 + e, x0 - e]), "pre", ts=[0.5], **kw).x[:, -1]
    losses = np.asarray(jax.vmap(loss)(final))
    fd = ((losses[: x0.size] - losses[x0.size :]) / 2e-6).reshape(x0.shape)
    assert np.max(np.abs(np.asarray(g) - fd)) / np.max(np.abs(fd)) < 1e-6
