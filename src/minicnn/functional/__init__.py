"""minicnn.functional: the ops, as functions of Tensors (PyTorch's ``torch.nn.functional``).

Conventional import: ``import minicnn.functional as F``. Layouts are NCHW;
names, argument order, defaults and output sizes follow PyTorch.
"""
from .activation import log_softmax, relu, softmax
from .arithmetic import add, div, exp, log, matmul, mean, mul, neg, power, reshape, sub, sum
from .conv import conv2d
from .dropout import dropout
from .linear import linear
from .loss import cross_entropy
from .lrn import local_response_norm
from .normalization import batch_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .shape import concat, flatten

__all__ = [
    "adaptive_avg_pool2d", "add", "avg_pool2d", "batch_norm", "concat", "conv2d", "cross_entropy",
    "div", "dropout", "exp", "flatten", "linear", "local_response_norm", "log", "log_softmax",
    "matmul", "max_pool2d", "mean", "mul", "neg", "power", "relu", "reshape", "softmax", "sub", "sum",
]
