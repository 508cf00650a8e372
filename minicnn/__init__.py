"""minicnn: a small define-by-run deep-learning engine on NumPy (CPU) and CuPy (GPU).

    import minicnn
    import minicnn.functional as F
    from minicnn import nn, optim
    from minicnn import distributed   # data-parallel training under mpiexec
"""
from .backend import DeviceUnavailableError, device, gpu_available
from .kernels import configure_cpu
from .random import manual_seed
from .engine import Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from . import cuda, distributed, functional  # noqa: E402
from . import nn, optim, utils  # noqa: E402
from . import autograd  # noqa: E402  (trace(): watch every op; minicnn.graph draws the graph)
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
# As in PyTorch, `minicnn.tensor` is the function that makes a tensor. The module
# minicnn/engine.py stays importable by name: `from minicnn.engine import Op`.
from .creation import (arange, as_tensor, empty, eye, from_numpy, full, linspace, ones, ones_like,  # noqa: E402
                       rand, rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
# PyTorch's functions of tensors at the top level (torch.cat, torch.sum, torch.sin...): the ops of functional.
from .functional import (argmax, cos, exp, flatten, log, matmul, max, mean, min, sigmoid, sin, sqrt,  # noqa: E402
                         stack, sum, tanh, where)
from .functional import concat as cat  # noqa: E402
from .serialization import load, save  # noqa: E402
# PyTorch's dtype names (minicnn.float32, minicnn.long...) as NumPy dtypes; last, as they shadow builtins here.
from .dtypes import (bool, double, float, float16, float32, float64, half, int, int8, int16, int32,  # noqa: E402
                     int64, long, short, uint8)

__version__ = "0.1.0"
__all__ = ["DeviceUnavailableError", "GradcheckError", "Tensor", "arange", "argmax", "as_tensor", "autograd",
           "bool", "cat", "configure_cpu", "cos", "cuda", "device", "distributed", "double", "empty",
           "enable_grad", "exp", "eye", "flatten", "float", "float16", "float32", "float64", "from_numpy", "full",
           "functional", "gpu_available", "gradcheck", "half", "int", "int8", "int16", "int32", "int64",
           "is_grad_enabled", "linspace", "load", "log", "long", "manual_seed", "matmul", "max", "mean", "min",
           "nn", "no_grad", "ones", "ones_like", "optim", "rand", "rand_like", "randint", "randn", "randn_like",
           "save", "set_grad_enabled", "short", "sigmoid", "sin", "sqrt", "stack", "sum", "tanh", "tensor", "uint8",
           "utils", "where", "zeros", "zeros_like"]
