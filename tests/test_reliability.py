"""Reliability guarantees (issue 5) that span modules: symmetries and invariants of the
flow as property tests, extreme parameters, partial failure in a batch, atomic files.
CLI fuzzing is in tests/test_cli.py, kill-and-resume in tests/test_kill_resume.py."""

import os
import re
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import particles
from particles.cli import main

FEW = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
SPHERE_BOUND = [name for name, cls in particles.SCHEMES.items() if cls.sphere_bound]


def _rotation(seed, d):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _tokens(seed, n, d, log_radius=0.0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=-1, keepdims=True) * np.exp(log_radius)


def _velocity(scheme, theta, r, beta, kind="softmax"):
    att = particles.Attention(beta=jnp.asarray(beta), Q=None, K=None, V=None, kind=kind)
    return particles.get_scheme(scheme).velocity(0.5, jnp.asarray(theta), jnp.asarray(r), att)


# 1. The vector field: every scheme, random shapes (eager, cheap), tokens, beta, radii.


@FEW
@given(
    scheme=st.sampled_from(list(particles.SCHEMES)),
    kind=st.sampled_from(["softmax", "usa"]),
    nd=st.sampled_from([(1, 2), (2, 2), (5, 3)]),
    beta=st.floats(-30, 30),
    log_radius=st.floats(-13.8, 13.8),  # radii 1e-6 .. 1e6
    seed=st.integers(0, 2**16),
)
def test_vector_field_tangent_equivariant_finite(scheme, kind, nd, beta, log_radius, seed):
    """⟨θ_i, dθ_i/dt⟩ = 0; the field is finite; it commutes with permutations of the
    tokens and (Q = K = V = I) with rotations."""
    n, d = nd
    rng = np.random.default_rng(seed)
    theta = _tokens(seed, n, d)
    r = np.exp(log_radius + rng.uniform(-1, 1, n))
    if particles.SCHEMES[scheme].sphere_bound:
        r = np.ones(n)
    if particles.SCHEMES[scheme].attends_to_tokens:  # "none": keep e^{β|x|²} finite
        r = np.minimum(r, np.sqrt(20.0 / max(abs(beta), 1.0)))
    dtheta, dr = _velocity(scheme, theta, r, beta, kind)
    assert np.all(np.isfinite(dtheta)) and np.all(np.isfinite(dr))
    # rounding in P A is eps·|A|, and the direction speed divides it by r or (mix before
    # its switch, with r ≠ 1) by 1: by at most min(r, 1)
    att = particles.Attention(beta=jnp.asarray(beta), Q=None, K=None, V=None, kind=kind)
    x = theta * r[:, None] if particles.SCHEMES[scheme].attends_to_tokens else theta
    a_max = np.max(np.linalg.norm(att(0.5, jnp.asarray(x)), axis=-1))
    scale = 1 + np.max(np.abs(dtheta)) + a_max / min(r.min(), 1.0)
    if scheme == "spannorm":  # its speed r|x + A| divides eps·|A|: eps/r where |A| << 1 (one token, beta < 0)
        scale += 1 / r.min()
    np.testing.assert_allclose(np.sum(theta * np.asarray(dtheta), -1), 0, atol=1e-12 * scale)
    if particles.SCHEMES[scheme].sphere_bound:
        np.testing.assert_array_equal(dr, 0)
    perm = rng.permutation(n)
    p_theta, p_dr = _velocity(scheme, theta[perm], r[perm], beta, kind)
    np.testing.assert_allclose(p_theta, np.asarray(dtheta)[perm], rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(p_dr, np.asarray(dr)[perm], rtol=1e-9, atol=1e-12 * (1 + np.max(np.abs(dr))))
    R = _rotation(seed, d)
    r_theta, r_dr = _velocity(scheme, theta @ R.T, r, beta, kind)
    np.testing.assert_allclose(r_theta, np.asarray(dtheta) @ R.T, rtol=1e-8, atol=1e-10 * scale)
    np.testing.assert_allclose(r_dr, dr, rtol=1e-8, atol=1e-10 * (1 + np.max(np.abs(dr))))


def test_zero_attention_vector_is_rest_not_nan():
    """n = 2 antipodal at beta = 0: A_i = 0, and ngpt/peri (which divide by |A|) rest."""
    theta = np.array([[1.0, 0.0], [-1.0, 0.0]])
    for scheme in ("ngpt", "peri"):
        dtheta, dr = _velocity(scheme, theta, np.ones(2), 0.0)
        np.testing.assert_array_equal(dtheta, 0)
        np.testing.assert_array_equal(dr, 0)


# 2. The flow: one compiled solve per scheme, the values drawn (one (n, d, T) shape).

TS = [0.0, 0.5, 1.0, 2.0]
ACC = dict(rtol=1e-10, atol=1e-12)


@FEW
@given(
    scheme=st.sampled_from(["post", "pre"]),
    beta=st.floats(-4, 8),
    seed=st.integers(0, 2**16),
)
def test_flow_commutes_with_rotations_and_permutations(scheme, beta, seed):
    """simulate(R x0) = R simulate(x0) (Q = K = V = I) and simulate(x0[π]) =
    simulate(x0)[π], checked in one batched solve of (x0, R x0, x0[π])."""
    x0 = _tokens(seed, 4, 3, log_radius=np.random.default_rng(seed).uniform(-1, 1))
    R, perm = _rotation(seed, 3), np.random.default_rng(seed).permutation(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", particles.SimulationWarning)
        traj = particles.simulate(np.stack([x0, x0 @ R.T, x0[perm]]), scheme, beta=beta, t1=2.0, ts=TS, **ACC)
    # pre at β < 0 can drive a radius to 0 in finite time (θ then spins at speed 1/r):
    # such runs are marked failed, all three alike, and are not a symmetry check
    assert len(set(traj.status.tolist())) == 1
    assume(traj.status[0] == 0)
    x = np.asarray(traj.x)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x[1], x[0] @ R.T, atol=1e-9)
    np.testing.assert_allclose(x[2], x[0][:, perm], atol=1e-9)


@FEW
@given(
    log_c=st.floats(-13.8, 13.8),  # c from 1e-6 to 1e6
    beta=st.floats(-2, 6),
    seed=st.integers(0, 2**16),
)
def test_pre_radius_scaling_is_a_time_change(log_c, beta, seed):
    """For pre (and peri), dθ/dt = P A(Θ)/r (resp. /(r|A|)) and dr/dt = ⟨θ, A⟩ (resp.
    /|A|): the field is homogeneous of degree −1 in r for θ, 0 for r. Hence
    x0 → c x0 gives θ_c(t) = θ(t/c) and r_c(t) = c r(t/c): scaling every radius by c
    slows the directions by c. Holds for any Q, K, V constant in time."""
    c = float(np.exp(log_c))
    x0 = np.stack([_tokens(seed + k, 4, 3) for k in range(3)])
    x0 = x0 * np.random.default_rng(seed).uniform(0.5, 2, (3, 4, 1))
    base = particles.simulate(x0, "pre", beta=beta, t1=2.0, ts=TS, **ACC)
    scaled = particles.simulate(c * x0, "pre", beta=beta, t1=2.0 * c, ts=np.multiply(TS, c), **ACC)
    assert np.all(np.isfinite(scaled.x))
    np.testing.assert_allclose(scaled.theta, base.theta, atol=1e-8)
    np.testing.assert_allclose(scaled.r / c, base.r, rtol=1e-8)


@FEW
@given(
    attention=st.sampled_from(["softmax", "usa"]),
    betas=st.lists(st.floats(0.1, 8) | st.floats(-8, -0.1), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_energy_never_decreases_along_post_and_usa_flows(attention, betas, seed):
    """E_β = (1/(2βn²)) Σ_ij e^{β⟨θ_i,θ_j⟩} (MODEL.md §4): dE/dt = Σ_i (Z_i/n²)|P A_i|² ≥ 0
    for SA (Z_i the softmax normaliser) and Σ_i (Z_i²/n³)|P A_i|² for USA, any β ≠ 0."""
    x0 = np.stack([_tokens(seed + k, 4, 3) for k in range(3)])
    traj = particles.simulate(x0, "post", beta=np.asarray(betas), t1=2.0, ts=TS, attention=attention, **ACC)
    energy = np.asarray(particles.analysis.energy(traj.theta, np.asarray(betas)[:, None]))
    assert np.all(np.isfinite(energy))
    assert np.all(np.diff(energy, axis=-1) >= -1e-10 * np.abs(energy[:, 1:])), energy


# 3. Extreme parameters.


def test_softmax_beta_from_zero_to_1e3():
    """Softmax subtracts the row max: no overflow at any finite beta; at large beta the
    weights concentrate on the token itself and the flow is slow, not stiff."""
    x0 = _tokens(1, 4, 3)
    traj = particles.simulate(x0, "post", beta=np.array([0.0, 100.0, 1000.0]), t1=2.0, ts=TS)
    assert np.all(np.isfinite(traj.theta)) and np.all(traj.status == 0)
    np.testing.assert_allclose(np.linalg.norm(traj.x, axis=-1), 1, atol=1e-12)


def test_negative_beta_is_supported_and_still_collapses():
    """β < 0 weights far tokens more, yet each token still moves toward a weighted mean:
    E_β is maximal at consensus for every β ≠ 0, so the flow collapses (it is not a
    repulsion; that would be V = −I)."""
    x0 = np.stack([_tokens(k, 4, 3) for k in range(3)])
    traj = particles.simulate(x0, "post", beta=np.array([-0.5, -2.0, -8.0]), t1=60.0, ts=[0, 20, 40, 60])
    rho = np.asarray(particles.analysis.mean_cosine(traj.theta))
    assert np.all(np.isfinite(rho)) and np.all(rho[:, 0] < 0.5)
    np.testing.assert_allclose(rho[:, -1], 1, atol=1e-6)


def test_extreme_radii_pre_and_peri():
    x0 = _tokens(3, 4, 3)
    for scheme in ("pre", "peri"):
        batch = np.stack([1e-6 * x0, x0, 1e6 * x0])
        traj = particles.simulate(batch, scheme, beta=2.0, t1=2.0, ts=TS)
        r = np.asarray(traj.r)
        assert np.all(np.isfinite(traj.theta)) and np.all(r > 0) and np.all(traj.status == 0)
        np.testing.assert_allclose(np.linalg.norm(traj.theta, axis=-1), 1, atol=1e-12)
        assert np.all(r[2, -1] <= 1e6 + 2.0 * (1 + 1e-9))  # |dr/dt| ≤ 1


def test_single_token_and_antipodal_pair_in_d2():
    """n = 1 rests (A = θ, P A = 0; pre/peri radii grow at rate 1); n = 2 antipodal is
    an equilibrium (unstable for β > 0) kept exactly; β = 0 included (A = 0)."""
    for scheme in particles.SCHEMES:  # the field: exact rest, all schemes
        dtheta, dr = _velocity(scheme, np.array([[0.6, 0.8]]), np.ones(1), 3.0)
        np.testing.assert_array_equal(dtheta, 0)
        pair = np.array([[1.0, 0.0], [-1.0, 0.0]])
        for beta in (0.0, 3.0):
            dtheta, dr = _velocity(scheme, pair, np.ones(2), beta)
            np.testing.assert_allclose(dtheta, 0, atol=1e-15)
            assert np.all(np.isfinite(dr))
        if scheme in ("pre", "peri"):  # a lone token: dr/dt = ⟨θ, A⟩ (/|A|) = 1
            np.testing.assert_allclose(_velocity(scheme, np.array([[0.6, 0.8]]), np.ones(1), 3.0)[1], 1)
    pair = np.array([[[1.0, 0.0], [-1.0, 0.0]]])
    two = particles.simulate(pair, "ngpt", beta=np.array([0.0, 3.0]), t1=5.0, ts=[0.0, 5.0])
    assert np.all(np.isfinite(two.x)) and np.all(two.status == 0)
    np.testing.assert_allclose(np.sum(two.theta[:, -1, 0] * two.theta[:, -1, 1], -1), -1, atol=1e-12)


def test_float32_runs_to_t1000_stay_on_the_sphere():
    """Also softmax at beta = 1e3 in float32 (no overflow)."""
    x0 = np.asarray(particles.init.uniform_sphere(4, 6, 4, batch=2), np.float32)
    betas = np.array([1.0, 1000.0], np.float32)
    traj = particles.simulate(x0, "post", beta=betas, t1=1000.0, ts=[1.0, 100.0, 1000.0])
    assert traj.theta.dtype == jnp.float32 and np.all(np.isfinite(traj.x))
    np.testing.assert_array_equal(traj.r, 1)
    np.testing.assert_allclose(np.linalg.norm(traj.x, axis=-1), 1, atol=1e-5)


# 4. Partial failure in a batch. "none" with USA blows up in finite time, ~E1(β|x|²)/2.


def _blowup_batch():
    x = np.asarray(particles.init.uniform_sphere(5, 3, 2))
    return np.stack([0.3 * x, 2.0 * x])  # the small one stays finite to t1 = 1; the big one blows up


def test_failed_trajectories_are_marked_the_others_kept(tmp_path):
    kw = dict(beta=1.0, t1=1.0, ts=[0.0, 0.5, 1.0], attention="usa", max_steps=200)
    x0 = _blowup_batch()
    with pytest.warns(particles.SimulationWarning, match="1 of 2 trajectories failed"):
        traj = particles.simulate(x0, "none", **kw)
    np.testing.assert_array_equal(traj.status, [0, 2])
    assert traj.stats["num_failed"] == 1
    alone = particles.simulate(x0[0], "none", **kw)  # the survivor: as if solved on its own
    np.testing.assert_array_equal(traj.x[0], alone.x)
    assert np.isnan(traj.x[1, -1]).all()  # unreached saves are NaN, marked by status
    reached = ~np.isnan(np.asarray(traj.r[1])).any(-1)
    assert np.all(np.isfinite(traj.x[1][reached]))
    path = tmp_path / "run.nc"
    traj.save(path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        np.testing.assert_array_equal(ds["status"].values, [0, 2])
        assert ds["status"].attrs["flag_meanings"] == "ok nonfinite max_steps"
    np.testing.assert_array_equal(particles.load(path).status, [0, 2])
    with pytest.raises(particles.SimulationError, match="max_steps=200"):
        particles.simulate(x0[1], "none", **kw)
    with pytest.warns(particles.SimulationWarning, match="2 of 2"):  # a batch never raises
        assert np.all(particles.simulate(x0[[1, 1]], "none", **kw).status == 2)


def test_nonfinite_state_under_constant_steps_is_marked():
    """Constant steps accept any step: a blow-up gives NaN/inf state, marked status 1
    (single trajectory: SimulationError), never returned silently."""
    import diffrax

    kw = dict(beta=1.0, t1=1.0, ts=[0.5, 1.0], attention="usa", solver=diffrax.Euler(), step_size=0.05)
    x0 = _blowup_batch()
    with pytest.warns(particles.SimulationWarning):
        traj = particles.simulate(x0, "none", **kw)
    np.testing.assert_array_equal(traj.status, [0, 1])
    assert np.all(np.isfinite(traj.x[0]))
    with pytest.raises(particles.SimulationError, match="non-finite"):
        particles.simulate(x0[1], "none", **kw)


def test_sweep_marks_failed_seeds_and_cli_counts_them(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["sweep", "--schemes", "none", "--attention", "usa", "--init", "gaussian", "--beta", "0.2,0.25"]
    argv += ["--n", "3", "--d", "2", "--seeds", "2", "--t1", "1", "--save-every", "0.5", "--x64"]
    argv += ["--max-steps", "200", "--observables", "mean_cosine,cluster_count", "--no-progress"]
    assert main(argv + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    ds = particles.open_sweep(out)
    failed = ds["status"].values != 0
    assert failed.any() and not failed.all()
    assert f"failed trajectories: {failed.sum()} of {failed.size}" in text
    assert np.isnan(ds["collapse_time"].values[failed]).all()
    for name in ("mean_cosine", "cluster_count"):
        v = ds[name].values
        assert np.isnan(v[failed][:, -1]).all() and np.isfinite(v[~failed]).all()


# 5. Files: every write goes through the atomic helper; an interrupted write keeps the old file.


def test_every_writer_is_atomic():
    """No module writes a file except through ``atomic_path`` (temporary file + rename)."""
    root = os.path.dirname(particles.__file__)
    writes = re.compile(
        r"to_netcdf\(|savefig\(|np\.save\(|open\([^)]*[\"'][wa]b?[\"']|\.write_(text|bytes)\("
    )
    offenders = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                for k, line in enumerate(open(path), 1):
                    if writes.search(line) and "tmp" not in line:
                        offenders.append(f"{os.path.relpath(path, root)}:{k}: {line.strip()}")
    assert not offenders, offenders


def test_interrupted_simulate_out_keeps_previous_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run.nc"
    argv = ["simulate", "--n", "3", "--d", "2", "--t1", "0.5", "--out", str(out)]
    assert main(argv) == 0
    before = out.read_bytes()

    def half_written_then_interrupted(self, path, **kw):
        with open(path, "wb") as f:
            f.write(b"CDF partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_written_then_interrupted)
    assert main(argv[:-2] + ["--beta", "1", "--out", str(out)]) == 130
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["run.nc"]
    capsys.readouterr()


def test_pre_radius_reaching_zero_is_a_failure_not_a_negative_radius():
    """Pre at β < 0: ⟨θ_i, A_i⟩ < 0 shrinks a radius to 0 in finite time, where the
    polar form breaks down; the solver would step across to r < 0. Marked, not returned."""
    x0 = _tokens(187, 4, 3, log_radius=np.log(0.61165427))
    with pytest.raises(particles.SimulationError, match="radius reached 0"):
        particles.simulate(x0, "pre", beta=-3.0, t1=2.0, ts=TS, **ACC)
