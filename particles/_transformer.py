"""A trained transformer as particles: its embedding, its layers' parts and its final
norm, ready for :func:`particles.simulate` (``simulate(tf.embed(ids), tf)``).

Every layer is the scheme's layer map with unit residual steps (MODEL.md §7): pre
(GPT-2, LLaMA) x ← x + A(N₁x), x ← x + F(N₂x); post (BERT, ALBERT) x ← N₁(x + A(x)),
x ← N₂(x + F(x)), with A the multi-head attention at β = 1/√d_k, its weights and biases
(:class:`particles.Attention`), F the MLP (:class:`particles.MLP` or
:class:`particles.GatedMLP`). Built by :func:`particles.from_checkpoint`.
"""

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._mlp import AbstractMLP
from ._model import AbstractPosition
from ._norms import Norm
from ._validate import check_int, precision

#: make_problem's arguments a Transformer supplies (a caller may not give them too)
MODEL_ARGUMENTS = (
    "Q", "K", "V", "O", "q_bias", "k_bias", "out_bias", "norm", "gamma", "bias", "mlp", "mlp_norm", "position",
    "causal", "attention",
)  # fmt: skip


class Embeddings(eqx.Module):
    """x_i = P (LN(E[id_i] + P_pos[i] + T[type_i])) + b: the token embedding ``word``
    (vocab, e), learned absolute positions ``position`` (max_positions, e) or None
    (RoPE models), token types ``token_type`` (types, e) or None (GPT-2 with
    ``token_types_from_word``: given types add rows of ``word``, as transformers does), an embedding ``norm``
    or None (BERT, ALBERT), and a ``projection`` (d, e) with ``projection_bias`` (d,)
    from the embedding size to the hidden size, or None (ALBERT's e < d)."""

    word: Any
    position: Any = None
    token_type: Any = None
    norm: Norm | None = None
    projection: Any = None
    projection_bias: Any = None
    token_types_from_word: bool = eqx.field(static=True, default=False)  # GPT-2: types add rows of word

    @property
    def vocab_size(self) -> int:
        return self.word.shape[0]

    def __call__(self, token_ids, token_type_ids=None) -> np.ndarray:
        ids = _token_ids("token_ids", token_ids, self.vocab_size)
        n = ids.shape[-1]
        x = jnp.asarray(self.word)[ids]
        if self.position is not None:
            if n > self.position.shape[0]:
                raise ValueError(
                    f"token_ids has {n} tokens; this model has learned positions for {self.position.shape[0]}"
                )
            x = x + jnp.asarray(self.position)[:n]
        table = self.token_type
        if table is None and token_type_ids is not None:
            if not self.token_types_from_word:
                raise ValueError("token_type_ids given, but this model has no token-type embeddings")
            table = self.word
        if table is not None:
            types = np.zeros_like(ids) if token_type_ids is None else token_type_ids
            types = _token_ids("token_type_ids", types, table.shape[0])
            if types.shape != ids.shape:
                raise ValueError(f"token_type_ids has shape {types.shape}; expected {ids.shape} as token_ids")
            x = x + jnp.asarray(table)[types]
        if self.norm is not None:
            x = self.norm(x)
        if self.projection is not None:
            x = jnp.einsum("de,...e->...d", jnp.asarray(self.projection), x) + jnp.asarray(
                self.projection_bias
            )
        return np.asarray(x)


def _token_ids(name, ids, vocab_size) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim not in (1, 2) or ids.shape[-1] == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"{name} must be integers of shape (n,) or (batch, n), got dtype {ids.dtype} shape {ids.shape}"
        )
    bad = (ids < 0) | (ids >= vocab_size)
    if np.any(bad):
        raise ValueError(
            f"{name} has {int(np.sum(bad))} id(s) outside the vocabulary [0, {vocab_size}), "
            f"the first {int(ids[bad][0])}"
        )
    return ids


@dataclasses.dataclass(frozen=True)
class Transformer:
    """A trained transformer's parts (see the module docstring): ``scheme`` ("pre",
    "post"), ``beta`` = 1/√d_k, ``num_layers`` L (a shared-layer model such as ALBERT
    holds one layer of weights and runs it L times), the attention's arrays
    ``attention`` (Q, K (L, H, d_k, d), V (L, H, d_v, d), O (L, H, d, d_v), q_bias,
    k_bias (L, H, d_k), out_bias (L, d); absent ones None), its ``position`` part,
    ``norm`` and ``mlp_norm`` (the attention's and the MLP's sublayer norms), ``mlp``,
    the ``final`` norm (or None), the ``embeddings``, and the ``arch`` and ``config``
    it was read from.

    ``tf.embed(ids)`` is the input of layer 0; ``particles.simulate(x0, tf)`` runs the
    L layers (``layers=`` fewer, or for a shared layer more), saving every layer;
    ``tf.final_norm(x)`` applies the final norm.
    """

    arch: str
    scheme: str
    beta: float
    num_layers: int
    attention: dict
    position: AbstractPosition
    norm: Norm
    mlp_norm: Norm
    mlp: AbstractMLP
    final: Norm | None
    embeddings: Embeddings
    config: dict = dataclasses.field(default_factory=dict, repr=False)
    continuous: bool = False  # the ODE of the layer map (:meth:`as_ode`) instead of the layers

    @property
    def shared_layers(self) -> bool:
        """Whether one layer of weights serves every layer (ALBERT)."""
        return self.mlp.num_layers in (None, 1) and self.num_layers > 1

    @property
    def d(self) -> int:
        return self.mlp.W1.shape[-1]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.mlp.W1.dtype)

    def embed(self, token_ids, token_type_ids=None) -> np.ndarray:
        """The input of layer 0 for ``token_ids`` (ints, (n,) or (batch, n)): word +
        position (+ token type) embeddings, then the embedding norm and projection where
        the model has them; shape (…, n, d)."""
        with precision(self.dtype):
            return self.embeddings(token_ids, token_type_ids)

    def as_ode(self) -> "Transformer":
        """The same model as continuous depth: ``simulate(x0, tf.as_ode())`` solves the
        ODE of its layer map, dx/dt = A_l(N₁x) + F_l(N₂x) for l ≤ t < l + 1 (pre-type
        models; MODEL.md §7), over t ∈ [0, L] by default. Post-type models (BERT,
        ALBERT) have none: their norms end every sublayer (a one-line error)."""
        return dataclasses.replace(self, continuous=True)

    def final_norm(self, x) -> np.ndarray:
        """The model's last norm applied to tokens ``x`` (…, n, d) (GPT-2's ``ln_f``,
        LLaMA's ``norm``; the identity for models without one, BERT and ALBERT)."""
        with precision(self.dtype):
            x = jnp.asarray(x, self.dtype)
            return np.asarray(x if self.final is None else self.final(x))

    def problem_arguments(self, layers: int | None, given: dict, *, beta=None, t0=0.0, t1=None) -> dict:
        """The arguments of :func:`particles.make_problem` this model supplies for a run
        of ``layers`` layers (None: its own L) from t0 (to t1, default t0 + L: unit
        steps) at ``beta`` (default its own), refusing model parts also ``given``."""
        clash = [name for name in MODEL_ARGUMENTS if given.get(name) is not None]
        if clash:
            raise ValueError(f"{', '.join(clash)} come(s) from the Transformer; do not give them as well")
        layers = None if layers is None else check_int("layers", layers, minimum=1)
        if self.continuous and layers is not None:
            raise ValueError(f"layers={layers} was given for the ODE of the layer map (as_ode()); give t1")
        depth = self.num_layers if layers is None else layers
        if depth > self.num_layers and not self.shared_layers:
            raise ValueError(
                f"layers={depth} exceeds this {self.arch} model's {self.num_layers} layers; only a model "
                "with one shared layer (ALBERT) iterates past its depth"
            )
        # every array has the layer axis first (one layer for a shared-layer model): the first `depth`
        attention, norm, mlp_norm, mlp = jax.tree.map(
            lambda w: w if w.shape[0] == 1 else w[:depth],
            (self.attention, self.norm, self.mlp_norm, self.mlp),
        )
        return dict(
            scheme=self.scheme, beta=self.beta if beta is None else beta, t0=t0,
            t1=t0 + depth if t1 is None else t1, layers=None if self.continuous else depth, norm=norm,
            mlp_norm=mlp_norm, mlp=mlp, position=self.position, **attention,
        )  # fmt: skip

    def __repr__(self) -> str:
        heads = self.attention["Q"].shape[1]
        d_k = self.attention["Q"].shape[2]
        return (
            f"Transformer({self.arch}: {self.scheme}, L={self.num_layers}"
            f"{' (shared)' if self.shared_layers else ''}, d={self.d}, heads={heads}, d_k={d_k}, "
            f"beta={self.beta:.4g}, norm={self.norm.kind}, mlp={type(self.mlp).__name__}({self.mlp.activation}), "
            f"position={self.position.label})"
        )


def head_beta(d_k: int) -> float:
    """β = 1/√d_k, the scaled dot product's temperature."""
    return 1.0 / math.sqrt(d_k)
