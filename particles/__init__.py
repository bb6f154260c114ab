"""particles: transformer tokens as interacting particles on the sphere.

Public API; the implementation lives in private modules. :func:`simulate` is the
entry point; underneath it, :func:`make_problem` (what is simulated),
:class:`SolveConfig` (how) and :func:`integrate` (one solve, a :class:`RawSolution`)
are the documented low-level pieces that sweeps and benchmarks use.
"""

from . import _cache
from . import analysis as analysis
from . import animate as animate
from . import equiangular as equiangular
from . import init as init
from . import kernels as kernels
from . import meanfield as meanfield
from . import schemes as schemes
from . import sensitivity as sensitivity
from . import sphere as sphere
from ._attention import Attention as Attention
from ._cache import enable_compilation_cache as enable_compilation_cache
from ._chart import AmbientChart as AmbientChart
from ._chart import SpanChart as SpanChart
from ._checkpoint import from_checkpoint as from_checkpoint
from ._config import SolveConfig as SolveConfig
from ._config import save_times as save_times
from ._flow import initial_state as initial_state
from ._flow import vector_field as vector_field
from ._gram import GramSolution as GramSolution
from ._gram import gram_velocity as gram_velocity
from ._gram import solve_gram as solve_gram
from ._hidden import load_hidden_states as load_hidden_states
from ._info import info as info
from ._integrate import integrate as integrate
from ._mlp import MLP as MLP
from ._mlp import AbstractMLP as AbstractMLP
from ._mlp import GatedMLP as GatedMLP
from ._model import USA as USA
from ._model import AbstractKernel as AbstractKernel
from ._model import AbstractPosition as AbstractPosition
from ._model import ALiBi as ALiBi
from ._model import Causal as Causal
from ._model import NoPosition as NoPosition
from ._model import PositionalPrior as PositionalPrior
from ._model import Positions as Positions
from ._model import RoPE as RoPE
from ._model import SlidingWindow as SlidingWindow
from ._model import Softmax as Softmax
from ._norms import NORM_KINDS as NORM_KINDS
from ._norms import Norm as Norm
from ._norms import ode_limit_exists as ode_limit_exists
from ._problem import Problem as Problem
from ._problem import make_problem as make_problem
from ._simulate import simulate as simulate
from ._solution import ObservedSolution as ObservedSolution
from ._solution import RawSolution as RawSolution
from ._solver import UnrolledTsit5 as UnrolledTsit5
from ._status import SimulationError as SimulationError
from ._status import SimulationWarning as SimulationWarning
from ._status import Status as Status
from ._sweep import open_sweep as open_sweep
from ._sweep import sweep as sweep
from ._trajectory import Trajectory as Trajectory
from ._trajectory import load as load
from ._transformer import Transformer as Transformer
from ._validate import precision as precision
from ._version import __version__ as __version__
from .kernels import PRECISION as PRECISION
from .kernels import auto_block_size as auto_block_size
from .schemes import SCHEMES as SCHEMES
from .schemes import AbstractAmbientScheme as AbstractAmbientScheme
from .schemes import AbstractScheme as AbstractScheme
from .schemes import AbstractSpeedScheme as AbstractSpeedScheme
from .schemes import get_scheme as get_scheme
from .weights import random_mlp as random_mlp
from .weights import random_norm as random_norm
from .weights import random_transformer as random_transformer
from .weights import random_weights as random_weights

if _cache.cache_requested():
    enable_compilation_cache()
