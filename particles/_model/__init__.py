"""The model's pluggable parts, one family per module: attention kernels
(:mod:`.kernel`) and position parts (:mod:`.position`)."""

from .kernel import KERNELS as KERNELS
from .kernel import USA as USA
from .kernel import AbstractKernel as AbstractKernel
from .kernel import Softmax as Softmax
from .kernel import as_kernel as as_kernel
from .position import AbstractPosition as AbstractPosition
from .position import ALiBi as ALiBi
from .position import Causal as Causal
from .position import NoPosition as NoPosition
from .position import PositionalPrior as PositionalPrior
from .position import Positions as Positions
from .position import RoPE as RoPE
from .position import SlidingWindow as SlidingWindow
from .position import as_position as as_position
