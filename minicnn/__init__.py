"""minicnn: a small define-by-run deep-learning engine on NumPy (CPU) and CuPy (GPU).

    import minicnn
    import minicnn.functional as F
    from minicnn import nn, optim
    from minicnn import distributed   # data-parallel training under mpiexec
"""
from .backend import DeviceUnavailableError, gpu_available
from .kernels import configure_cpu
from .random import manual_seed
from .engine import Tensor, is_grad_enabled, no_grad
from . import distributed, functional  # noqa: E402
from . import nn, optim  # noqa: E402
from . import autograd  # noqa: E402  (trace(): watch every op; minicnn.graph draws the graph)
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
# As in PyTorch, `minicnn.tensor` is the function that makes a tensor. The module
# minicnn/engine.py stays importable by name: `from minicnn.engine import Op`.
from .creation import arange, ones, ones_like, randint, randn, tensor, zeros, zeros_like  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DeviceUnavailableError", "GradcheckError", "Tensor", "arange", "autograd", "configure_cpu",
           "distributed", "functional", "gpu_available", "gradcheck", "is_grad_enabled", "manual_seed", "nn",
           "no_grad", "ones", "ones_like", "optim", "randint", "randn", "tensor", "zeros", "zeros_like"]
