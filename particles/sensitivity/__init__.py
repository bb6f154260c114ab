r"""Sensitivity of the flow and of the layer stack (MODEL.md §9): finite-time Lyapunov
exponents, gradients of a loss with respect to every depth and every layer's weights,
and the top of the Hessian spectrum.

Gradients differentiate through the solve :func:`particles.simulate` runs: the ODE
between save times is the same diffrax solve (:func:`flow_between`),
and ``layers=L`` the same layer maps (the layer maps of ``simulate``). Both are
seen as a chain of *segments* x_{s+1} = Φ_s(x_s) between the boundaries t_0 < ... < t_S
(the save times in the ODE mode, one layer each with ``layers``), so that

    DΦ = DΦ_{S−1} ⋯ DΦ_0,       ∂ℓ/∂x_s = DΦ_sᵀ ∂ℓ/∂x_{s+1}.

Lyapunov exponents push a frame of tangents forward instead: through each layer's JVP,
or, in the ODE mode, along the variational equation solved with the flow in one loop
(the same Tsit5 pair and step control).

The state space is the product of unit spheres for sphere-bound schemes (post, ngpt,
sqrt; with the projection norm in the layer mode), with n(d − 1) tangent directions,
and R^{n×d} otherwise. Batches (x0 of shape (*batch, n, d), beta broadcast against it)
are handled one trajectory at a time under ``jax.vmap`` (a single one without it),
each with its own steps.

References: Benettin, Galgani, Giorgilli, Strelcyn, *Lyapunov characteristic exponents
for smooth dynamical systems*, Meccanica 15 (1980) (QR re-orthonormalisation); Dieci,
Russell, Van Vleck, SIAM J. Numer. Anal. 34 (1997) (continuous QR); Zhang
et al., arXiv 2510.09904 (gradient norms per layer); Petrov et al., arXiv 2510.16927
(Hessian blocks of transformer sublayers); Lanczos, J. Res. NBS 45 (1950).

Layout: ``_flowmap`` (the flow map of one trajectory and its variational equation),
``_chain`` (one trajectory at a time, the segments, the tangent spaces), ``_frames``
(tangent frames pushed along the flow or the layers), ``_lyapunov``, ``_gradients``
(gradients, weight gradients, the stability profile), ``_hessian`` (Lanczos and the
Hessian spectra).
"""

from ._chain import on_spheres as on_spheres
from ._chain import tangent_basis as tangent_basis
from ._chain import tangent_dim as tangent_dim
from ._flowmap import flow_between as flow_between
from ._gradients import WeightGradients as WeightGradients
from ._gradients import gradients as gradients
from ._gradients import layer_gradients as layer_gradients
from ._gradients import layer_gradients_memory as layer_gradients_memory
from ._gradients import random_readout as random_readout
from ._gradients import stability_profile as stability_profile
from ._gradients import weight_gradients as weight_gradients
from ._hessian import HESSIAN_METHODS as HESSIAN_METHODS
from ._hessian import WRT as WRT
from ._hessian import HessianSpectrum as HessianSpectrum
from ._hessian import hessian_spectrum as hessian_spectrum
from ._hessian import lanczos as lanczos
from ._lyapunov import DENSE_MAX as DENSE_MAX
from ._lyapunov import JACOBIAN_MAX as JACOBIAN_MAX
from ._lyapunov import LYAPUNOV_METHODS as LYAPUNOV_METHODS
from ._lyapunov import LyapunovSpectrum as LyapunovSpectrum
from ._lyapunov import ambient_velocity as ambient_velocity
from ._lyapunov import lyapunov as lyapunov
