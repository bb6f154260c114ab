"""Trained checkpoints in (issue 27): particles.from_checkpoint against the independent numpy reference
tests/_hf_reference.py (itself checked against transformers) layer by layer in float64, for every
architecture and the layouts found on the Hub; the new model parts (GatedMLP, tanh GELU, the affine
attention with O and biases, a separate MLP norm, SlidingWindow) against formulas written here in numpy;
and bad input, refused in one line, pickles never unpickled."""

import json
import math
import pathlib
import pickle
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from _hf_reference import ARCHS, numpy_forward, write_tiny_checkpoint

import particles
from particles.schemes import get_scheme

IDS = np.array([3, 14, 15, 9, 26, 5, 35, 8, 9, 7])
TYPES = np.array([0, 0, 0, 1, 1, 1, 1, 0, 1, 1])
TOL = 1e-10


def _write(tmp_path, arch, name="ckpt", **kwargs):
    folder = tmp_path / name
    write_tiny_checkpoint(arch, folder, **kwargs)
    return folder


def _run(path, ids=IDS, token_type_ids=None, arch=None, layers=None, dtype=np.float64):
    """The Transformer read from ``path`` and the tokens x of its saves (..., L+1, n, d) on ``ids``."""
    tf = particles.from_checkpoint(path, arch, dtype=dtype)
    traj = particles.simulate(tf.embed(ids, token_type_ids), tf, layers=layers)
    return tf, np.asarray(traj.x)


def _assert_matches(tf, x, ref, tol=TOL):
    """x (..., L+1, n, d) equals the reference's hidden states (L+1, ..., n, d), its final norm ``final``."""
    hidden = np.moveaxis(np.asarray(ref["hidden"]), 0, -3)
    assert x.shape == hidden.shape
    np.testing.assert_allclose(x, hidden, atol=tol, rtol=0)
    final = tf.final_norm(x[..., -1, :, :])
    if ref["final"] is None:
        assert tf.final is None
        np.testing.assert_array_equal(final, x[..., -1, :, :])
    else:
        np.testing.assert_allclose(final, ref["final"], atol=tol, rtol=0)


# -- every architecture against the reference ----------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_hidden_states_match_the_reference(tmp_path, arch):
    """simulate(tf.embed(ids), tf) saves the reference's residual stream at every layer, final norm too."""
    folder = _write(tmp_path, arch)
    tf, x = _run(folder)
    assert tf.arch == arch and tf.dtype == np.float64
    assert x.shape[0] == {"albert": 3}.get(arch, 2) + 1
    _assert_matches(tf, x, numpy_forward(folder, IDS))


@pytest.mark.parametrize("arch", ["bert", "albert", "gpt2"])
def test_token_types(tmp_path, arch):
    """Non-zero token_type_ids add their embedding rows (GPT-2: rows of wte, as transformers does),
    as in the reference (and change the result)."""
    folder = _write(tmp_path, arch)
    tf, x = _run(folder, token_type_ids=TYPES)
    ref = numpy_forward(folder, IDS, token_type_ids=TYPES)
    _assert_matches(tf, x, ref)
    assert np.abs(ref["hidden"] - numpy_forward(folder, IDS)["hidden"]).max() > 1e-2


@pytest.mark.parametrize("arch", ["gpt2", "bert"])
def test_batch_of_ids(tmp_path, arch):
    """Token ids (2, n) give a batch of two trajectories, each the reference's (bert: with a batch of types)."""
    folder = _write(tmp_path, arch)
    ids = np.stack([IDS, IDS[::-1]])
    types = np.stack([TYPES, 1 - TYPES]) if arch == "bert" else None
    tf, x = _run(folder, ids=ids, token_type_ids=types)
    assert x.shape[:2] == (2, 3)
    _assert_matches(tf, x, numpy_forward(folder, ids, token_type_ids=types))


@pytest.mark.parametrize(
    "arch, layout",
    [("gpt2", dict(prefix=False)), ("gpt2", dict(legacy=True)), ("llama", dict(prefix=False)),
     ("bert", dict(legacy=True)), ("albert", dict(prefix=False, legacy=True))],
)  # fmt: skip
def test_layouts_of_the_hub(tmp_path, arch, layout):
    """Base-model names (no prefix) and legacy files (gamma/beta, mask and position_ids buffers) load."""
    folder = _write(tmp_path, arch, **layout)
    names = safetensors.numpy.load_file(folder / "model.safetensors")
    if layout.get("legacy"):
        assert any(k.endswith((".attn.bias", "LayerNorm.gamma")) for k in names)
    tf, x = _run(folder)
    _assert_matches(tf, x, numpy_forward(folder, IDS))


def test_llama_with_biases_and_wide_heads(tmp_path):
    """LLaMA with attention_bias, mlp_bias and head_dim=12 != hidden_size/heads=8 matches the reference."""
    folder = _write(tmp_path, "llama", attention_bias=True, mlp_bias=True, head_dim=12)
    tf, x = _run(folder)
    assert tf.attention["Q"].shape == (2, 4, 12, 32) and tf.attention["O"].shape == (2, 4, 32, 12)
    assert tf.attention["out_bias"] is not None and tf.mlp.b_gate.shape == (2, 48)
    assert tf.beta == pytest.approx(1 / math.sqrt(12))
    _assert_matches(tf, x, numpy_forward(folder, IDS))


def test_rope_parameters(tmp_path):
    """RoPE's base from transformers 5's rope_parameters (no rope_theta key) is used."""
    folder = _write(tmp_path, "llama", rope_parameters={"rope_type": "default", "rope_theta": 50.0})
    assert "rope_theta" not in json.loads((folder / "config.json").read_text())
    tf, x = _run(folder)
    ref = numpy_forward(folder, IDS)
    _assert_matches(tf, x, ref)
    other = _write(tmp_path, "llama", "other", rope_theta=10000.0)
    assert np.abs(numpy_forward(other, IDS)["hidden"] - ref["hidden"]).max() > 1e-3  # the base matters


def test_mistral_sliding_window(tmp_path):
    """Mistral's sliding_window=3 < n masks keys 3 or more tokens back, as the reference does."""
    folder = _write(tmp_path, "mistral", sliding_window=3)
    tf, x = _run(folder)
    assert tf.position.label == "rope+window"
    ref = numpy_forward(folder, IDS)
    _assert_matches(tf, x, ref)
    causal = numpy_forward(_write(tmp_path, "mistral", "causal"), IDS)
    assert np.abs(causal["hidden"] - ref["hidden"]).max() > 1e-3  # the window matters
    np.testing.assert_array_equal(causal["hidden"][:, :3], ref["hidden"][:, :3])  # not for the first 3


def test_float32_weights_read_as_float64(tmp_path):
    """float32-stored weights read with dtype=float64 run in float64 and equal the reference to 1e-10;
    read with dtype=float32 they run in float32, to float32's precision."""
    folder = _write(tmp_path, "gpt2", dtype=np.float32)
    assert (
        safetensors.numpy.load_file(folder / "model.safetensors")["transformer.wte.weight"].dtype
        == np.float32
    )
    ref = numpy_forward(folder, IDS)
    tf, x = _run(folder, dtype=np.float64)
    assert tf.dtype == np.float64 and x.dtype == np.float64
    _assert_matches(tf, x, ref)
    tf32, x32 = _run(folder, dtype=np.float32)
    assert tf32.dtype == np.float32 and x32.dtype == np.float32
    np.testing.assert_allclose(x32, ref["hidden"], atol=1e-4, rtol=0)


def _shard(folder, out):
    """Split folder's model.safetensors into two files with an index.json, as save_pretrained does."""
    out.mkdir()
    tensors = safetensors.numpy.load_file(folder / "model.safetensors")
    keys = sorted(tensors)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for name, part in zip(names, (keys[: len(keys) // 2], keys[len(keys) // 2 :])):
        safetensors.numpy.save_file({k: tensors[k] for k in part}, out / name, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, name)
    size = sum(t.nbytes for t in tensors.values())
    index = {"metadata": {"total_size": size}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    shutil.copy(folder / "config.json", out / "config.json")
    return names


def test_sharded_checkpoint(tmp_path):
    """Two shards named by model.safetensors.index.json's weight_map are one checkpoint; a missing shard is named."""
    folder = _write(tmp_path, "gpt2")
    sharded = tmp_path / "sharded"
    names = _shard(folder, sharded)
    tf, x = _run(sharded)
    _assert_matches(tf, x, numpy_forward(folder, IDS))
    (sharded / names[1]).unlink()
    with pytest.raises(ValueError, match=f"the index names {names[1]}"):
        particles.from_checkpoint(sharded)


def test_single_file_with_config_beside_it(tmp_path):
    """A .safetensors file is read with the config.json of its folder."""
    folder = _write(tmp_path, "qwen2")
    tf, x = _run(folder / "model.safetensors")
    assert tf.arch == "qwen2"
    _assert_matches(tf, x, numpy_forward(folder, IDS))


@pytest.mark.parametrize(
    "arch, sizes",
    [("gpt2", dict(n_embd=128, n_head=2, n_layer=1, n_positions=16)),
     ("llama", dict(hidden_size=128, num_attention_heads=1, num_key_value_heads=1, head_dim=128,
                    num_hidden_layers=1, rope_theta=10000.0)),
     ("llama", dict(hidden_size=256, num_attention_heads=2, num_key_value_heads=1, head_dim=128,
                    num_hidden_layers=1, rope_theta=10000.0))],  # grouped-query heads, read from k_proj
)  # fmt: skip
def test_single_file_without_config(tmp_path, arch, sizes):
    """A lone .safetensors file with arch=: sizes from the tensors, heads of 64 (GPT-2) or 128 (LLaMA
    family) dimensions and the architecture's defaults (activation, eps, RoPE base) give the model."""
    folder = _write(tmp_path, arch, **sizes)
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(folder / "model.safetensors", lone / "weights.safetensors")
    tf, x = _run(lone / "weights.safetensors", arch=arch)
    assert (
        tf.config == {}
        and tf.num_layers == 1
        and tf.attention["Q"].shape[1] == sizes.get("n_head", sizes.get("num_attention_heads"))
    )
    _assert_matches(tf, x, numpy_forward(folder, IDS))
    with pytest.raises(ValueError, match="has no config.json beside it, so no model_type; give arch="):
        particles.from_checkpoint(lone / "weights.safetensors")


def test_single_file_without_config_refused_where_sizes_are_unknown(tmp_path):
    """Without config.json a BERT file (whose sizes the tensors do not give) and a GPT-2 of d < 64 are refused."""
    for arch in ("bert", "gpt2"):
        folder = _write(tmp_path, arch, arch)
        shutil.copy(folder / "model.safetensors", tmp_path / f"{arch}.safetensors")
    with pytest.raises(ValueError, match="hidden_size"):
        particles.from_checkpoint(tmp_path / "bert.safetensors", "bert")
    with pytest.raises(ValueError, match=r"^config.json has no 'n_head', and d=24 is no multiple of .* 64"):
        particles.from_checkpoint(tmp_path / "gpt2.safetensors", "gpt2")


@pytest.mark.parametrize("arch, key", [("gpt2", "activation_function"), ("albert", "hidden_act")])
def test_config_without_activation_uses_the_default(tmp_path, arch, key):
    """A config.json without the activation key gets transformers' default (gelu_new for GPT-2 and ALBERT)."""
    folder = _write(tmp_path, arch)
    config = json.loads((folder / "config.json").read_text())
    assert config.pop(key) == "gelu_new"
    (folder / "config.json").write_text(json.dumps(config))
    tf, x = _run(folder)
    assert tf.mlp.activation == "gelu_tanh"
    _assert_matches(tf, x, numpy_forward(folder, IDS))


def test_fewer_layers(tmp_path):
    """layers=1 of a 2-layer GPT-2 runs its first layer: the reference's first two saves."""
    folder = _write(tmp_path, "gpt2")
    tf, x = _run(folder, layers=1)
    assert x.shape[0] == 2
    np.testing.assert_allclose(x, numpy_forward(folder, IDS)["hidden"][:2], atol=TOL, rtol=0)


def test_albert_iterates_its_shared_layer(tmp_path):
    """ALBERT with layers=2L=6 equals the reference of the same weights with num_hidden_layers=6."""
    folder = _write(tmp_path, "albert")
    deep = _write(tmp_path, "albert", "deep", num_hidden_layers=6)
    weights, deep_weights = (safetensors.numpy.load_file(f / "model.safetensors") for f in (folder, deep))
    assert weights.keys() == deep_weights.keys()
    assert all(np.array_equal(weights[k], deep_weights[k]) for k in weights)  # one shared layer, same draw
    tf, x = _run(folder, layers=6)
    assert tf.num_layers == 3 and tf.shared_layers
    _assert_matches(tf, x, numpy_forward(deep, IDS))


def test_gpt2_deeper_than_trained_is_refused(tmp_path):
    """layers > L for a model without a shared layer is a one-line error."""
    tf = particles.from_checkpoint(_write(tmp_path, "gpt2"))
    with pytest.raises(ValueError, match=r"^layers=3 exceeds this gpt2 model's 2 layers"):
        particles.simulate(tf.embed(IDS), tf, layers=3)


# -- the new model parts against formulas ---------------------------------------------------------------


def _silu(u):
    return u / (1 + np.exp(-u))


def _gelu_tanh(u):
    return 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u**3)))


def _layer_norm(x, gamma, bias, eps):
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * gamma + bias


def _rms_norm(x, gamma, eps):
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * gamma


def _softmax_rows(logits):
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def test_gated_mlp_against_its_formula():
    """GatedMLP(W_g, W1, W2, b_g, b1, b2) of layer l is W2 (silu(W_g y + b_g) * (W1 y + b1)) + b2."""
    rng = np.random.default_rng(1)
    L, m, d = 2, 5, 4
    Wg, W1, W2 = rng.normal(size=(L, m, d)), rng.normal(size=(L, m, d)), rng.normal(size=(L, d, m))
    bg, b1, b2 = rng.normal(size=(L, m)), rng.normal(size=(L, m)), rng.normal(size=(L, d))
    y = rng.normal(size=(3, d))
    mlp = particles.GatedMLP(Wg, W1, W2, bg, b1, b2)
    assert mlp.activation == "silu" and mlp.num_layers == L
    for layer in range(L):
        want = (_silu(y @ Wg[layer].T + bg[layer]) * (y @ W1[layer].T + b1[layer])) @ W2[layer].T + b2[layer]
        np.testing.assert_allclose(mlp.at_layer(layer)(jnp.asarray(y)), want, atol=1e-12, rtol=0)
    bare = particles.GatedMLP(Wg[0], W1[0], W2[0])  # no biases: zero
    np.testing.assert_allclose(
        bare(jnp.asarray(y)), (_silu(y @ Wg[0].T) * (y @ W1[0].T)) @ W2[0].T, atol=1e-12, rtol=0
    )
    with pytest.raises(ValueError, match=r"^W_gate has shape \(5, 3\)"):
        particles.GatedMLP(Wg[0, :, :3], W1[0], W2[0])


def test_gelu_tanh_and_silu_activations():
    """MLP with "gelu_tanh" is W2 gelu_tanh(W1 y + b1) + b2 (and differs from the erf GELU); "silu" likewise."""
    rng = np.random.default_rng(2)
    W1, W2, b1, b2 = rng.normal(size=(6, 3)), rng.normal(size=(3, 6)), rng.normal(size=6), rng.normal(size=3)
    y = 2 * rng.normal(size=(4, 3))
    for name, act in (("gelu_tanh", _gelu_tanh), ("silu", _silu)):
        got = particles.MLP(W1, W2, b1, b2, activation=name)(jnp.asarray(y))
        np.testing.assert_allclose(got, act(y @ W1.T + b1) @ W2.T + b2, atol=1e-12, rtol=0)
    erf = particles.MLP(W1, W2, b1, b2, activation="gelu")(jnp.asarray(y))
    assert np.abs(erf - (_gelu_tanh(y @ W1.T + b1) @ W2.T + b2)).max() > 1e-6


def _affine_attention(rng, heads=3, d=6, d_k=4, d_v=5):
    return dict(
        Q=rng.normal(size=(heads, d_k, d)), K=rng.normal(size=(heads, d_k, d)), V=rng.normal(size=(heads, d_v, d)),
        O=rng.normal(size=(heads, d, d_v)), q_bias=rng.normal(size=(heads, d_k)),
        k_bias=rng.normal(size=(heads, d_k)), out_bias=rng.normal(size=d),
    )  # fmt: skip


def _numpy_attention(x, beta, Q, K, V, O, q_bias, k_bias, out_bias, allowed):
    """Σ_h O_h V_h Σ_j w^h_ij x_j + out_bias, w^h = softmax_j(β (Q_h x_i + bq_h)·(K_h x_j + bk_h)) where allowed."""
    out = np.zeros_like(x)
    for h in range(Q.shape[0]):
        q, k = x @ Q[h].T + q_bias[h], x @ K[h].T + k_bias[h]
        w = _softmax_rows(np.where(allowed, beta * q @ k.T, -np.inf))
        out += (w @ x) @ V[h].T @ O[h].T
    return out + out_bias


def test_affine_attention_against_numpy():
    """The field A_i with rectangular Q, K (d_k < d), biases, V (d_v, d), O (d, d_v), out_bias, 3 heads,
    causal, equals a plain numpy multi-head attention."""
    rng = np.random.default_rng(3)
    w = _affine_attention(rng)
    x = rng.normal(size=(7, 6))
    problem = particles.make_problem(x, "pre", beta=0.7, t1=1.0, causal=True, **w)
    got = np.asarray(problem.attention(0.0, jnp.asarray(x)))
    i, j = np.arange(7)[:, None], np.arange(7)[None, :]
    np.testing.assert_allclose(got, _numpy_attention(x, 0.7, **w, allowed=j <= i), atol=1e-12, rtol=0)
    full = np.asarray(particles.make_problem(x, "pre", beta=0.7, t1=1.0, **w).attention(0.0, jnp.asarray(x)))
    np.testing.assert_allclose(full, _numpy_attention(x, 0.7, **w, allowed=True), atol=1e-12, rtol=0)


def test_sliding_window_masks():
    """SlidingWindow(3): key j is masked for j > i or i - j >= 3; the field attends within the window."""
    n, width = 8, 3
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    allowed = (j <= i) & (i - j < width)
    logits = np.asarray(particles.SlidingWindow(width).logits(np.zeros((n, n)), np.arange(n), np.arange(n)))
    np.testing.assert_array_equal(np.isfinite(logits), allowed)
    x = np.random.default_rng(4).normal(size=(n, 4))
    problem = particles.make_problem(x, "pre", beta=1.3, t1=1.0, position=particles.SlidingWindow(width))
    want = _softmax_rows(np.where(allowed, 1.3 * x @ x.T, -np.inf)) @ x
    np.testing.assert_allclose(np.asarray(problem.attention(0.0, jnp.asarray(x))), want, atol=1e-12, rtol=0)
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match=r"^SlidingWindow width="):
            particles.SlidingWindow(bad)


@pytest.mark.parametrize("scheme", ["pre", "post"])
def test_layer_with_its_own_mlp_norm(scheme):
    """A layer with norm (layernorm) and a different mlp_norm (rmsnorm): pre x+A(N1 x), then +F(N2 x);
    post N1(x+A(x)), then N2(x+F(x)); through make_problem's layers=1 and through scheme.layer."""
    rng = np.random.default_rng(5)
    n, d, m = 5, 6, 7
    w = _affine_attention(rng, heads=2, d=d, d_k=4, d_v=3)
    g1, b1, g2 = 1 + 0.1 * rng.normal(size=d), 0.1 * rng.normal(size=d), 1 + 0.1 * rng.normal(size=d)
    W1, W2, c1, c2 = rng.normal(size=(m, d)), rng.normal(size=(d, m)), rng.normal(size=m), rng.normal(size=d)
    norm = particles.Norm("layernorm", gamma=g1, bias=b1, eps=1e-5)
    mlp_norm = particles.Norm("rmsnorm", gamma=g2, eps=1e-6)
    mlp = particles.MLP(W1, W2, c1, c2, activation="gelu_tanh")
    x = rng.normal(size=(n, d))
    A = lambda y: _numpy_attention(y, 0.5, **w, allowed=True)  # noqa: E731
    F = lambda y: _gelu_tanh(y @ W1.T + c1) @ W2.T + c2  # noqa: E731
    N1 = lambda y: _layer_norm(y, g1, b1, 1e-5)  # noqa: E731
    N2 = lambda y: _rms_norm(y, g2, 1e-6)  # noqa: E731
    if scheme == "pre":
        y = x + A(N1(x))
        want = y + F(N2(y))
    else:
        y = N1(x + A(x))
        want = N2(y + F(y))
    problem = particles.make_problem(
        x, scheme, beta=0.5, t1=1.0, layers=1, norm=norm, mlp=mlp, mlp_norm=mlp_norm, **w
    )
    config = particles.SolveConfig()
    traj = particles.Trajectory.from_raw(particles.integrate(problem, config), problem, config)
    np.testing.assert_allclose(np.asarray(traj.x)[-1], want, atol=1e-12, rtol=0)
    direct = get_scheme(scheme).layer(
        0.0, jnp.asarray(x), 1.0, lambda y: problem.attention(0.0, y), mlp, norm, mlp_norm
    )
    np.testing.assert_allclose(np.asarray(direct), want, atol=1e-12, rtol=0)
    same = get_scheme(scheme).layer(0.0, jnp.asarray(x), 1.0, lambda y: problem.attention(0.0, y), mlp, norm)
    assert np.abs(np.asarray(same) - want).max() > 1e-3  # mlp_norm is used


@pytest.mark.parametrize(
    "bad, match",
    [(dict(O=np.ones((3, 5, 5))), r"^O has shape \(3, 5, 5\)"),
     (dict(O=np.ones((3, 6, 4))), r"^O has shape \(3, 6, 4\)"),
     (dict(O=np.ones((2, 6, 5))), r"^O has 2 heads where the attention has 3; give 1 or 3"),
     (dict(O=None), r"^V has shape \(3, 5, 6\); expected \(d, d\)"),
     (dict(q_bias=np.ones((2, 4))), r"^q_bias has 2 heads where the attention has 3"),
     (dict(q_bias=np.ones((3, 5))), r"^q_bias has shape \(3, 5\)"),
     (dict(k_bias=np.ones((1, 1, 3, 3))), r"^k_bias has shape \(1, 1, 3, 3\)"),
     (dict(out_bias=np.ones(5)), r"^out_bias has shape \(5,\)"),
     (dict(out_bias=np.ones((1, 2, 6))), r"^out_bias has shape \(1, 2, 6\)")],
)  # fmt: skip
def test_bad_affine_shapes(bad, match):
    """Wrong shapes of O, q_bias, k_bias, out_bias (sizes, ranks, head counts; a rectangular V without O)
    are one-line errors naming the argument."""
    w = _affine_attention(np.random.default_rng(6)) | bad
    with pytest.raises(ValueError, match=match) as info:
        particles.make_problem(np.ones((4, 6)), "pre", beta=1.0, t1=1.0, **w)
    assert "\n" not in str(info.value)


# -- bad input -------------------------------------------------------------------------------------------


def _one_line(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_bad_folders_and_configs(tmp_path):
    """No config.json, no model_type, an unknown model_type: one-line errors."""
    folder = _write(tmp_path, "gpt2")
    (folder / "config.json").unlink()
    _one_line(lambda: particles.from_checkpoint(folder), "has no config.json")
    (folder / "config.json").write_text(json.dumps({"n_embd": 24}))
    _one_line(lambda: particles.from_checkpoint(folder), "has no model_type; give arch=")
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    _one_line(
        lambda: particles.from_checkpoint(folder), r"^arch \(model_type\)='t5' is not one of: gpt2, llama"
    )
    (folder / "config.json").write_text("{not json")
    _one_line(lambda: particles.from_checkpoint(folder), "is not valid JSON")
    _one_line(lambda: particles.from_checkpoint(tmp_path / "nowhere"), "does not exist")


def test_missing_and_misshapen_tensors(tmp_path):
    """A tensor deleted from the file is named; a tensor whose shape disagrees with config.json is named."""
    folder = _write(tmp_path, "llama")
    file = folder / "model.safetensors"
    tensors = safetensors.numpy.load_file(file)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    safetensors.numpy.save_file(tensors, file)
    _one_line(lambda: particles.from_checkpoint(folder), "has no tensor 'layers.1.mlp.up_proj.weight'")
    shaped = _write(tmp_path, "llama", "shaped")
    config = json.loads((shaped / "config.json").read_text())
    (shaped / "config.json").write_text(json.dumps(config | {"intermediate_size": 40}))
    _one_line(
        lambda: particles.from_checkpoint(shaped),
        r"^tensor 'layers.0.mlp.gate_proj.weight' has shape \(48, 32\); the config says \(40, 32\)",
    )


def test_bad_token_ids(tmp_path):
    """Ids outside the vocabulary (negative, too large), float ids, no ids, too many tokens for the
    learned positions, token types for a model without them: one-line errors."""
    gpt2 = particles.from_checkpoint(_write(tmp_path, "gpt2"))
    for ids, match in (([3, -1], r"1 id\(s\) outside the vocabulary \[0, 50\), the first -1"),
                       ([3, 50, 51], r"2 id\(s\) outside the vocabulary \[0, 50\), the first 50"),
                       ([3.0, 4.0], "must be integers"), (np.array([], int), "must be integers"),
                       (np.zeros((1, 1, 2), int), "must be integers"),
                       (np.arange(33) % 50, "has 33 tokens; this model has learned positions for 32")):  # fmt: skip
        _one_line(lambda: gpt2.embed(ids), match)
    llama = particles.from_checkpoint(_write(tmp_path, "llama", "llama"))
    _one_line(lambda: llama.embed(IDS, TYPES), "no token-type embeddings")
    bert = particles.from_checkpoint(_write(tmp_path, "bert", "bert"))
    _one_line(lambda: bert.embed(IDS, np.full(10, 2)), "token_type_ids has 10 id")
    _one_line(lambda: bert.embed(IDS, TYPES[:5]), r"token_type_ids has shape \(5,\)")


class _Touch:
    """Unpickling it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_weights_are_refused(tmp_path):
    """pytorch_model.bin alone, a .pt file, and a pickle named .safetensors are refused, never unpickled."""
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Touch(marker))
    pickle.loads(payload)  # the payload works: unpickling it creates the marker
    assert marker.exists()
    marker.unlink()
    folder = tmp_path / "torch"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "pytorch_model.bin").write_bytes(payload)
    _one_line(
        lambda: particles.from_checkpoint(folder),
        "pytorch_model.bin.*unpickling can run arbitrary code.*safe",
    )
    (folder / "model.pt").write_bytes(payload)
    _one_line(
        lambda: particles.from_checkpoint(folder / "model.pt"),
        "model.pt' is not safetensors: unpickling can run arbitrary code; convert it to safetensors",
    )
    (folder / "model.safetensors").write_bytes(payload)
    for path in (folder, folder / "model.safetensors"):  # safetensors' parser rejects it
        _one_line(
            lambda: particles.from_checkpoint(path), "model.safetensors' is not a valid safetensors file"
        )
    assert not marker.exists()


def test_continuous_depth_field_of_gpt2_is_the_sum_of_its_sublayers(tmp_path):
    """tf.as_ode(): dx/dt = A_l(LN₁x) + F_l(LN₂x) for l ≤ t < l + 1 (the small-step limit of
    pre-LN layers), the right-hand side written here from GPT-2's description."""
    from _hf_reference import (
        attention,
        causal_mask,
        gelu_tanh,
        layer_norm,
        load_base_weights,
        merge_heads,
        split_heads,
    )

    folder = _write(tmp_path, "gpt2")
    config = json.loads((folder / "config.json").read_text())
    w, heads, eps = load_base_weights(folder, "gpt2"), config["n_head"], config["layer_norm_epsilon"]
    tf = particles.from_checkpoint(folder, dtype=np.float64).as_ode()
    x = np.asarray(tf.embed(IDS))
    problem = particles.make_problem(x, tf)
    assert problem.layers is None and problem.t1 == tf.num_layers
    for t, layer in ((0.5, 0), (1.25, 1)):
        p = f"h.{layer}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = np.split(a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"], 3, axis=-1)
        scale = 1 / np.sqrt(x.shape[-1] // heads)
        o = merge_heads(attention(*(split_heads(z, heads) for z in (q, k, v)), scale, causal_mask(len(IDS))))
        want = o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = gelu_tanh(layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps) @ w[p + "mlp.c_fc.weight"]
                      + w[p + "mlp.c_fc.bias"])  # fmt: skip
        want = want + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        r = np.linalg.norm(x, axis=-1)
        dtheta, dr = problem.scheme.velocity(
            t, jnp.asarray(x / r[:, None]), jnp.asarray(r), problem.attention
        )
        got = r[:, None] * np.asarray(dtheta) + np.asarray(dr)[:, None] * x / r[:, None]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    traj = particles.simulate(x, tf, t1=0.5, ts=[0.5], rtol=1e-10, atol=1e-10)
    assert np.all(np.isfinite(np.asarray(traj.x)))
    with pytest.raises(ValueError, match="give t1"):
        particles.simulate(x, tf, layers=2)
    bert = particles.from_checkpoint(_write(tmp_path, "bert", name="bert"), dtype=np.float64).as_ode()
    with pytest.raises(ValueError, match="no ODE limit") as info:
        particles.simulate(bert.embed(IDS), bert)
    assert "\n" not in str(info.value)


def test_bfloat16_weights_are_read_as_the_dtype_asked(tmp_path):
    """A checkpoint stored in bfloat16 (as most LLaMA-family files are) runs as the reference on
    the same bf16-rounded weights, to 1e-10 in float64."""
    import ml_dtypes

    folder, rounded = _write(tmp_path, "llama"), tmp_path / "rounded"
    rounded.mkdir()
    shutil.copy(folder / "config.json", rounded / "config.json")
    tensors = safetensors.numpy.load_file(folder / "model.safetensors")
    bf16 = {k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()}
    safetensors.numpy.save_file(bf16, folder / "model.safetensors", metadata={"format": "pt"})
    as_f32 = {k: v.astype(np.float32) for k, v in bf16.items()}
    safetensors.numpy.save_file(as_f32, rounded / "model.safetensors", metadata={"format": "pt"})
    tf, x = _run(folder)
    assert tf.dtype == np.float64
    _assert_matches(tf, x, numpy_forward(rounded, IDS))
