"""The mean-field limit n → ∞ (MODEL.md §12): the density of the tokens on S^{d−1}
follows ∂_t ρ + ∇·(ρ v[ρ]) = D Δρ.

- :func:`solve`: the density flow (the circle in Fourier modes; zonal densities on
  S^{d−1}, d ≥ 3, in Gegenbauer polynomials), SA or USA, the sphere-bound speed schemes,
  noise D;
- :func:`stationary` and :func:`branch`: stationary states and their continuation in D,
  with their stability;
- :func:`linear_rates`, :func:`threshold`, :func:`critical_beta`: the closed forms.
"""

from ._api import critical_beta as critical_beta
from ._api import linear_rates as linear_rates
from ._api import threshold as threshold
from ._solve import MeanFieldSolution as MeanFieldSolution
from ._solve import solve as solve
from ._start import grid as grid
from ._stationary import Stationary as Stationary
from ._stationary import branch as branch
from ._stationary import stationary as stationary
