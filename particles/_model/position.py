r"""Position parts: what the tokens' positions p_i do to the logits
ℓ_ij = β⟨q_i, k_j⟩ (MODEL.md §11). One small final class each; :func:`as_position`
builds them from the ``causal`` shortcut, an instance, or a tuple (applied in order).

A part may rotate the queries and keys (:meth:`~AbstractPosition.rotate`, RoPE) and
change the logits (:meth:`~AbstractPosition.logits`: masks, biases, a prior). Positions
default to the token indices 0..n−1.

To add a position part: one subclass of :class:`AbstractPosition` here (``name``, what it
keeps, and its methods), and its tests.
"""

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np


class AbstractPosition(eqx.Module):
    """Positional structure of attention. What the flow keeps with it:
    ``permutation_equivariant`` (relabelling the tokens relabels the flow: then
    coincident tokens stay together, the weights of Q = K = I are symmetric and pairs
    of blocks may be computed once); ``inner_products_only`` (the logits depend on the
    tokens through ⟨q_i, k_j⟩ alone, so the span chart and the Gram flow of Q = K = I
    may apply; RoPE breaks it); ``symmetric_logits`` (with q_i = k_i, i.e. Q = K, the
    logits are symmetric, ℓ_ij = ℓ_ji, so pairs of blocks may be computed once: no
    mask, nothing that depends on the order of i and j; RoPE keeps it, since
    ⟨R_{p_i} θ_i, R_{p_j} θ_j⟩ is symmetric); ``normalizes`` (its weights carry the 1/n of USA);
    ``empty_rows`` (some query may attend to no key: its weights are 0)."""

    name: ClassVar[str]
    permutation_equivariant: ClassVar[bool] = False
    inner_products_only: ClassVar[bool] = True
    symmetric_logits: ClassVar[bool] = False
    gram_flow: ClassVar[bool] = False  # the Gram flow (MODEL.md §8) implements it
    normalizes: ClassVar[bool] = False
    empty_rows: ClassVar[bool] = False

    @property
    def label(self) -> str:
        """The part's name for the record ("rope+causal" for several)."""
        return self.name

    def rotate(self, query, key, positions):
        """The queries and keys (…, n, d_k) at ``positions`` (…, n; None: 0..n−1)."""
        return query, key

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        """The logits (…, queries, keys) of the queries at ``query_index`` and the keys
        at ``key_index`` (token indices; positions ``query_pos``/``key_pos``, None: the
        indices), with the positional part applied (−∞: masked)."""
        return logits

    def with_heads(self, num_heads: int) -> "AbstractPosition":
        """This part for attention with ``num_heads`` heads (defaults that depend on it)."""
        return self

    def check(self, num_tokens: int, query_dim: int) -> None:
        """Refuse (one line) what this part cannot do for ``num_tokens`` tokens and
        queries/keys of ``query_dim`` coordinates."""


def _causal(logits, query_index, key_index):
    return jnp.where(key_index[None, :] <= query_index[:, None], logits, -jnp.inf)


def _positions(pos, index, dtype):
    return index.astype(dtype) if pos is None else pos


class NoPosition(AbstractPosition):
    """No positional structure: every token attends to every token."""

    name: ClassVar[str] = "none"
    permutation_equivariant: ClassVar[bool] = True
    symmetric_logits: ClassVar[bool] = True
    gram_flow: ClassVar[bool] = True


class Causal(AbstractPosition):
    """The causal mask of decoders: token i attends to j ≤ i only. With V = I and
    softmax, token 0 never moves and every token converges to θ_0(0) (Karagodin,
    Polyanskiy, Rigollet, arXiv 2411.04990)."""

    name: ClassVar[str] = "causal"
    gram_flow: ClassVar[bool] = True

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        return _causal(logits, query_index, key_index)


class SlidingWindow(AbstractPosition):
    """Causal attention within a window of ``width`` tokens (Mistral; Beltagy, Peters,
    Cohan, arXiv 2004.05150): token i attends to j with 0 ≤ i − j < width."""

    name: ClassVar[str] = "window"
    width: int = eqx.field(static=True)

    def __check_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"SlidingWindow width={self.width!r} must be a positive integer")

    @property
    def label(self) -> str:
        return f"window:{self.width}"

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        near = key_index[None, :] > query_index[:, None] - self.width
        return jnp.where(near, _causal(logits, query_index, key_index), -jnp.inf)


class ALiBi(AbstractPosition):
    """Attention with linear biases (Press, Smith, Lewis, arXiv 2108.12409), causal:
    ℓ_ij − m_h (p_i − p_j) for j ≤ i, head h's slope m_h; by default 2^{−8h/H},
    h = 1..H, for H heads (H a power of two; BLOOM's rule otherwise)."""

    name: ClassVar[str] = "alibi"
    slopes: tuple[float, ...] | None = eqx.field(static=True, default=None)

    def __init__(self, slopes=None):
        if slopes is not None:
            slopes = tuple(float(m) for m in np.ravel(np.asarray(slopes, float)))
            if not slopes or not all(math.isfinite(m) for m in slopes):
                raise ValueError(f"slopes={slopes!r} must be one or more finite numbers, one per head")
        self.slopes = slopes

    def with_heads(self, num_heads):
        if self.slopes is None:
            return ALiBi(default_alibi_slopes(num_heads))
        if len(self.slopes) not in (1, num_heads):
            raise ValueError(
                f"ALiBi slopes has {len(self.slopes)} values for {num_heads} heads; give one per head"
            )
        return self

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        p_q = _positions(query_pos, query_index, logits.dtype)
        p_k = _positions(key_pos, key_index, logits.dtype)
        distance = p_q[..., :, None] - p_k[..., None, :]
        slopes = jnp.asarray(self.slopes or default_alibi_slopes(1), logits.dtype)
        if len(slopes) > 1:  # one per head, the axis before (queries, keys)
            distance = distance * slopes[:, None, None]
        else:
            distance = distance * slopes[0]
        return _causal(logits - distance, query_index, key_index)


def default_alibi_slopes(num_heads: int) -> tuple[float, ...]:
    """m_h = 2^{−8h/H}, h = 1..H, for H a power of two; otherwise those of the power of
    two below H, then every other one of twice that (BLOOM's rule)."""
    if num_heads & (num_heads - 1) == 0:
        return tuple(2.0 ** (-8.0 * h / num_heads) for h in range(1, num_heads + 1))
    below = 1 << (num_heads.bit_length() - 1)
    extra = default_alibi_slopes(2 * below)[0::2][: num_heads - below]
    return default_alibi_slopes(below) + extra


class RoPE(AbstractPosition):
    """Rotary position embedding (Su et al., RoFormer, arXiv 2104.09864): q_i = R(p_i) q,
    k_j = R(p_j) k, R(p) rotating coordinate pair a by p·ω_a, ω_a = base^{−2a/d_k},
    a = 0..d_k/2 − 1; pairs (a, a + d_k/2) (``"half"``, the LLaMA/GPT-NeoX code) or
    (2a, 2a + 1) (``"interleaved"``, RoFormer/GPT-J). Only p_j − p_i matters; V is not
    rotated. Not causal by itself (combine with :class:`Causal`)."""

    name: ClassVar[str] = "rope"
    inner_products_only: ClassVar[bool] = False
    symmetric_logits: ClassVar[bool] = True
    base: float = eqx.field(static=True, default=10000.0)
    convention: str = eqx.field(static=True, default="half")

    def __init__(self, base=10000.0, convention="half"):
        base = float(base)
        if not (base > 0 and not math.isnan(base)):
            raise ValueError(f"base={base!r} must be positive (math.inf: no rotation)")
        if convention not in ("half", "interleaved"):
            raise ValueError(f"convention={convention!r} is not one of: half, interleaved")
        self.base, self.convention = base, convention

    def check(self, num_tokens, query_dim):
        if query_dim % 2:
            raise ValueError(
                f"RoPE turns pairs of coordinates: the query/key dimension d_k={query_dim} must be even"
            )

    def rotate(self, query, key, positions):
        d_k = query.shape[-1]
        n, dtype = query.shape[-2], query.dtype
        p = jnp.arange(n, dtype=dtype) if positions is None else jnp.asarray(positions, dtype)
        omega = jnp.asarray(self.base ** (-2.0 * np.arange(d_k // 2) / d_k), dtype)
        angle = p[..., :, None] * omega  # (…, n, d_k/2)
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        return self._turn(query, cos, sin), self._turn(key, cos, sin)

    def _turn(self, x, cos, sin):
        if self.convention == "half":
            a, b = jnp.split(x, 2, axis=-1)
            return jnp.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
        a, b = x[..., 0::2], x[..., 1::2]
        return jnp.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(x.shape)


class PositionalPrior(AbstractPosition):
    """A positional prior (Duerinckx, Geshkovski, Rossi, arXiv 2605.09213):
    w_ij = π_ij e^{ℓ_ij} (USA) or π_ij e^{ℓ_ij} / Σ_k π_ik e^{ℓ_ik} (softmax), ``weights``
    π an (n, n) array that does not depend on the tokens, each row summing to 1 (or to
    0: a token that attends to no one does not move). USA's 1/n is the uniform prior;
    with USA this is the lost-in-the-middle model."""

    name: ClassVar[str] = "prior"
    normalizes: ClassVar[bool] = True
    weights: np.ndarray
    empty: bool = eqx.field(static=True)

    def __init__(self, weights):
        pi = np.asarray(weights, dtype=float)
        if pi.ndim != 2 or pi.shape[0] != pi.shape[1]:
            raise ValueError(f"weights has shape {pi.shape}; expected (n, n)")
        if not np.all(np.isfinite(pi)) or np.any(pi < 0):
            raise ValueError("weights must be finite and nonnegative")
        rows = pi.sum(axis=1)
        bad = ~(np.isclose(rows, 1.0, atol=1e-9) | (rows == 0))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"weights row {i} sums to {rows[i]:.6g}; each row must sum to 1 (or 0: attends to no one)"
            )
        self.weights, self.empty = pi, bool(np.any(rows == 0))

    @property
    def empty_rows(self) -> bool:
        return self.empty

    def check(self, num_tokens, query_dim):
        if self.weights.shape[0] != num_tokens:
            n = self.weights.shape[0]
            raise ValueError(f"the positional prior's weights are {n} x {n} for {num_tokens} tokens")

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        n = self.weights.shape[0]
        pi = jnp.asarray(self.weights, logits.dtype)[jnp.minimum(query_index, n - 1)][:, key_index]
        return jnp.where(pi > 0, logits + jnp.log(jnp.where(pi > 0, pi, 1)), -jnp.inf)


class Positions(AbstractPosition):
    """Several position parts applied in order (e.g. RoPE and causal)."""

    name: ClassVar[str] = "+"
    parts: tuple

    @property
    def inner_products_only(self) -> bool:
        return all(p.inner_products_only for p in self.parts)

    @property
    def gram_flow(self) -> bool:
        return all(p.gram_flow for p in self.parts)

    @property
    def symmetric_logits(self) -> bool:
        return all(p.symmetric_logits for p in self.parts)

    @property
    def normalizes(self) -> bool:
        return any(p.normalizes for p in self.parts)

    @property
    def empty_rows(self) -> bool:
        return any(p.empty_rows for p in self.parts)

    @property
    def label(self) -> str:
        return "+".join(p.name for p in self.parts)

    def rotate(self, query, key, positions):
        for part in self.parts:
            query, key = part.rotate(query, key, positions)
        return query, key

    def logits(self, logits, query_index, key_index, query_pos=None, key_pos=None):
        for part in self.parts:
            logits = part.logits(logits, query_index, key_index, query_pos, key_pos)
        return logits

    def with_heads(self, num_heads):
        return Positions(tuple(p.with_heads(num_heads) for p in self.parts))

    def check(self, num_tokens, query_dim):
        for part in self.parts:
            part.check(num_tokens, query_dim)


def as_position(position=None, causal: bool = False) -> AbstractPosition:
    """The position part from an instance, a tuple of them, or ``None`` with the
    ``causal`` shortcut."""
    if isinstance(position, (tuple, list)):
        parts = tuple(as_position(p) for p in position)
        if causal and not any(isinstance(p, (Causal, ALiBi)) for p in parts):
            parts += (Causal(),)
        return parts[0] if len(parts) == 1 else Positions(parts)
    if isinstance(position, AbstractPosition):
        if causal and isinstance(position, NoPosition):
            raise ValueError(f"causal=True was given with position={position.name!r}; give one of them")
        if causal and not isinstance(position, (Causal, ALiBi)):
            return Positions((position, Causal()))
        return position
    if position is None:
        return Causal() if causal else NoPosition()
    raise ValueError(f"position={position!r} must be a position part such as particles.Causal()")


SPEC_NAMES = ("none", "causal", "alibi", "rope")


def from_spec(spec: str, name: str = "position") -> AbstractPosition | None:
    """Position parts from a label: names joined by ``+``, each ``none``, ``causal``,
    ``alibi[:SLOPE]`` (one slope for every head; default 2^{−8h/H}) or ``rope[:BASE]``
    (default base 10000), e.g. ``"rope:500+causal"``; None for ``"none"``. A one-line
    error naming ``name`` otherwise."""
    parts = []
    for item in str(spec).split("+"):
        key, _, value = item.partition(":")
        if key not in SPEC_NAMES or (value and key in ("none", "causal")):
            raise ValueError(
                f"{name}={spec!r}: {item!r} is not one of: none, causal, alibi[:SLOPE], rope[:BASE]"
            )
        try:
            number = float(value) if value else None
        except ValueError:
            raise ValueError(f"{name}={spec!r}: {value!r} is not a number") from None
        if key == "alibi":
            parts.append(ALiBi(None if number is None else [number]))
        elif key == "rope":
            parts.append(RoPE() if number is None else RoPE(base=number))
        elif key == "causal":
            parts.append(Causal())
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Positions(tuple(parts))
