r"""Position parts: what the tokens' positions do to the logits ℓ_ij = β⟨q_i, k_j⟩
(MODEL.md §11). One small final class each; :func:`as_position` builds them from the
``causal`` shortcut.

To add a position part: one subclass of :class:`AbstractPosition` here (``name``, what it
keeps, and :meth:`~AbstractPosition.logits`), and its tests.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp


class AbstractPosition(eqx.Module):
    """Positional structure of attention. ``permutation_equivariant``: relabelling the
    tokens relabels the flow (then coincident tokens stay together, the weights of
    Q = K = I are symmetric and pairs of blocks may be computed once)."""

    name: ClassVar[str]
    permutation_equivariant: ClassVar[bool]

    @abc.abstractmethod
    def logits(self, logits, query_index, key_index):
        """The logits (…, queries, keys) of the queries at ``query_index`` and the keys
        at ``key_index`` (token indices), with the positional part applied (−∞: masked)."""


class NoPosition(AbstractPosition):
    """No positional structure: every token attends to every token."""

    name: ClassVar[str] = "none"
    permutation_equivariant: ClassVar[bool] = True

    def logits(self, logits, query_index, key_index):
        return logits


class Causal(AbstractPosition):
    """The causal mask of decoders: token i attends to j ≤ i only. With V = I and
    softmax, token 0 never moves and every token converges to θ_0(0) (Karagodin,
    Polyanskiy, Rigollet, arXiv 2411.04990)."""

    name: ClassVar[str] = "causal"
    permutation_equivariant: ClassVar[bool] = False

    def logits(self, logits, query_index, key_index):
        return jnp.where(key_index[None, :] <= query_index[:, None], logits, -jnp.inf)


def as_position(position=None, causal: bool = False) -> AbstractPosition:
    """The position part from an instance, or ``None`` with the ``causal`` shortcut."""
    if isinstance(position, AbstractPosition):
        if causal and not isinstance(position, Causal):
            raise ValueError(f"causal=True was given with position={position.name!r}; give one of them")
        return position
    if position is None:
        return Causal() if causal else NoPosition()
    raise ValueError(f"position={position!r} must be a position part such as particles.Causal()")
