"""The numpy reference for Hugging Face checkpoints (tests/_hf_reference.py) checked on its own:
shapes, causality, the sliding window, grouped-query heads against explicitly repeated ones, ALBERT's
sharing against repeated BERT layers, RoPE's relative property, the norms; and, where transformers and
torch are installed (the ``hf`` extra), against transformers itself in float64 (TestAgainstTransformers).

Those cross-checks run apart from the package's environment, e.g.
``pytest --noconftest -o addopts="" tests/test_hf_reference.py`` in a venv with numpy, safetensors,
pytest, torch and transformers only (this file never imports ``particles``)."""

import json

import numpy as np
import pytest
from _hf_reference import (
    ARCHS,
    LLAMA_FAMILY,
    apply_rope,
    load_base_weights,
    numpy_forward,
    rope_tables,
    write_checkpoint,
    write_tiny_checkpoint,
)
from safetensors.numpy import load_file

IDS = np.array([3, 14, 15, 9, 26, 5, 35, 8, 9, 7])
CAUSAL = ("gpt2", *LLAMA_FAMILY)


def _tiny(tmp_path, arch, name="ckpt", **kwargs):
    folder = tmp_path / name
    config = write_tiny_checkpoint(arch, folder, **kwargs)
    return folder, config


def _width(config):
    return config.get("n_embd") or config["hidden_size"]


def _layers(config):
    return config.get("n_layer") or config["num_hidden_layers"]


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_key_layout(tmp_path, arch):
    folder, config = _tiny(tmp_path, arch)
    out = numpy_forward(folder, IDS)
    L, d = _layers(config), _width(config)
    assert out["hidden"].shape == (L + 1, len(IDS), d)
    assert out["hidden"].dtype == np.float64 and np.all(np.isfinite(out["hidden"]))
    if arch in ("bert", "albert"):
        assert out["final"] is None
    else:
        assert out["final"].shape == (len(IDS), d)
    # O(1) activations, nothing degenerate: every layer moves the residual stream
    assert 0.1 < np.abs(out["hidden"]).max() < 20
    assert np.all(np.abs(np.diff(out["hidden"], axis=0)).max(axis=(1, 2)) > 1e-2)
    keys = load_file(folder / "model.safetensors")
    expected = {
        "gpt2": {
            "transformer.h.1.attn.c_attn.weight": (d, 3 * d),
            "transformer.h.0.mlp.c_fc.weight": (d, 4 * d),
        },
        "llama": {"model.layers.1.self_attn.k_proj.weight": (16, d), "lm_head.weight": (50, d)},
        "qwen2": {
            "model.layers.0.self_attn.q_proj.bias": (32,),
            "model.layers.0.self_attn.k_proj.bias": (16,),
        },
        "mistral": {"model.layers.0.self_attn.o_proj.weight": (d, 32), "model.norm.weight": (d,)},
        "bert": {
            "bert.encoder.layer.1.attention.output.LayerNorm.bias": (d,),
            "cls.seq_relationship.weight": (2, d),
        },
        "albert": {
            "albert.encoder.embedding_hidden_mapping_in.weight": (d, 16),
            "albert.pooler.weight": (d, d),
        },
    }[arch]
    for key, shape in expected.items():
        assert keys[key].shape == shape
    if arch == "albert":  # one shared layer for all three
        assert not any("albert_layer_groups.1" in key or "albert_layers.1" in key for key in keys)


@pytest.mark.parametrize("arch", ARCHS)
def test_variants_give_the_same_model(tmp_path, arch):
    """prefix=False (base model names), float32 storage and the legacy names are the same model."""
    ref = numpy_forward(_tiny(tmp_path, arch)[0], IDS)
    bare_folder, _ = _tiny(tmp_path, arch, "bare", prefix=False)
    assert not any(
        key.split(".")[0] in ("transformer", "model", "bert", "albert", "lm_head", "cls")
        for key in load_file(bare_folder / "model.safetensors")
    )
    variants = {"bare": (bare_folder, 0.0), "f32": (_tiny(tmp_path, arch, "f32", dtype=np.float32)[0], 1e-5)}
    if arch in ("gpt2", "bert", "albert"):
        variants["legacy"] = (_tiny(tmp_path, arch, "legacy", legacy=True)[0], 0.0)
    for name, (folder, tol) in variants.items():
        out = numpy_forward(folder, IDS)
        np.testing.assert_allclose(out["hidden"], ref["hidden"], atol=tol, rtol=0, err_msg=name)
    with pytest.raises(AssertionError):  # another seed is another model
        np.testing.assert_allclose(
            numpy_forward(_tiny(tmp_path, arch, "s1", seed=1)[0], IDS)["hidden"], ref["hidden"]
        )


def test_legacy_names(tmp_path):
    keys = load_file(_tiny(tmp_path, "gpt2", legacy=True)[0] / "model.safetensors")
    assert keys["transformer.h.1.attn.bias"].shape == (1, 1, 32, 32)
    assert (
        keys["transformer.h.1.attn.bias"][0, 0, 3, 4] == 0
        and keys["transformer.h.1.attn.bias"][0, 0, 4, 3] == 1
    )
    keys = load_file(_tiny(tmp_path, "bert", "b", legacy=True)[0] / "model.safetensors")
    assert "bert.embeddings.LayerNorm.gamma" in keys and "bert.embeddings.LayerNorm.weight" not in keys
    assert keys["bert.embeddings.position_ids"].dtype == np.int64


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_is_per_sequence(tmp_path, arch):
    folder, _ = _tiny(tmp_path, arch)
    batch = np.stack([IDS, IDS[::-1]])
    out = numpy_forward(folder, batch)
    for b in range(2):
        one = numpy_forward(folder, batch[b])
        np.testing.assert_allclose(out["hidden"][:, b], one["hidden"], atol=1e-13, rtol=0)
        if one["final"] is not None:
            np.testing.assert_allclose(out["final"][b], one["final"], atol=1e-13, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_causality(tmp_path, arch):
    """Decoders: token k's states do not depend on later tokens (and do on earlier ones); encoders:
    every token sees all of them."""
    folder, _ = _tiny(tmp_path, arch)
    k = 5
    later, earlier = IDS.copy(), IDS.copy()
    later[k + 1] = 40
    earlier[k - 1] = 40
    ref, out_later, out_earlier = (numpy_forward(folder, ids)["hidden"] for ids in (IDS, later, earlier))
    past = np.abs(out_later[1:, : k + 1] - ref[1:, : k + 1]).max()
    assert np.abs(out_earlier[1:, k] - ref[1:, k]).max() > 1e-3
    assert np.abs(out_later[1:, k + 1 :] - ref[1:, k + 1 :]).max() > 1e-3
    if arch in CAUSAL:
        assert past == 0.0
    else:
        assert past > 1e-3


def test_sliding_window(tmp_path):
    """Mistral's window w: after one layer, query i sees keys i−w+1..i only."""
    w = 3
    folder, _ = _tiny(tmp_path, "mistral", num_hidden_layers=1, sliding_window=w)
    ids = IDS.copy()
    ids[2] = 40
    ref, out = numpy_forward(folder, IDS)["hidden"][1], numpy_forward(folder, ids)["hidden"][1]
    changed = np.abs(out - ref).max(axis=-1) > 0
    np.testing.assert_array_equal(changed, (np.arange(len(IDS)) >= 2) & (np.arange(len(IDS)) < 2 + w))


def _repeat_kv_heads(folder, out_folder, how):
    """The same LLaMA checkpoint with its K/V heads written out once per query head (no GQA)."""
    config = json.loads((folder / "config.json").read_text())
    tensors = load_file(folder / "model.safetensors")
    heads, kv_heads, dh = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    for key in list(tensors):
        if key.endswith(("k_proj.weight", "v_proj.weight")):
            t = tensors[key].reshape(kv_heads, dh, -1)
            t = (
                np.repeat(t, heads // kv_heads, axis=0)
                if how == "repeat"
                else np.tile(t, (heads // kv_heads, 1, 1))
            )
            tensors[key] = t.reshape(heads * dh, -1)
    write_checkpoint(out_folder, config | {"num_key_value_heads": heads}, tensors)


def test_grouped_query_heads_are_repeated_kv_heads(tmp_path):
    """Query head h reads K/V head h // (heads/kv_heads): the same as a checkpoint with every K/V head
    written out for its query heads (np.repeat), and not as one that cycles them (np.tile)."""
    folder, config = _tiny(tmp_path, "llama")
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    ref = numpy_forward(folder, IDS)["hidden"]
    _repeat_kv_heads(folder, tmp_path / "repeat", "repeat")
    np.testing.assert_allclose(numpy_forward(tmp_path / "repeat", IDS)["hidden"], ref, atol=1e-13, rtol=0)
    _repeat_kv_heads(folder, tmp_path / "tile", "tile")
    assert np.abs(numpy_forward(tmp_path / "tile", IDS)["hidden"] - ref).max() > 1e-3


def test_albert_is_bert_with_one_shared_layer(tmp_path):
    """ALBERT with L layers = L applications of its one layer: a BERT checkpoint holding L copies of it
    (with E = d and the embedding mapping set to the identity) gives the same hidden states; and the
    first states of a deeper ALBERT are those of a shallower one."""
    L, d = 3, 24
    folder, config = _tiny(tmp_path, "albert", num_hidden_layers=L, embedding_size=d, prefix=False)
    w = load_file(folder / "model.safetensors")
    w["encoder.embedding_hidden_mapping_in.weight"] = np.eye(d)
    w["encoder.embedding_hidden_mapping_in.bias"] = np.zeros(d)
    write_checkpoint(folder, config, w)
    names = {
        "attention.self.query": "attention.query",
        "attention.self.key": "attention.key",
        "attention.self.value": "attention.value",
        "attention.output.dense": "attention.dense",
        "attention.output.LayerNorm": "attention.LayerNorm",
        "intermediate.dense": "ffn",
        "output.dense": "ffn_output",
        "output.LayerNorm": "full_layer_layer_norm",
    }
    bert = {key: w[key] for key in w if key.startswith("embeddings.")}
    for i in range(L):
        for bert_name, albert_name in names.items():
            for suffix in (".weight", ".bias"):
                bert[f"encoder.layer.{i}.{bert_name}{suffix}"] = w[
                    f"encoder.albert_layer_groups.0.albert_layers.0.{albert_name}{suffix}"
                ]
    bert_config = {key: config[key] for key in ("hidden_size", "num_attention_heads", "intermediate_size")}
    bert_config |= {
        "model_type": "bert",
        "num_hidden_layers": L,
        "hidden_act": "gelu_new",
        "layer_norm_eps": 1e-12,
    }
    write_checkpoint(tmp_path / "bert", bert_config, bert)
    albert = numpy_forward(folder, IDS)["hidden"]
    np.testing.assert_allclose(numpy_forward(tmp_path / "bert", IDS)["hidden"], albert, atol=1e-13, rtol=0)

    deeper = tmp_path / "deeper"
    write_checkpoint(deeper, config | {"num_hidden_layers": L + 2}, w)
    out = numpy_forward(deeper, IDS)["hidden"]
    assert out.shape[0] == L + 3
    np.testing.assert_allclose(out[: L + 1], albert, atol=1e-13, rtol=0)
    assert np.abs(out[L + 1] - out[L]).max() > 1e-3


def test_rope_is_relative():
    """⟨R_m q, R_n k⟩ depends on m − n only (Su et al. 2104.09864), R_0 is the identity, and each
    rotation keeps the norm."""
    rng = np.random.default_rng(0)
    dh, theta = 8, 100.0
    q, k = rng.standard_normal(dh), rng.standard_normal(dh)
    cos, sin = rope_tables(20, dh, theta)
    rq, rk = apply_rope(np.tile(q, (20, 1)), cos, sin), apply_rope(np.tile(k, (20, 1)), cos, sin)
    np.testing.assert_allclose(rq[0], q, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(rq, axis=-1), np.linalg.norm(q), rtol=1e-14)
    for shift in (0, 3, 7):
        dots = np.array([rq[m + shift] @ rk[m] for m in range(20 - shift)])
        np.testing.assert_allclose(dots, dots[0], atol=1e-13)
    assert np.ptp([rq[m] @ rk[0] for m in range(5)]) > 1e-2  # and it does depend on m − n
    # frequency i turns the pair (i, i + dh/2), rotate_half's layout, by the angle m/θ^(2i/dh)
    m, i = 5, 1
    angle = m / theta ** (2 * i / dh)
    e = np.zeros(dh)
    e[i] = 1.0
    expected = np.zeros(dh)
    expected[i], expected[i + dh // 2] = np.cos(angle), np.sin(angle)
    np.testing.assert_allclose(apply_rope(e, cos[m], sin[m]), expected, atol=1e-15)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_final_is_the_final_norm_of_the_last_layer(tmp_path, arch):
    folder, config = _tiny(tmp_path, arch)
    out = numpy_forward(folder, IDS)
    w = load_base_weights(folder, arch)
    last = out["hidden"][-1]
    if arch == "gpt2":  # torch's LayerNorm: biased variance
        expected = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 1e-5)
        expected = expected * w["ln_f.weight"] + w["ln_f.bias"]
    else:
        expected = last / np.sqrt(np.mean(last**2, -1, keepdims=True) + 1e-6) * w["norm.weight"]
    np.testing.assert_allclose(out["final"], expected, atol=1e-13, rtol=0)
    assert np.abs(out["final"] - last).max() > 0.1


# --------------------------------------------------------------------------------------------------
# Against transformers (the ``hf`` extra); skipped without it
# --------------------------------------------------------------------------------------------------

# (arch, writer keyword arguments); every case compared in float64
HF_CASES = {
    "gpt2": ("gpt2", {}),
    "gpt2-bare-legacy": ("gpt2", {"prefix": False, "legacy": True}),
    "gpt2-untied-inverse-idx": (
        "gpt2",
        {"tie_word_embeddings": False, "scale_attn_by_inverse_layer_idx": True},
    ),
    "llama": ("llama", {}),
    "llama-bare": ("llama", {"prefix": False}),
    "llama-biases-headdim": ("llama", {"attention_bias": True, "mlp_bias": True, "head_dim": 12}),
    "llama-rope-parameters": ("llama", {"rope_parameters": {"rope_type": "default", "rope_theta": 50.0}}),
    "qwen2": ("qwen2", {}),
    "mistral": ("mistral", {}),
    "mistral-window": ("mistral", {"sliding_window": 3}),
    "bert": ("bert", {}),
    "bert-bare": ("bert", {"prefix": False}),
    "bert-legacy": ("bert", {"legacy": True}),
    "albert": ("albert", {}),
    "albert-bare-legacy": ("albert", {"prefix": False, "legacy": True}),
    "albert-groups": ("albert", {"num_hidden_layers": 4, "num_hidden_groups": 2, "inner_group_num": 2}),
}


def _float64_llama(model, monkeypatch):
    """Undo transformers' float32 islands in the LLaMA family, which it keeps even in a float64 model:
    RMSNorm casts to float32, the eager softmax runs in float32, and RoPE's inv_freq and angles are
    float32. Each is replaced by the same formula in float64 (weights, eps and θ read from the model)."""
    import torch

    for module in model.modules():
        name = type(module).__name__
        if name.endswith("RMSNorm"):

            def rms(x, module=module):
                return (
                    module.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
                )

            module.forward = rms
        elif name.endswith("RotaryEmbedding"):
            params = getattr(module.config, "rope_parameters", None) or {}
            theta = params.get("rope_theta", getattr(module.config, "rope_theta", None))
            dim = 2 * module.inv_freq.shape[0]

            def rope(x, position_ids, theta=theta, dim=dim):
                inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
                freqs = position_ids[..., None].to(torch.float64) * inv_freq
                emb = torch.cat((freqs, freqs), dim=-1)
                return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

            module.forward = rope
    softmax = torch.nn.functional.softmax

    def softmax64(x, dim=None, _stacklevel=3, dtype=None):
        return softmax(x, dim=dim, dtype=None if x.dtype == torch.float64 else dtype)

    monkeypatch.setattr(torch.nn.functional, "softmax", softmax64)


def _hf_states(folder, ids, token_type_ids=None, float64=None):
    """transformers' hidden states, last_hidden_state and the last layer's raw output (by a hook),
    from AutoModel in float64 with eager attention."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from packaging.version import Version

    dtype_key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    model, info = transformers.AutoModel.from_pretrained(
        folder, attn_implementation="eager", output_loading_info=True, **{dtype_key: torch.float64}
    )
    assert info["missing_keys"] in ([], set()), info["missing_keys"]
    model.eval()
    if float64 is not None:
        float64(model)
    layers = getattr(model, "h", None) or getattr(model, "layers", None)
    raw = []
    if layers is not None:
        layers[-1].register_forward_hook(
            lambda m, args, out: raw.append(out[0] if isinstance(out, tuple) else out)
        )
    kwargs = {"input_ids": torch.as_tensor(ids)[None]}
    if token_type_ids is not None:
        kwargs["token_type_ids"] = torch.as_tensor(token_type_ids)[None]
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True)
    hidden = np.stack([h[0].numpy() for h in out.hidden_states])
    assert hidden.dtype == np.float64
    return hidden, out.last_hidden_state[0].numpy(), raw[0][0].numpy() if raw else None


def _max_diff(ref, hf_hidden, hf_last, hf_raw, arch):
    if arch in ("bert", "albert"):
        np.testing.assert_array_equal(hf_hidden[-1], hf_last)
        return np.abs(ref["hidden"] - hf_hidden).max()
    # transformers' last hidden state has the final norm applied: it is our "final"
    return max(
        np.abs(ref["hidden"][:-1] - hf_hidden[:-1]).max(),
        np.abs(ref["final"] - hf_hidden[-1]).max(),
        np.abs(ref["final"] - hf_last).max(),
        np.abs(ref["hidden"][-1] - hf_raw).max(),
    )


class TestAgainstTransformers:
    @pytest.fixture(autouse=True)
    def _needs_transformers(self):
        pytest.importorskip("torch")
        pytest.importorskip("transformers")

    @pytest.mark.parametrize("case", HF_CASES)
    def test_hidden_states(self, tmp_path, monkeypatch, case):
        arch, kwargs = HF_CASES[case]
        folder, config = _tiny(tmp_path, arch, **kwargs)
        # token types: BERT/ALBERT's own embedding; GPT-2 adds rows of wte for them, as transformers does
        types = (np.arange(len(IDS)) >= 4).astype(np.int64) if arch not in LLAMA_FAMILY else None
        ref = numpy_forward(folder, IDS, types)
        float64 = (lambda model: _float64_llama(model, monkeypatch)) if arch in LLAMA_FAMILY else None
        hf_hidden, hf_last, hf_raw = _hf_states(folder, IDS, types, float64)
        if arch == "albert":
            # transformers 5 records a hidden state after every AlbertLayer, inner_group_num per layer
            # group application (4.x: one per application, as ours)
            inner = config["inner_group_num"]
            assert len(hf_hidden) in (_layers(config) * inner + 1, _layers(config) + 1)
            if len(hf_hidden) != _layers(config) + 1:
                hf_hidden = hf_hidden[::inner]
        diff = _max_diff(ref, hf_hidden, hf_last, hf_raw, arch)
        print(f"\n{case}: max |numpy - transformers| = {diff:.2e}")
        assert diff < 1e-10
        assert ref["hidden"].shape[0] == _layers(config) + 1

    @pytest.mark.parametrize("arch", LLAMA_FAMILY)
    def test_llama_family_as_shipped(self, tmp_path, arch):
        """Without the float64 patches transformers' LLaMA family is float32-accurate only."""
        folder, _ = _tiny(tmp_path, arch)
        diff = _max_diff(numpy_forward(folder, IDS), *_hf_states(folder, IDS), arch)
        print(f"\n{arch} unpatched: max |numpy - transformers| = {diff:.2e}")
        assert diff < 1e-4

    @pytest.mark.parametrize("arch", ARCHS)
    @pytest.mark.parametrize("prefix", [True, False])
    def test_keys_and_config_as_save_pretrained(self, tmp_path, arch, prefix):
        """The written key names and shapes are those save_pretrained writes for the class named in
        config["architectures"], and transformers reads our config keys as we mean them."""
        import torch
        import transformers
        from safetensors import safe_open

        folder, config = _tiny(tmp_path, arch, prefix=prefix)
        hf_config = transformers.AutoConfig.from_pretrained(folder)
        for key, value in config.items():
            if key in ("rope_theta", "rope_scaling"):  # transformers 5 moves them into rope_parameters
                params = getattr(hf_config, "rope_parameters", None) or {}
                assert params.get(key, getattr(hf_config, key, None)) == value or value is None, key
            elif key == "sliding_window" and arch == "qwen2":  # None while use_sliding_window is false
                assert hf_config.sliding_window is None and not config["use_sliding_window"]
            elif key not in ("architectures", "torch_dtype"):
                assert getattr(hf_config, key) == value, key
        torch.manual_seed(0)
        model = getattr(transformers, config["architectures"][0])(hf_config)
        model.save_pretrained(tmp_path / "hf")
        shapes = {}
        for path in (tmp_path / "hf", folder):
            with safe_open(path / "model.safetensors", "np") as f:
                shapes[path.name] = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
        assert shapes["ckpt"] == shapes["hf"]
