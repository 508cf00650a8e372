"""minicnn: a small define-by-run deep-learning engine on NumPy (CPU) and CuPy (GPU).

    import minicnn
    import minicnn.functional as F
    from minicnn import nn, optim
"""
from .backend import DeviceUnavailableError, gpu_available
from .random import manual_seed
from .tensor import Tensor, is_grad_enabled, no_grad
from . import functional  # noqa: E402
from . import nn, optim  # noqa: E402
from . import autograd  # noqa: E402  (trace(): watch every op; minicnn.graph draws the graph)
from .gradcheck import GradcheckError, gradcheck  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DeviceUnavailableError", "GradcheckError", "Tensor", "autograd", "functional", "gpu_available",
           "gradcheck", "is_grad_enabled", "manual_seed", "nn", "no_grad", "optim"]
