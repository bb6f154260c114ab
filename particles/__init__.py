"""particles: transformer tokens as interacting particles on the sphere.

Public API; the implementation lives in private modules.
"""

__version__ = "0.1.0"

from . import analysis as analysis
from . import animate as animate
from . import equiangular as equiangular
from . import init as init
from . import schemes as schemes
from ._attention import Attention as Attention
from ._cache import enable_compilation_cache as enable_compilation_cache
from ._info import info as info
from ._simulate import SimulationError as SimulationError
from ._simulate import SimulationWarning as SimulationWarning
from ._simulate import simulate as simulate
from ._sweep import open_sweep as open_sweep
from ._sweep import sweep as sweep
from ._trajectory import Trajectory as Trajectory
from ._trajectory import load as load
from .schemes import SCHEMES as SCHEMES
from .schemes import AbstractAmbientScheme as AbstractAmbientScheme
from .schemes import AbstractScheme as AbstractScheme
from .schemes import AbstractSpeedScheme as AbstractSpeedScheme
from .schemes import get_scheme as get_scheme
from .weights import random_weights as random_weights
