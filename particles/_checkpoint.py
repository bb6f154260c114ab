"""Trained checkpoints in: the Hugging Face layouts of GPT-2, the LLaMA family (LLaMA,
Mistral, Qwen2), BERT and ALBERT, read from safetensors with numpy (no torch; nothing
is ever unpickled) into a :class:`particles.Transformer`.

Each layout names its tensors (``config.json`` gives the sizes); a head h of a layer
becomes Q_h, K_h (d_k × d) with their biases, V_h (d_v × d) and O_h (d × d_v) (the
output projection's columns of that head), the value bias folded into the output bias
(b_o + Σ_h O_h b_v,h, exact since each row of attention weights sums to 1). Radford et
al. 2019 (GPT-2), Touvron et al. arXiv 2302.13971 (LLaMA), Devlin et al. arXiv
1810.04805 (BERT), Lan et al. arXiv 1909.11942 (ALBERT).
"""

import json
import pathlib

import numpy as np
import safetensors.numpy

from ._mlp import MLP, GatedMLP
from ._model import Causal, NoPosition, Positions, RoPE, SlidingWindow
from ._norms import Norm
from ._transformer import Embeddings, Transformer, head_beta
from ._validate import check_choice, default_dtype, precision

ARCHITECTURES = ("gpt2", "llama", "mistral", "qwen2", "bert", "albert")

#: the prefixes of the task models' tensors (GPT2LMHeadModel, LlamaForCausalLM, BertFor…)
_PREFIXES = ("transformer.", "model.", "bert.", "albert.")
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_CONVERT = (
    "unpickling can run arbitrary code; convert it to safetensors first, e.g. with transformers: "
    "AutoModel.from_pretrained(folder).save_pretrained(out, safe_serialization=True)"
)
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu",
                "silu": "silu", "swish": "silu"}  # fmt: skip


def from_checkpoint(path, arch: str | None = None, *, dtype=None) -> Transformer:
    """Read a trained transformer: ``path`` a folder with ``config.json`` and
    ``*.safetensors`` (sharded ones through ``model.safetensors.index.json``), or one
    ``.safetensors`` file (its folder's ``config.json`` if there is one; else, for GPT-2
    and the LLaMA family, sizes from the tensors, heads of 64 (GPT-2) or 128 (LLaMA
    family) dimensions and transformers' defaults); ``arch`` (default: ``config.json``'s
    ``model_type``) one of :data:`ARCHITECTURES`. ``dtype`` float32 (JAX's default) or
    float64. Returns a :class:`particles.Transformer`: ``simulate(tf.embed(ids), tf)``.

    Pickled weights (``pytorch_model.bin``, ``.pt``) are refused, never loaded."""
    path = pathlib.Path(path)
    if not path.exists():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    folder = path if path.is_dir() else path.parent
    config = _read_config(folder / "config.json") if (folder / "config.json").exists() else {}
    if path.is_dir() and not config:
        raise ValueError(f"{str(path)!r} has no config.json; give the .safetensors file with arch= instead")
    arch = arch or config.get("model_type")
    if arch is None:
        where = (
            f"config.json in {str(folder)!r} has"
            if config
            else f"{str(path)!r} has no config.json beside it, so"
        )
        raise ValueError(f"{where} no model_type; give arch= ({', '.join(ARCHITECTURES)})")
    check_choice("arch (model_type)", arch, ARCHITECTURES)
    dtype = np.dtype(dtype or default_dtype())
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} must be float32 or float64")
    tensors = _Tensors(_read_tensors(path), str(path), dtype)
    build = {"gpt2": _gpt2, "bert": _bert, "albert": _albert}.get(arch, _llama)
    with precision(dtype):
        return build(tensors, config, arch)


def _read_config(file: pathlib.Path) -> dict:
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(file)!r} is not valid JSON ({e.msg}, line {e.lineno})") from None


def _read_tensors(path: pathlib.Path) -> dict:
    """Every tensor of a .safetensors file or of a folder's (sharded) safetensors files."""
    if path.is_file():
        if path.suffix != ".safetensors":
            why = _CONVERT if any(path.match(p) for p in _PICKLED) else "expected a .safetensors file"
            raise ValueError(f"{str(path)!r} is not safetensors: {why}")
        return _load_file(path)
    index = path / "model.safetensors.index.json"
    files = (
        sorted({path / f for f in _read_config(index).get("weight_map", {}).values()})
        if index.exists()
        else sorted(path.glob("*.safetensors"))
    )
    if not files:
        pickled = sorted(p.name for pattern in _PICKLED for p in path.glob(pattern))
        what = (
            f"only pickled weights ({', '.join(pickled)}): {_CONVERT}" if pickled else "no .safetensors file"
        )
        raise ValueError(f"{str(path)!r} has {what}")
    tensors = {}
    for file in files:
        if not file.exists():
            raise ValueError(f"the index names {file.name}, which is not in {str(path)!r}")
        tensors.update(_load_file(file))
    return tensors


def _load_file(file: pathlib.Path) -> dict:
    """The tensors of one safetensors file (its parser reads a JSON header and raw
    buffers, never a pickle); a one-line error if it is not one."""
    try:
        return safetensors.numpy.load_file(file)
    except safetensors.SafetensorError as e:
        raise ValueError(f"{str(file)!r} is not a valid safetensors file ({e})") from None


class _Tensors:
    """A checkpoint's tensors by their names without the task model's prefix (old BERT
    checkpoints' LayerNorm ``gamma``/``beta`` read as ``weight``/``bias``), as ``dtype``."""

    def __init__(self, raw: dict, where: str, dtype):
        self.where, self.dtype, self.named = where, dtype, {}
        for name, value in raw.items():
            for prefix in _PREFIXES:
                name = name.removeprefix(prefix)
            name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
                "LayerNorm.beta", "LayerNorm.bias"
            )
            self.named[name] = value

    def __contains__(self, name) -> bool:
        return name in self.named

    def get(self, name: str, shape: tuple) -> np.ndarray:
        """The tensor ``name`` of the given shape, a one-line error if missing or not."""
        if name not in self.named:
            raise ValueError(f"{self.where!r} has no tensor {name!r} (the first one missing)")
        value = self.named[name]
        if value.shape != tuple(shape):
            raise ValueError(
                f"tensor {name!r} has shape {value.shape}; the config says {tuple(shape)} in {self.where!r}"
            )
        return value.astype(self.dtype)

    def layers(self, names, shapes, num_layers) -> list[np.ndarray]:
        """Each named tensor (a format with ``{l}``) stacked over the layers."""
        return [np.stack([self.get(n.format(l=layer), s) for layer in range(num_layers)])
                for n, s in zip(names, shapes)]  # fmt: skip

    def first_layer_count(self, pattern: str) -> int:
        count = 0
        while pattern.format(l=count) in self.named:
            count += 1
        return count


def _size(config: dict, key: str, default=None):
    value = config.get(key, default)
    if value is None:
        raise ValueError(f"config.json has no {key!r}")
    return int(value)


def _num_heads(config: dict, key: str, d: int, d_head: int) -> int:
    """The number of heads: ``config[key]``, or without it d / d_head (the architecture's
    usual head size), refused in one line where d_head does not divide d."""
    if config.get(key) is None and (d < d_head or d % d_head):
        raise ValueError(
            f"config.json has no {key!r}, and d={d} is no multiple of the usual head size {d_head}; give it"
        )
    return _size(config, key, d // d_head)


def _heads(W_q, W_k, W_v, W_o, biases, heads, kv_heads, d_head):
    """The attention's arrays from torch-layout projections (out, in) stacked over layers:
    Q, K (L, H, d_k, d), V (L, H, d_v, d), O (L, H, d, d_v), the biases; grouped-query
    key/value heads repeated, each serving heads / kv_heads query heads."""
    L, d = W_q.shape[0], W_q.shape[-1]
    group = np.arange(heads) // (heads // kv_heads)
    split = lambda W, h: W.reshape(L, h, d_head, d)  # noqa: E731
    Q, K, V = split(W_q, heads), split(W_k, kv_heads)[:, group], split(W_v, kv_heads)[:, group]
    O = W_o.reshape(L, d, heads, d_head).transpose(0, 2, 1, 3)
    b_q, b_k, b_v, b_o = biases
    per_head = lambda b, h: None if b is None else b.reshape(L, h, d_head)  # noqa: E731
    b_q, b_k, b_v = per_head(b_q, heads), per_head(b_k, kv_heads), per_head(b_v, kv_heads)
    b_k, b_v = (None if b is None else b[:, group] for b in (b_k, b_v))
    out = np.zeros((L, d), W_q.dtype) if b_o is None else b_o
    if b_v is not None:
        out = out + np.einsum("lhea,lha->le", O, b_v)
    return dict(
        Q=Q, K=K, V=V, O=O, q_bias=b_q, k_bias=b_k, out_bias=None if b_o is None and b_v is None else out
    )


def _activation(config, key, default):
    name = config.get(key, default)  # transformers' default for the architecture
    if name not in _ACTIVATIONS:
        raise ValueError(f"config.json's {key}={name!r} is not one of: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _layernorm(gamma, bias, eps):
    return Norm("layernorm", gamma=gamma, bias=bias, eps=eps)


def _gpt2(t: _Tensors, config: dict, arch: str) -> Transformer:
    """GPT-2: pre-LN, fused Conv1D ``c_attn`` (y = x W + b, W (d, 3d)), tanh GELU, learned
    positions, causal, final ``ln_f``."""
    vocab, d = t.named["wte.weight"].shape if "wte.weight" in t else (_size(config, "vocab_size"), 0)
    d = _size(config, "n_embd", d)
    L = _size(config, "n_layer", t.first_layer_count("h.{l}.ln_1.weight"))
    heads = _num_heads(config, "n_head", d, 64)
    m = config.get("n_inner") or 4 * d
    if config.get("scale_attn_by_inverse_layer_idx") or config.get("reorder_and_upcast_attn"):
        raise ValueError(
            "GPT-2 with scale_attn_by_inverse_layer_idx or reorder_and_upcast_attn is not supported"
        )
    beta = head_beta(d // heads) if config.get("scale_attn_weights", True) else 1.0
    eps = float(config.get("layer_norm_epsilon", 1e-5))
    h = "h.{l}."
    names = ["attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "ln_1.weight",
             "ln_1.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
             "mlp.c_proj.bias"]  # fmt: skip
    shapes = [(d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d,), (d,), (d, m), (m,), (m, d), (d,)]
    W, b, W_o, b_o, g1, b1, g2, b2, W_fc, b_fc, W_pr, b_pr = t.layers([h + n for n in names], shapes, L)
    W_q, W_k, W_v = (np.swapaxes(W[..., i * d : (i + 1) * d], -1, -2) for i in range(3))
    b_q, b_k, b_v = (b[..., i * d : (i + 1) * d] for i in range(3))
    attention = _heads(
        W_q, W_k, W_v, np.swapaxes(W_o, -1, -2), (b_q, b_k, b_v, b_o), heads, heads, d // heads
    )
    mlp = MLP(np.swapaxes(W_fc, -1, -2), np.swapaxes(W_pr, -1, -2), b_fc, b_pr,
              activation=_activation(config, "activation_function", "gelu_new"))  # fmt: skip
    positions = _size(config, "n_positions", t.named.get("wpe.weight", np.zeros((0, d))).shape[0])
    embeddings = Embeddings(
        t.get("wte.weight", (vocab, d)), t.get("wpe.weight", (positions, d)), token_types_from_word=True
    )
    return Transformer(
        arch, "pre", beta, L, attention, Causal(), _layernorm(g1, b1, eps),
        _layernorm(g2, b2, eps), mlp, _layernorm(t.get("ln_f.weight", (d,)), t.get("ln_f.bias", (d,)), eps),
        embeddings, config,
    )  # fmt: skip


def _llama(t: _Tensors, config: dict, arch: str) -> Transformer:
    """The LLaMA family: pre-RMSNorm, q/k/v/o projections with grouped-query key/value
    heads (and Qwen2's q/k/v biases), RoPE ("half" convention, base ``rope_theta``),
    causal, SwiGLU MLP, final ``norm``."""
    vocab, d = t.named["embed_tokens.weight"].shape if "embed_tokens.weight" in t else (0, 0)
    d = _size(config, "hidden_size", d or None)
    vocab = _size(config, "vocab_size", vocab or None)
    L = _size(config, "num_hidden_layers", t.first_layer_count("layers.{l}.input_layernorm.weight"))
    heads = _num_heads(config, "num_attention_heads", d, 128)
    d_head = int(config.get("head_dim") or d // heads)
    k_rows = t.named.get("layers.0.self_attn.k_proj.weight", np.zeros((heads * d_head, 0))).shape[0]
    kv_heads = _size(config, "num_key_value_heads", max(1, k_rows // d_head))  # else from k_proj's rows
    if heads % kv_heads:
        raise ValueError(f"num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    m = _size(
        config, "intermediate_size", t.named.get("layers.0.mlp.up_proj.weight", np.zeros((0,))).shape[0]
    )
    p = "layers.{l}."
    proj = [("q", heads), ("k", kv_heads), ("v", kv_heads)]
    W_q, W_k, W_v, W_o, g1, g2, W_gate, W_up, W_down = t.layers(
        [p + f"self_attn.{x}_proj.weight" for x, _ in proj] + [p + n for n in (
            "self_attn.o_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight",
            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")],
        [(h * d_head, d) for _, h in proj] + [(d, heads * d_head), (d,), (d,), (m, d), (m, d), (d, m)], L,
    )  # fmt: skip

    def bias(x, size):  # Qwen2's q/k/v biases, attention_bias=true's four
        name = p + f"self_attn.{x}_proj.bias"
        return t.layers([name], [(size,)], L)[0] if name.format(l=0) in t else None

    biases = [bias(x, h * d_head) for x, h in proj] + [bias("o", d)]
    attention = _heads(W_q, W_k, W_v, W_o, biases, heads, kv_heads, d_head)
    eps = float(config.get("rms_norm_eps", 1e-6))
    rms = lambda g: Norm("rmsnorm", gamma=g, eps=eps)  # noqa: E731
    mlp_biases = (
        t.layers([p + f"mlp.{x}_proj.bias" for x in ("gate", "up", "down")], [(m,), (m,), (d,)], L)
        if (p + "mlp.gate_proj.bias").format(l=0) in t
        else (None, None, None)
    )
    mlp = GatedMLP(W_gate, W_up, W_down, *mlp_biases, activation=_activation(config, "hidden_act", "silu"))
    embeddings = Embeddings(t.get("embed_tokens.weight", (vocab, d)))
    return Transformer(
        arch, "pre", head_beta(d_head), L, attention, _rope_position(config, arch), rms(g1), rms(g2), mlp,
        rms(t.get("norm.weight", (d,))), embeddings, config,
    )  # fmt: skip


def _rope_position(config: dict, arch: str):
    """RoPE ("half" convention; base ``rope_theta``, or ``rope_parameters``'s in newer
    configs) and the causal mask, within Mistral's ``sliding_window`` where it has one."""
    for key in ("rope_parameters", "rope_scaling"):
        params = config.get(key) or {}
        kind = params.get("rope_type", params.get("type", "default"))
        if kind != "default" or params.get("partial_rotary_factor", 1.0) != 1.0:
            raise ValueError(f"{key}={params!r} is not supported (plain RoPE only)")
    base = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta", 10000.0))
    # Mistral's window: transformers' default 4096 where the config does not say; null: none
    window = config.get("sliding_window", 4096) if arch == "mistral" else None
    if arch == "qwen2" and config.get("use_sliding_window"):
        raise ValueError("Qwen2's use_sliding_window=true is not supported")
    mask = Causal() if window is None else SlidingWindow(int(window))
    return Positions((RoPE(base=float(base), convention="half"), mask))


def _post_layer(t: _Tensors, names: dict, config: dict, d: int, L: int, activation: str):
    """BERT's and ALBERT's post-LN layer (``names`` map a role to a tensor name with
    ``{l}``): the attention's arrays, its norm, the MLP and the MLP's norm
    (``activation`` the default of ``hidden_act``)."""
    heads = _size(config, "num_attention_heads")
    m = _size(config, "intermediate_size")
    roles = ["q", "k", "v", "o", "ln1", "ff1", "ff2", "ln2"]
    shapes = {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "ln1": (d,), "ff1": (m, d), "ff2": (d, m),
              "ln2": (d,)}  # fmt: skip
    W = dict(zip(roles, t.layers([names[r] + ".weight" for r in roles], [shapes[r] for r in roles], L)))
    b = dict(zip(roles, t.layers([names[r] + ".bias" for r in roles], [shapes[r][:1] for r in roles], L)))
    attention = _heads(
        W["q"], W["k"], W["v"], W["o"], (b["q"], b["k"], b["v"], b["o"]), heads, heads, d // heads
    )
    eps = float(config.get("layer_norm_eps", 1e-12))
    mlp = MLP(
        W["ff1"], W["ff2"], b["ff1"], b["ff2"], activation=_activation(config, "hidden_act", activation)
    )
    return attention, _layernorm(W["ln1"], b["ln1"], eps), mlp, _layernorm(W["ln2"], b["ln2"], eps), heads


def _embeddings(t: _Tensors, config: dict, size: int, **projection) -> Embeddings:
    """BERT/ALBERT embeddings: word + position + token type, then LayerNorm."""
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type={config['position_embedding_type']!r} is not supported")
    e = "embeddings."
    shape = lambda key: (_size(config, key), size)  # noqa: E731
    return Embeddings(
        t.get(e + "word_embeddings.weight", shape("vocab_size")),
        t.get(e + "position_embeddings.weight", shape("max_position_embeddings")),
        t.get(e + "token_type_embeddings.weight", shape("type_vocab_size")),
        _layernorm(t.get(e + "LayerNorm.weight", (size,)), t.get(e + "LayerNorm.bias", (size,)),
                   float(config.get("layer_norm_eps", 1e-12))),
        **projection,
    )  # fmt: skip


def _bert(t: _Tensors, config: dict, arch: str) -> Transformer:
    """BERT: post-LN with biases everywhere, exact GELU, learned positions and token types."""
    d, L = _size(config, "hidden_size"), _size(config, "num_hidden_layers")
    p = "encoder.layer.{l}."
    names = dict(q=p + "attention.self.query", k=p + "attention.self.key", v=p + "attention.self.value",
                 o=p + "attention.output.dense", ln1=p + "attention.output.LayerNorm", ff1=p + "intermediate.dense",
                 ff2=p + "output.dense", ln2=p + "output.LayerNorm")  # fmt: skip
    attention, norm, mlp, mlp_norm, heads = _post_layer(t, names, config, d, L, "gelu")
    return Transformer(
        arch, "post", head_beta(d // heads), L, attention, Causal() if config.get("is_decoder") else NoPosition(),
        norm, mlp_norm, mlp, None, _embeddings(t, config, d), config,
    )  # fmt: skip


def _albert(t: _Tensors, config: dict, arch: str) -> Transformer:
    """ALBERT: BERT's post-LN layer shared by every layer (one group, one layer), the
    embeddings of size e projected to d by ``embedding_hidden_mapping_in``."""
    if _size(config, "num_hidden_groups", 1) != 1 or _size(config, "inner_group_num", 1) != 1:
        raise ValueError(
            "only ALBERT with one shared layer (num_hidden_groups = inner_group_num = 1) is supported"
        )
    d, e = _size(config, "hidden_size"), _size(config, "embedding_size")
    p = "encoder.albert_layer_groups.0.albert_layers.0."
    names = dict(q=p + "attention.query", k=p + "attention.key", v=p + "attention.value", o=p + "attention.dense",
                 ln1=p + "attention.LayerNorm", ff1=p + "ffn", ff2=p + "ffn_output",
                 ln2=p + "full_layer_layer_norm")  # fmt: skip
    attention, norm, mlp, mlp_norm, heads = _post_layer(t, names, config, d, 1, "gelu_new")
    mapping = "encoder.embedding_hidden_mapping_in."
    embeddings = _embeddings(
        t,
        config,
        e,
        projection=t.get(mapping + "weight", (d, e)),
        projection_bias=t.get(mapping + "bias", (d,)),
    )
    L = _size(config, "num_hidden_layers")
    return Transformer(
        arch,
        "post",
        head_beta(d // heads),
        L,
        attention,
        NoPosition(),
        norm,
        mlp_norm,
        mlp,
        None,
        embeddings,
        config,
    )
