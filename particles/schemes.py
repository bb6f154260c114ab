"""Normalization schemes as speed regulation of the attention flow (MODEL.md §2).

Every scheme moves the directions θ_i by the same attention vector A_i, slowed by a
speed factor s_i, and gives the radius r_i = |x_i| its own rate:

    dθ_i/dt = (1/s_i) P_{θ_i} A_i(Θ),        dr_i/dt = (scheme-dependent)

(Karagodin, Ge, Polyanskiy, Rigollet, *Normalization in Attention Dynamics*,
NeurIPS 2025, arXiv 2510.22026.)

A scheme is a small equinox module. Subclass :class:`AbstractSpeedScheme` and give
``speed`` and ``radial_rate`` as functions of (t, r_i, a_i = ⟨θ_i, A_i⟩, |A_i|), or
subclass :class:`AbstractAmbientScheme` and give the ambient velocity dx_i/dt. The
integrator and the equiangular reduced model take any such scheme unchanged.

Next to its speed, each built-in scheme gives its discrete layer (MODEL.md §2, §7):
:meth:`AbstractScheme.layer` applies attention, then optionally the MLP, each a residual
sublayer x ← sublayer(t, x, h, f, N) placed by the scheme (:meth:`AbstractScheme.sublayer`),
with N a :class:`~particles.Norm` (the projection by default). With the projection
and attention only, one layer is an explicit Euler-type step of the scheme's flow, so
L layers of step h = T/L converge to it at first order. A user scheme gives its layer
by overriding ``sublayer`` (or ``layer``); a speed scheme has no default.
"""

import abc
import dataclasses
import difflib
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._norms import NORM_KINDS, Norm, as_norm
from ._validate import check_choice, check_float
from .sphere import safe_norm, tangent_projection


class AbstractScheme(eqx.Module):
    """A normalization scheme: the velocity of directions and radii.

    ``sphere_bound`` schemes keep r_i ≡ 1. ``attends_to_tokens`` schemes feed the
    ambient tokens x_i = r_i θ_i (not the directions) into the attention.
    ``keeps_span``: dθ_i/dt is a combination of θ_i and A_i, so with Q = K = V = I the
    tokens stay in the span of the initial tokens (the solver may then work in that
    span, :class:`particles.SpanChart`); a subclass whose velocity can leave
    the span must set it False.
    """

    sphere_bound: eqx.AbstractClassVar[bool]
    attends_to_tokens: eqx.AbstractClassVar[bool]
    keeps_span: ClassVar[bool] = False

    @abc.abstractmethod
    def velocity(self, t, theta: Float[Array, "*b n d"], r: Float[Array, "*b n"], attention):
        """Return (dθ/dt, dr/dt) for directions ``theta`` and radii ``r``."""

    def jump_times(self) -> tuple[float, ...]:
        """Times at which the vector field is discontinuous (the solver steps across)."""
        return ()

    @property
    def name(self) -> str:
        return getattr(type(self), "scheme_name", type(self).__name__)

    def params(self) -> dict:
        return {k: float(v) for k, v in vars(self).items()}

    def _attend(self, t, theta, r, attention):
        return attention(t, r[..., None] * theta if self.attends_to_tokens else theta)

    # -- discrete layers (MODEL.md §7) -------------------------------------------------

    #: the norm kinds the layer map takes (nGPT and "none" are defined by the projection)
    layer_norm_kinds: ClassVar[tuple[str, ...]] = NORM_KINDS

    def layer(
        self,
        t,
        x: Float[Array, "*b n d"],
        h,
        attend: Callable[[Array], Array],
        mlp: Callable[[Array], Array] | None = None,
        norm=None,
        mlp_norm=None,
    ) -> Float[Array, "*b n d"]:
        """One transformer layer starting at time ``t`` (t = t0 + l h for layer l) with
        residual step ``h``: the attention sublayer, then the MLP one if ``mlp`` is given,
        each placed by :meth:`sublayer` with ``norm`` (None: the projection; the MLP's
        with ``mlp_norm`` where given, a trained model's second norm).

        ``attend(y)`` is this layer's attention A on the (already normalised) tokens y,
        e.g. ``lambda y: attention(l, y)`` with a :class:`particles.Attention`;
        ``mlp(y)`` its MLP F (an :class:`particles.MLP` of one layer, ``mlp.at_layer(l)``);
        ``norm`` one layer's :class:`particles.Norm` (``norm.at_layer(l)``)."""
        norm = as_norm(norm)
        mlp_norm = norm if mlp_norm is None else as_norm(mlp_norm)
        self.check_layer_norm(norm)
        self.check_layer_norm(mlp_norm)
        t = jnp.asarray(t, x.dtype)
        x = self.sublayer(t, x, h, attend, norm)
        return x if mlp is None else self.sublayer(t, x, h, mlp, mlp_norm)

    def sublayer(self, t, x, h, f, norm: Norm):
        """One residual sublayer x ← ... with f the attention or the MLP (override this)."""
        raise NotImplementedError(
            f"scheme {self.name!r} defines no layer map; override sublayer(t, x, h, f, norm) or layer(...)"
        )

    def check_layer_norm(self, norm: Norm) -> None:
        """Raise a one-line ValueError if the layer map does not take ``norm``'s kind."""
        if norm.kind not in self.layer_norm_kinds:
            raise ValueError(
                f"scheme {self.name!r} normalises by {' or '.join(self.layer_norm_kinds)} only "
                f"(by definition), not {norm.kind}; pass norm=None"
            )

    def post_normalized(self, t):
        """Whether the layer starting at time t (may be traced) ends with N(...), a
        post-type placement: its small-h limit is the velocity projected by
        :meth:`particles.Norm.tangent`. Sphere-bound schemes are post-type."""
        return jnp.asarray(self.sphere_bound)

    def normalizes_layer_output(self, t0: float, t1: float) -> bool:
        """Whether some layer starting in [t0, t1) is post-type (:meth:`post_normalized`);
        its small-h limit needs a norm that retracts onto a manifold
        (:func:`particles.ode_limit_exists`). Concrete times; sphere-bound schemes are."""
        return self.sphere_bound


class AbstractSpeedScheme(AbstractScheme):
    """dθ_i/dt = P_{θ_i} A_i / s_i and dr_i/dt = radial_rate, both functions of
    (t, r_i, a_i = ⟨θ_i, A_i⟩, |A_i|)."""

    attends_to_tokens: ClassVar[bool] = False
    keeps_span: ClassVar[bool] = True

    @abc.abstractmethod
    def speed(self, t, r, a, A_norm):
        """The speed factor s_i (directions move at 1/s_i times the attention)."""

    def radial_rate(self, t, r, a, A_norm):
        """dr_i/dt; zero unless overridden."""
        return jnp.zeros_like(a)

    def velocity(self, t, theta, r, attention):
        A = self._attend(t, theta, r, attention)
        a = jnp.sum(theta * A, axis=-1)
        A_norm = safe_norm(A)
        s = jnp.broadcast_to(self.speed(t, r, a, A_norm), a.shape)
        # s = 0 only where A = 0 (ngpt, peri): no attention, no motion (not 0/0 = NaN).
        moving = (s != 0)[..., None]
        dtheta = jnp.where(moving, tangent_projection(theta, A) / jnp.where(moving, s[..., None], 1), 0)
        return dtheta, jnp.broadcast_to(self.radial_rate(t, r, a, A_norm), a.shape)


class AbstractAmbientScheme(AbstractScheme):
    """A scheme given by its ambient velocity dx_i/dt = v(t, x_i, A_i); then
    dθ_i/dt = P_{θ_i} v / r_i and dr_i/dt = ⟨θ_i, v⟩."""

    sphere_bound: ClassVar[bool] = False
    attends_to_tokens: ClassVar[bool] = False

    @abc.abstractmethod
    def ambient_velocity(self, t, x: Float[Array, "*b n d"], A: Float[Array, "*b n d"]):
        """dx_i/dt given the tokens x_i and their attention vectors A_i."""

    def velocity(self, t, theta, r, attention):
        A = self._attend(t, theta, r, attention)
        v = self.ambient_velocity(t, r[..., None] * theta, A)
        return tangent_projection(theta, v) / r[..., None], jnp.sum(theta * v, axis=-1)

    def sublayer(self, t, x, h, f, norm):
        """The explicit Euler step x ← x + h v(t, x, f(N x)) (f(x) if the scheme attends
        to the tokens): with the projection, a first-order step of the flow."""
        return x + h * self.ambient_velocity(t, x, f(x if self.attends_to_tokens else norm(x)))


class Post(AbstractSpeedScheme):
    """Post-LN, x ← N(x + h A(x)): s = 1, r ≡ 1. Collapse is exponential, 1 − ρ ~ e^{−2t}."""

    scheme_name: ClassVar[str] = "post"
    sphere_bound: ClassVar[bool] = True

    def sublayer(self, t, x, h, f, norm):
        return norm(x + h * f(x))

    def speed(self, t, r, a, A_norm):
        return jnp.ones_like(a)


class Pre(AbstractSpeedScheme):
    """Pre-LN, x ← x + h A(N(x)): s = r, dr/dt = ⟨θ, A⟩. Collapse is polynomial, 1 − ρ ~ t^{−2}."""

    scheme_name: ClassVar[str] = "pre"
    sphere_bound: ClassVar[bool] = False

    def sublayer(self, t, x, h, f, norm):
        return x + h * f(norm(x))

    def speed(self, t, r, a, A_norm):
        return r

    def radial_rate(self, t, r, a, A_norm):
        return a


class Peri(AbstractSpeedScheme):
    """Peri-LN, x ← x + h N(A(N(x))) (Kim et al., arXiv 2502.02732):
    s = r|A|, dr/dt = ⟨θ, A⟩/|A|."""

    scheme_name: ClassVar[str] = "peri"
    sphere_bound: ClassVar[bool] = False

    def sublayer(self, t, x, h, f, norm):
        return x + h * norm(f(norm(x)))

    def speed(self, t, r, a, A_norm):
        return r * A_norm

    def radial_rate(self, t, r, a, A_norm):
        return a / jnp.where(A_norm > 0, A_norm, 1)  # a = 0 where A = 0


class Mix(AbstractSpeedScheme):
    """Mix-LN (Li et al., arXiv 2412.13795): post for t ≤ tau, pre after."""

    scheme_name: ClassVar[str] = "mix"
    sphere_bound: ClassVar[bool] = False
    tau: float = 1.0

    def __check_init__(self):
        check_float("tau", self.tau)

    def speed(self, t, r, a, A_norm):
        return jnp.where(t <= self.tau, jnp.ones_like(r), r)

    def radial_rate(self, t, r, a, A_norm):
        return jnp.where(t <= self.tau, jnp.zeros_like(a), a)

    def jump_times(self):
        return (float(self.tau),)

    def sublayer(self, t, x, h, f, norm):
        return jnp.where(
            t <= self.tau, Post.sublayer(self, t, x, h, f, norm), Pre.sublayer(self, t, x, h, f, norm)
        )

    def post_normalized(self, t):
        return t <= self.tau

    def normalizes_layer_output(self, t0, t1):
        return t0 <= self.tau and t0 < t1


class NGPT(AbstractSpeedScheme):
    """nGPT, x ← N(x + α h (N(A(x)) − x)) (Loshchilov et al., arXiv 2410.01131):
    s = |A|/α, r ≡ 1; 1 − ρ ~ e^{−2αt}."""

    scheme_name: ClassVar[str] = "ngpt"
    sphere_bound: ClassVar[bool] = True
    layer_norm_kinds: ClassVar[tuple[str, ...]] = ("projection",)
    alpha: float = 1.0

    def __check_init__(self):
        check_float("alpha", self.alpha, positive=True)

    def speed(self, t, r, a, A_norm):
        return A_norm / self.alpha

    def sublayer(self, t, x, h, f, norm):
        return norm(x + self.alpha * h * (norm(f(x)) - x))


class Sqrt(AbstractSpeedScheme):
    """LayerNorm scaling, x ← N(x + h A(x)/√(t+1)) (Sun et al., arXiv 2502.05795):
    s = √(t+1), r ≡ 1; 1 − ρ ~ e^{−4√t}."""

    scheme_name: ClassVar[str] = "sqrt"
    sphere_bound: ClassVar[bool] = True

    def sublayer(self, t, x, h, f, norm):
        return norm(x + h * f(x) / jnp.sqrt(t + 1))

    def speed(self, t, r, a, A_norm):
        return jnp.sqrt(t + 1) * jnp.ones_like(a)


class NoNorm(AbstractSpeedScheme):
    """No normalization, ẋ = A(X) with the tokens themselves in the attention.
    Written as a speed scheme on x = rθ: s = r, dr/dt = ⟨θ, A(X)⟩."""

    scheme_name: ClassVar[str] = "none"
    sphere_bound: ClassVar[bool] = False
    attends_to_tokens: ClassVar[bool] = True
    layer_norm_kinds: ClassVar[tuple[str, ...]] = ("projection",)

    def check_layer_norm(self, norm):
        if norm.kind != "projection":
            raise ValueError(
                f"scheme 'none' applies no normalization, so norm={norm.kind!r} is unused; pass norm=None"
            )

    def sublayer(self, t, x, h, f, norm):
        return x + h * f(x)

    def speed(self, t, r, a, A_norm):
        return r

    def radial_rate(self, t, r, a, A_norm):
        return a


class SpanNorm(AbstractSpeedScheme):
    """SpanNorm, x ← x + h N(x + A(N(x))) (our reading of Wang et al., arXiv 2601.22580):
    ẋ = N(x + A), so s = r m and dr/dt = (r + ⟨θ, A⟩)/m with m = |x + A|
    = √(r² + 2 r ⟨θ, A⟩ + |A|²). Directions slow like 1/r²: no collapse."""

    scheme_name: ClassVar[str] = "spannorm"
    sphere_bound: ClassVar[bool] = False

    def sublayer(self, t, x, h, f, norm):
        return x + h * norm(x + f(norm(x)))

    def _m(self, r, a, A_norm):
        return jnp.sqrt(r * r + 2 * r * a + A_norm * A_norm)

    def speed(self, t, r, a, A_norm):
        return r * self._m(r, a, A_norm)

    def radial_rate(self, t, r, a, A_norm):
        return (r + a) / self._m(r, a, A_norm)


SCHEMES: dict[str, type[AbstractScheme]] = {
    cls.scheme_name: cls for cls in (Post, Pre, Peri, Mix, NGPT, Sqrt, NoNorm, SpanNorm)
}
"""The built-in schemes by name: ``post``, ``pre``, ``peri``, ``mix``, ``ngpt``, ``sqrt``,
``none``, ``spannorm`` (MODEL.md §2)."""


def closes_on_gram(scheme: AbstractScheme) -> bool:
    """Whether the scheme's flow (with Q = K = V = I) closes on the Gram matrix and the
    radii (MODEL.md §8): a speed scheme whose velocity is the generic P_θ A / s (an
    ambient scheme, or one that overrides ``velocity``, may leave the span)."""
    return isinstance(scheme, AbstractSpeedScheme) and type(scheme).velocity is AbstractSpeedScheme.velocity


def get_scheme(scheme: "str | AbstractScheme", **params) -> AbstractScheme:
    """A scheme instance from a name (``"post"``, ``"pre"``, ...) and its parameters,
    or an instance passed through unchanged."""
    if isinstance(scheme, AbstractScheme):
        if params:
            raise ValueError(
                f"scheme parameters {sorted(params)} were given with a scheme instance; "
                "set them on the instance instead"
            )
        return scheme
    if not isinstance(scheme, str):
        raise ValueError(f"scheme={scheme!r} must be a scheme name or an AbstractScheme instance")
    check_choice("scheme", scheme, tuple(SCHEMES))
    cls = SCHEMES[scheme]
    allowed = scheme_parameters(cls)
    for key in params:
        if key not in allowed:
            extra = f"; allowed: {', '.join(allowed)}" if allowed else "; it takes none"
            raise ValueError(f"scheme {scheme!r} has no parameter {key!r}{extra}")
    return cls(**{k: check_float(k, v) for k, v in params.items()})


def scheme_parameters(cls: type[AbstractScheme]) -> tuple[str, ...]:
    """The parameters a scheme class takes (``tau`` of mix, ``alpha`` of ngpt): its
    dataclass fields, not its class attributes."""
    return tuple(f.name for f in dataclasses.fields(cls))


def check_keywords(func: str, keywords, params) -> None:
    """Refuse, in one line naming the closest valid keyword, a keyword of ``func`` that
    is neither one of its own ``keywords`` nor a parameter of some built-in scheme (those
    are checked against the scheme by :func:`get_scheme`)."""
    known = sorted({p for cls in SCHEMES.values() for p in scheme_parameters(cls)})
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, [*keywords, *known], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"scheme parameters: {', '.join(known)}"
            raise ValueError(f"{func}() got an unknown keyword {key!r}; {hint}")
