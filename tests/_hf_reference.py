"""An independent reference for loading Hugging Face checkpoints, in plain numpy and safetensors: it
never imports ``particles``. Tests import it (``from _hf_reference import ...``) to check the package's
loaders against it; tests/test_hf_reference.py checks it on its own, and once against ``transformers``.

Two halves:

``write_tiny_checkpoint(arch, folder)``
    writes ``config.json`` and ``model.safetensors`` with random weights under the exact key names,
    shapes and config keys that ``save_pretrained`` writes (transformers 5.x, checked by
    ``TestAgainstTransformers``), for

    ============  ===========================================  =========================
    arch          prefix=True (class, prefix)                  prefix=False (class)
    ============  ===========================================  =========================
    ``gpt2``      GPT2LMHeadModel, ``transformer.``            GPT2Model
    ``llama``     LlamaForCausalLM, ``model.`` + ``lm_head``   LlamaModel
    ``qwen2``     Qwen2ForCausalLM, ``model.`` + ``lm_head``   Qwen2Model
    ``mistral``   MistralForCausalLM, ``model.`` + ``lm_head`` MistralModel
    ``bert``      BertForPreTraining, ``bert.`` + ``cls.*``    BertModel (with pooler)
    ``albert``    AlbertForPreTraining, ``albert.`` + heads    AlbertModel (with pooler)
    ============  ===========================================  =========================

    ``legacy=True`` adds what older checkpoints on the Hub carry: GPT-2's causal-mask buffers
    ``h.{i}.attn.bias`` (1, 1, P, P), BERT/ALBERT's ``embeddings.position_ids`` buffer (1, P) and the
    TensorFlow-era LayerNorm names ``LayerNorm.gamma``/``LayerNorm.beta`` for ``.weight``/``.bias``.

``numpy_forward(folder, token_ids)``
    the residual stream, layer by layer, in float64, from the published descriptions of the
    architectures (cited at each forward pass below) with Hugging Face's conventions where a checkpoint
    fixes them. It returns ``hidden`` (L+1, ..., n, d): ``hidden[0]`` the input of layer 0, and
    ``hidden[l+1]`` the residual stream after layer l, all WITHOUT a final norm, and ``final``: the
    final norm (GPT-2's ``ln_f``, LLaMA's ``model.norm``) of the last layer's output, None for the
    post-LN encoders (BERT, ALBERT) that have none.

    This differs from ``transformers``' ``output_hidden_states`` in one place: there the LAST entry is
    ``last_hidden_state``, i.e. the final norm is applied to it (GPT-2, LLaMA family), so
    ``hf.hidden_states[:L] == hidden[:L]`` and ``hf.hidden_states[L] == final``; the un-normed output
    of the last layer, ``hidden[L]``, is not among transformers' hidden states (a forward hook on the
    last layer gets it). For BERT and ALBERT ``hf.hidden_states == hidden`` entry by entry.
"""

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

LLAMA_FAMILY = ("llama", "qwen2", "mistral")
ARCHS = ("gpt2", *LLAMA_FAMILY, "bert", "albert")

# The base model's prefix inside the head model's checkpoint (base_model_prefix in transformers)
PREFIX = {"gpt2": "transformer.", "llama": "model.", "qwen2": "model.", "mistral": "model.", "bert": "bert."}
PREFIX["albert"] = "albert."

_ARCHITECTURES = {
    "gpt2": ("GPT2LMHeadModel", "GPT2Model"),
    "llama": ("LlamaForCausalLM", "LlamaModel"),
    "qwen2": ("Qwen2ForCausalLM", "Qwen2Model"),
    "mistral": ("MistralForCausalLM", "MistralModel"),
    "bert": ("BertForPreTraining", "BertModel"),
    "albert": ("AlbertForPreTraining", "AlbertModel"),
}


# --------------------------------------------------------------------------------------------------
# Activations and norms
# --------------------------------------------------------------------------------------------------

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu_erf(x):
    """The exact GELU x Φ(x) = x (1 + erf(x/√2))/2 (Hendrycks & Gimpel 1606.08415; BERT's "gelu")."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def gelu_tanh(x):
    """The tanh approximation of GELU (GPT-2's and ALBERT's "gelu_new"; "gelu_pytorch_tanh")."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def silu(x):
    """x σ(x) (LLaMA's "silu", the gate of SwiGLU)."""
    return x / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "gelu": gelu_erf,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "silu": silu,
    "swish": silu,
    "relu": lambda x: np.maximum(x, 0.0),
}


def layer_norm(x, weight, bias, eps):
    """(x − mean) / √(var + eps) · weight + bias over the last axis (biased variance, as torch)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def rms_norm(x, weight, eps):
    """x / √(mean(x²) + eps) · weight (Zhang & Sennrich 1910.07467, as LLaMA uses it)."""
    return x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps) * weight


# --------------------------------------------------------------------------------------------------
# Attention pieces
# --------------------------------------------------------------------------------------------------


def split_heads(x, heads):
    """(..., n, heads·dh) → (..., heads, n, dh)."""
    return np.swapaxes(x.reshape(*x.shape[:-1], heads, -1), -2, -3)


def merge_heads(x):
    """(..., heads, n, dh) → (..., n, heads·dh)."""
    x = np.swapaxes(x, -2, -3)
    return x.reshape(*x.shape[:-2], -1)


def causal_mask(n, sliding_window=None):
    """allowed[i, j]: query i sees key j iff j ≤ i (and i − j < sliding_window when one is given)."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    allowed = j <= i
    if sliding_window is not None:
        allowed &= i - j < sliding_window
    return allowed


def attention(q, k, v, scale, allowed=None):
    """softmax(scale · q kᵀ, masked where not ``allowed``) v, per head: q, k, v (..., heads, n, dh)."""
    scores = scale * (q @ np.swapaxes(k, -1, -2))
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    return weights @ v


def rope_tables(n, head_dim, theta):
    """cos and sin (n, head_dim) of RoPE (Su et al. 2104.09864) at positions 0..n−1 in the
    "rotate_half" layout of Hugging Face's LLaMA: frequency i = 1/θ^(2i/dh) drives the pair of
    coordinates (i, i + dh/2), so the angle table is [m·inv_freq, m·inv_freq] along the last axis."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(n, dtype=np.float64)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles), np.sin(angles)


def rotate_half(x):
    """(x₁, x₂) → (−x₂, x₁), halves of the last axis."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, cos, sin):
    """Rotate x (..., n, dh) by position: x cos + rotate_half(x) sin.

    The paper rotates adjacent pairs (2i, 2i+1); Hugging Face's conversion of Meta's weights permutes
    the rows of q_proj and k_proj so that this half-split rotation of the converted weights equals the
    paper's interleaved one of the originals. A checkpoint in Hugging Face's layout needs this one."""
    return x * cos + rotate_half(x) * sin


def _linear(x, w, name, bias=True):
    """torch's Linear: x Wᵀ + b with W (out, in) under ``name.weight``."""
    y = x @ w[name + ".weight"].T
    return y + w[name + ".bias"] if bias else y


# --------------------------------------------------------------------------------------------------
# Forward passes
# --------------------------------------------------------------------------------------------------


def _gpt2_forward(config, w, ids, token_type_ids):
    """GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"): a pre-LN
    decoder, x += attn(LN₁ x); x += mlp(LN₂ x); a final LN (ln_f) after the last block. Learned
    absolute positions; causal softmax attention scaled by 1/√dh; MLP W₂ gelu_new(W₁ x). Weights are
    stored as Conv1D, (in, out) with y = x W + b, and c_attn holds q | k | v side by side.
    As transformers does, token_type_ids (if given) add rows of the token embedding wte."""
    d, heads = config["n_embd"], config["n_head"]
    eps = config.get("layer_norm_epsilon", 1e-5)
    act = ACTIVATIONS[config.get("activation_function", "gelu_new")]
    if config.get("reorder_and_upcast_attn") or config.get("add_cross_attention"):
        raise NotImplementedError("reorder_and_upcast_attn / cross-attention")
    n = ids.shape[-1]
    x = w["wte.weight"][ids] + w["wpe.weight"][np.arange(n)]
    if token_type_ids is not None:
        x = x + w["wte.weight"][np.asarray(token_type_ids)]
    allowed = causal_mask(n)
    hidden = [x]
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        scale = 1.0 / math.sqrt(d // heads) if config.get("scale_attn_weights", True) else 1.0
        if config.get("scale_attn_by_inverse_layer_idx", False):
            scale /= i + 1
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = np.split(a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"], 3, axis=-1)
        o = merge_heads(
            attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), scale, allowed)
        )
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = act(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        hidden.append(x)
    return hidden, layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)


def _rope_theta(config):
    """RoPE's base θ from ``rope_theta`` (older configs) or ``rope_parameters`` (transformers ≥ 5)."""
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    for p in (params, scaling):
        kind = p.get("rope_type", p.get("type", "default"))
        if kind != "default" or p.get("partial_rotary_factor", 1.0) != 1.0:
            raise NotImplementedError(f"RoPE variant {p}")
    return float(params.get("rope_theta", config.get("rope_theta", 10000.0)))


def _llama_forward(config, w, ids):
    """LLaMA (Touvron et al. 2302.13971), and Qwen2 / Mistral, which share its layout: a pre-RMSNorm
    decoder, x += attn(RMS₁ x); x += down(silu(gate x) ⊙ up x) (SwiGLU, Shazeer 2002.05202); a final
    RMSNorm (model.norm). No position embedding: RoPE (Su et al. 2104.09864, rotate_half layout, see
    ``apply_rope``) on q and k at positions 0..n−1; causal attention scaled by 1/√dh. Grouped-query
    attention (Ainslie et al. 2305.13245): num_key_value_heads K/V heads, query head h reads K/V head
    h // (heads/kv_heads) (transformers' repeat_kv). Linear weights are torch's (out, in), y = x Wᵀ.
    Biases: q/k/v for Qwen2; q/k/v/o with attention_bias and gate/up/down with mlp_bias (LLaMA).
    Mistral's sliding window: query i sees key j iff 0 ≤ i − j < sliding_window."""
    family = config["model_type"]
    d, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or d // heads
    eps = config.get("rms_norm_eps", 1e-6)
    act = ACTIVATIONS[config.get("hidden_act", "silu")]
    qkv_bias = family == "qwen2" or bool(config.get("attention_bias", False))
    o_bias = family != "qwen2" and bool(config.get("attention_bias", False))
    mlp_bias = bool(config.get("mlp_bias", False))
    window = None
    if family == "mistral":
        window = config.get("sliding_window")
    elif family == "qwen2" and config.get("use_sliding_window"):
        raise NotImplementedError("Qwen2's use_sliding_window")
    n = ids.shape[-1]
    cos, sin = rope_tables(n, head_dim, _rope_theta(config))
    allowed = causal_mask(n, window)
    x = w["embed_tokens.weight"][ids]
    hidden = [x]
    for i in range(config["num_hidden_layers"]):
        p = f"layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = apply_rope(split_heads(_linear(a, w, p + "self_attn.q_proj", qkv_bias), heads), cos, sin)
        k = apply_rope(split_heads(_linear(a, w, p + "self_attn.k_proj", qkv_bias), kv_heads), cos, sin)
        v = split_heads(_linear(a, w, p + "self_attn.v_proj", qkv_bias), kv_heads)
        k, v = np.repeat(k, heads // kv_heads, axis=-3), np.repeat(v, heads // kv_heads, axis=-3)
        o = merge_heads(attention(q, k, v, 1.0 / math.sqrt(head_dim), allowed))
        x = x + _linear(o, w, p + "self_attn.o_proj", o_bias)
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = act(_linear(m, w, p + "mlp.gate_proj", mlp_bias))
        x = x + _linear(gate * _linear(m, w, p + "mlp.up_proj", mlp_bias), w, p + "mlp.down_proj", mlp_bias)
        hidden.append(x)
    return hidden, rms_norm(x, w["norm.weight"], eps)


def _post_ln_layer(x, w, names, heads, eps, act):
    """One post-LN encoder layer of BERT (Devlin et al. 1810.04805, after Vaswani et al. 1706.03762):
    x = LN(x + dense(attn(x))); x = LN(x + out(act(inter x))), unmasked attention scaled by 1/√dh."""
    q, k, v = (split_heads(_linear(x, w, names[key]), heads) for key in ("query", "key", "value"))
    o = merge_heads(attention(q, k, v, 1.0 / math.sqrt(x.shape[-1] // heads)))
    x = layer_norm(x + _linear(o, w, names["dense"]), *_ln(w, names["ln_attention"]), eps)
    f = _linear(act(_linear(x, w, names["inter"])), w, names["out"])
    return layer_norm(x + f, *_ln(w, names["ln_out"]), eps)


def _ln(w, name):
    return w[name + ".weight"], w[name + ".bias"]


def _embeddings(config, w, ids, token_type_ids):
    """BERT's and ALBERT's input: LN(word + position + token type), positions 0..n−1, types 0 by default."""
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise NotImplementedError(config["position_embedding_type"])
    n = ids.shape[-1]
    types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
    x = x + w["embeddings.position_embeddings.weight"][np.arange(n)]
    return layer_norm(x, *_ln(w, "embeddings.LayerNorm"), config.get("layer_norm_eps", 1e-12))


def _bert_forward(config, w, ids, token_type_ids):
    """BERT (Devlin et al. 1810.04805): embeddings LN(word + position + type), then post-LN layers
    (``_post_ln_layer``) with the exact erf GELU ("gelu"); no causal mask, no final norm."""
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise NotImplementedError("BERT as a decoder")
    eps = config.get("layer_norm_eps", 1e-12)
    act = ACTIVATIONS[config.get("hidden_act", "gelu")]
    x = _embeddings(config, w, ids, token_type_ids)
    hidden = [x]
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        names = {
            "query": p + "attention.self.query",
            "key": p + "attention.self.key",
            "value": p + "attention.self.value",
            "dense": p + "attention.output.dense",
            "ln_attention": p + "attention.output.LayerNorm",
            "inter": p + "intermediate.dense",
            "out": p + "output.dense",
            "ln_out": p + "output.LayerNorm",
        }
        x = _post_ln_layer(x, w, names, config["num_attention_heads"], eps, act)
        hidden.append(x)
    return hidden, None


def _albert_forward(config, w, ids, token_type_ids):
    """ALBERT (Lan et al. 1909.11942): BERT's post-LN layer with its parameters shared across depth.
    Embeddings of size E are normed (LN over E) and mapped to the hidden size d by
    embedding_hidden_mapping_in (factorized embedding); ``hidden[0]`` is after that mapping. Then
    num_hidden_layers applications: layer i runs group int(i / (L / num_hidden_groups)), each group its
    inner_group_num layers in turn (1 and 1 in the released models: one shared layer, applied L times).
    Activation "gelu_new" by default; no mask, no final norm. One hidden state per application, as
    transformers 4.x; transformers 5 records one per inner layer (the same when inner_group_num = 1)."""
    eps = config.get("layer_norm_eps", 1e-12)
    act = ACTIVATIONS[config.get("hidden_act", "gelu_new")]
    layers, groups = config["num_hidden_layers"], config.get("num_hidden_groups", 1)
    x = _linear(_embeddings(config, w, ids, token_type_ids), w, "encoder.embedding_hidden_mapping_in")
    hidden = [x]
    for i in range(layers):
        group = int(i / (layers / groups))
        for j in range(config.get("inner_group_num", 1)):
            p = f"encoder.albert_layer_groups.{group}.albert_layers.{j}."
            names = {
                "query": p + "attention.query",
                "key": p + "attention.key",
                "value": p + "attention.value",
                "dense": p + "attention.dense",
                "ln_attention": p + "attention.LayerNorm",
                "inter": p + "ffn",
                "out": p + "ffn_output",
                "ln_out": p + "full_layer_layer_norm",
            }
            x = _post_ln_layer(x, w, names, config["num_attention_heads"], eps, act)
        hidden.append(x)
    return hidden, None


def load_base_weights(folder, family):
    """The checkpoint's floating tensors in float64 under the base model's names: the head model's
    prefix (``transformer.``, ``model.``, ``bert.``, ``albert.``) stripped when the file has it (other
    keys, the heads, then dropped), and legacy ``LayerNorm.gamma``/``.beta`` read as ``.weight``/``.bias``."""
    tensors = load_file(Path(folder) / "model.safetensors")
    prefix = PREFIX[family]
    if any(key.startswith(prefix) for key in tensors):
        tensors = {key[len(prefix) :]: t for key, t in tensors.items() if key.startswith(prefix)}
    weights = {}
    for key, t in tensors.items():
        if not np.issubdtype(t.dtype, np.floating):
            continue  # position_ids buffers
        if "LayerNorm." in key:
            key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
                "LayerNorm.beta", "LayerNorm.bias"
            )
        weights[key] = t.astype(np.float64)
    return weights


def numpy_forward(folder, token_ids, token_type_ids=None):
    """The residual stream of the checkpoint in ``folder`` on ``token_ids`` (n,) or (batch, n), in
    float64: ``{"hidden": (L+1, ..., n, d), "final": (..., n, d) or None}``; see the module docstring
    for what each entry is and how it differs from transformers' ``output_hidden_states``."""
    config = json.loads((Path(folder) / "config.json").read_text())
    family = config["model_type"]
    if family not in ARCHS:
        raise NotImplementedError(family)
    w = load_base_weights(folder, family)
    ids = np.asarray(token_ids)
    if family == "gpt2":
        hidden, final = _gpt2_forward(config, w, ids, token_type_ids)
    elif family in LLAMA_FAMILY:
        if token_type_ids is not None:
            raise ValueError(f"{family} has no token types")
        hidden, final = _llama_forward(config, w, ids)
    elif family == "bert":
        hidden, final = _bert_forward(config, w, ids, token_type_ids)
    else:
        hidden, final = _albert_forward(config, w, ids, token_type_ids)
    return {"hidden": np.stack(hidden), "final": final}


# --------------------------------------------------------------------------------------------------
# Tiny checkpoints
# --------------------------------------------------------------------------------------------------


def _config(family, prefix, dtype, overrides):
    common = {"vocab_size": 50, "initializer_range": 0.02, "torch_dtype": np.dtype(dtype).name}
    if family == "gpt2":
        config = {
            "n_embd": 24,
            "n_layer": 2,
            "n_head": 3,
            "n_positions": 32,
            "n_inner": None,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5,
            "resid_pdrop": 0.1,
            "embd_pdrop": 0.1,
            "attn_pdrop": 0.1,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "bos_token_id": 49,
            "eos_token_id": 49,
            "tie_word_embeddings": True,
        }
    elif family in LLAMA_FAMILY:
        config = {
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 32,
            "rms_norm_eps": 1e-6,
            "rope_theta": 100.0,  # not the default 10000, so that a loader that ignores it shows
            "attention_dropout": 0.0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "tie_word_embeddings": False,
        }
        if family == "llama":
            config.update(
                head_dim=8, attention_bias=False, mlp_bias=False, pretraining_tp=1, rope_scaling=None
            )
        elif family == "qwen2":
            # Qwen2 configs carry a sliding_window that use_sliding_window=false switches off; a short
            # one here, so that a loader that applies it anyway shows
            config.update(use_sliding_window=False, sliding_window=4, max_window_layers=2)
        else:
            config.update(head_dim=8, sliding_window=None)
    elif family == "bert":
        config = {
            "hidden_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 48,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 32,
            "type_vocab_size": 2,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
        }
    else:
        config = {
            "embedding_size": 16,
            "hidden_size": 24,
            "num_hidden_layers": 3,
            "num_attention_heads": 3,
            "intermediate_size": 40,
            "hidden_act": "gelu_new",
            "num_hidden_groups": 1,
            "inner_group_num": 1,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "classifier_dropout_prob": 0.1,
            "max_position_embeddings": 32,
            "type_vocab_size": 2,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 3,
            "position_embedding_type": "absolute",
        }
    config = (
        {"model_type": family, "architectures": [_ARCHITECTURES[family][0 if prefix else 1]]}
        | common
        | config
    )
    config.update(overrides)
    if "rope_parameters" in overrides:
        config.pop("rope_theta", None)
    return config


def _spec(config, prefix):
    """(name, shape, kind) of every tensor the class saves, kind "w" (matrix, embedding), "norm" (a norm's
    weight) or "b" (bias), in the base model's names with the head model's prefix when ``prefix``."""
    family = config["model_type"]
    spec = []
    base = PREFIX[family] if prefix else ""

    def add(name, shape, kind="w"):
        spec.append((base + name, tuple(shape), kind))

    def linear(name, n_out, n_in, bias=True):
        add(name + ".weight", (n_out, n_in))
        if bias:
            add(name + ".bias", (n_out,), "b")

    def ln(name, size, bias=True):
        add(name + ".weight", (size,), "norm")
        if bias:
            add(name + ".bias", (size,), "b")

    vocab = config["vocab_size"]
    if family == "gpt2":
        d, inner = config["n_embd"], config.get("n_inner") or 4 * config["n_embd"]
        add("wte.weight", (vocab, d))
        add("wpe.weight", (config["n_positions"], d))
        for i in range(config["n_layer"]):
            p = f"h.{i}."
            ln(p + "ln_1", d)
            # Conv1D: weight (in, out)
            add(p + "attn.c_attn.weight", (d, 3 * d))
            add(p + "attn.c_attn.bias", (3 * d,), "b")
            add(p + "attn.c_proj.weight", (d, d))
            add(p + "attn.c_proj.bias", (d,), "b")
            ln(p + "ln_2", d)
            add(p + "mlp.c_fc.weight", (d, inner))
            add(p + "mlp.c_fc.bias", (inner,), "b")
            add(p + "mlp.c_proj.weight", (inner, d))
            add(p + "mlp.c_proj.bias", (d,), "b")
        ln("ln_f", d)
        if prefix and not config.get("tie_word_embeddings", True):
            spec.append(("lm_head.weight", (vocab, d), "w"))
    elif family in LLAMA_FAMILY:
        d, heads = config["hidden_size"], config["num_attention_heads"]
        kv_heads = config.get("num_key_value_heads") or heads
        dh = config.get("head_dim") or d // heads
        inter = config["intermediate_size"]
        qkv_bias = family == "qwen2" or bool(config.get("attention_bias", False))
        o_bias = family != "qwen2" and bool(config.get("attention_bias", False))
        mlp_bias = bool(config.get("mlp_bias", False))
        add("embed_tokens.weight", (vocab, d))
        for i in range(config["num_hidden_layers"]):
            p = f"layers.{i}."
            ln(p + "input_layernorm", d, bias=False)
            linear(p + "self_attn.q_proj", heads * dh, d, qkv_bias)
            linear(p + "self_attn.k_proj", kv_heads * dh, d, qkv_bias)
            linear(p + "self_attn.v_proj", kv_heads * dh, d, qkv_bias)
            linear(p + "self_attn.o_proj", d, heads * dh, o_bias)
            ln(p + "post_attention_layernorm", d, bias=False)
            linear(p + "mlp.gate_proj", inter, d, mlp_bias)
            linear(p + "mlp.up_proj", inter, d, mlp_bias)
            linear(p + "mlp.down_proj", d, inter, mlp_bias)
        ln("norm", d, bias=False)
        if prefix and not config.get("tie_word_embeddings", False):
            spec.append(("lm_head.weight", (vocab, d), "w"))
    elif family == "bert":
        d, inter = config["hidden_size"], config["intermediate_size"]
        add("embeddings.word_embeddings.weight", (vocab, d))
        add("embeddings.position_embeddings.weight", (config["max_position_embeddings"], d))
        add("embeddings.token_type_embeddings.weight", (config["type_vocab_size"], d))
        ln("embeddings.LayerNorm", d)
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            for name in ("query", "key", "value"):
                linear(p + "attention.self." + name, d, d)
            linear(p + "attention.output.dense", d, d)
            ln(p + "attention.output.LayerNorm", d)
            linear(p + "intermediate.dense", inter, d)
            linear(p + "output.dense", d, inter)
            ln(p + "output.LayerNorm", d)
        linear("pooler.dense", d, d)
        if prefix:  # BertForPreTraining's heads (the decoder's weight is tied to the word embeddings)
            spec.append(("cls.predictions.bias", (vocab,), "b"))
            spec.append(("cls.predictions.transform.dense.weight", (d, d), "w"))
            spec.append(("cls.predictions.transform.dense.bias", (d,), "b"))
            spec.append(("cls.predictions.transform.LayerNorm.weight", (d,), "norm"))
            spec.append(("cls.predictions.transform.LayerNorm.bias", (d,), "b"))
            spec.append(("cls.seq_relationship.weight", (2, d), "w"))
            spec.append(("cls.seq_relationship.bias", (2,), "b"))
    else:
        d, e, inter = config["hidden_size"], config["embedding_size"], config["intermediate_size"]
        add("embeddings.word_embeddings.weight", (vocab, e))
        add("embeddings.position_embeddings.weight", (config["max_position_embeddings"], e))
        add("embeddings.token_type_embeddings.weight", (config["type_vocab_size"], e))
        ln("embeddings.LayerNorm", e)
        linear("encoder.embedding_hidden_mapping_in", d, e)
        for g in range(config.get("num_hidden_groups", 1)):
            for j in range(config.get("inner_group_num", 1)):
                p = f"encoder.albert_layer_groups.{g}.albert_layers.{j}."
                for name in ("query", "key", "value", "dense"):
                    linear(p + "attention." + name, d, d)
                ln(p + "attention.LayerNorm", d)
                linear(p + "ffn", inter, d)
                linear(p + "ffn_output", d, inter)
                ln(p + "full_layer_layer_norm", d)
        linear("pooler", d, d)
        if prefix:  # AlbertForPreTraining's heads (the decoder's weight is tied to the word embeddings)
            spec.append(("predictions.bias", (vocab,), "b"))
            spec.append(("predictions.dense.weight", (e, d), "w"))
            spec.append(("predictions.dense.bias", (e,), "b"))
            spec.append(("predictions.LayerNorm.weight", (e,), "norm"))
            spec.append(("predictions.LayerNorm.bias", (e,), "b"))
            spec.append(("sop_classifier.classifier.weight", (2, d), "w"))
            spec.append(("sop_classifier.classifier.bias", (2,), "b"))
    return spec


def _legacy(config, tensors, prefix):
    """What older Hub checkpoints add: GPT-2's mask buffers, BERT/ALBERT's position_ids and gamma/beta."""
    family = config["model_type"]
    base = PREFIX[family] if prefix else ""
    out = {}
    if family == "gpt2":
        p = config["n_positions"]
        mask = np.tril(np.ones((p, p), dtype=np.float32))[None, None]
        for key, t in tensors.items():
            out[key] = t
            if key.endswith(".attn.c_attn.weight"):
                out[key.replace(".c_attn.weight", ".bias")] = mask
    elif family in ("bert", "albert"):
        for key, t in tensors.items():
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
                "LayerNorm.bias", "LayerNorm.beta"
            )
            out[key] = t
        out[base + "embeddings.position_ids"] = np.arange(config["max_position_embeddings"], dtype=np.int64)[
            None
        ]
    else:
        raise ValueError(f"no legacy layout for {family}")
    return out


def write_checkpoint(folder, config, tensors):
    """Write ``config.json`` and ``model.safetensors`` (metadata format "pt", as transformers requires)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = {key: np.ascontiguousarray(t) for key, t in tensors.items()}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def write_tiny_checkpoint(
    arch, folder, *, seed=0, dtype=np.float64, prefix=True, legacy=False, **config_overrides
):
    """Write a tiny random checkpoint of ``arch`` (one of ``ARCHS``; ``model_type`` in config_overrides
    may also pick qwen2 or mistral for "llama") into ``folder`` and return its config.

    Weights: matrices and embeddings 0.2·N(0, 1), norm weights 1 + 0.1·N(0, 1), biases 0.1·N(0, 1),
    drawn in float64 in the order of the key list and stored as ``dtype`` (float64, float32, float16),
    so the same seed gives the same values under every prefix/legacy variant. ``prefix`` picks the head
    model's layout (prefixed names plus its head tensors) or the bare base model's; ``legacy`` adds what
    older checkpoints carry (see the module docstring). Sizes: config_overrides (HF config keys)."""
    family = config_overrides.get("model_type", arch)
    if family not in ARCHS or (family != arch and not (arch in LLAMA_FAMILY and family in LLAMA_FAMILY)):
        raise ValueError(f"unknown arch {arch!r} / model_type {family!r}")
    config = _config(family, prefix, dtype, config_overrides)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape, kind in _spec(config, prefix):
        z = rng.standard_normal(shape)
        t = {"w": 0.2 * z, "norm": 1.0 + 0.1 * z, "b": 0.1 * z}[kind]
        tensors[name] = t.astype(dtype)
    if legacy:
        tensors = _legacy(config, tensors, prefix)
    write_checkpoint(folder, config, tensors)
    return config
