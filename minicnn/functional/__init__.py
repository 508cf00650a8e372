"""minicnn.functional: the ops, as functions of Tensors (PyTorch's ``torch.nn.functional``).

Conventional import: ``import minicnn.functional as F``. Layouts are NCHW;
names, argument order, defaults and output sizes follow PyTorch. Where an op
takes an axis, it is called ``dim`` (PyTorch's name); ``axis`` is accepted as
NumPy's name for it.
"""
from .activation import log_softmax, relu, sigmoid, silu, softmax, tanh
from .arithmetic import abs, add, clamp, clip, div, exp, log, matmul, mul, neg, power, sqrt, sub
from .conv import conv2d
from .dropout import dropout
from .indexing import index
from .linear import linear
from .loss import cross_entropy, mse_loss, nll_loss
from .lrn import local_response_norm
from .normalization import batch_norm
from .pointwise import cos, sin, where
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .reduction import all, any, argmax, argmin, max, mean, min, sum, var
from .shape import concat, flatten, permute, reshape, squeeze, stack, transpose, unsqueeze

__all__ = [
    "abs", "adaptive_avg_pool2d", "add", "all", "any", "argmax", "argmin", "avg_pool2d", "batch_norm",
    "clamp", "clip", "concat", "conv2d", "cos", "cross_entropy", "div", "dropout", "exp", "flatten", "index",
    "linear", "local_response_norm", "log", "log_softmax", "matmul", "max", "max_pool2d", "mean", "min",
    "mse_loss", "mul", "neg", "nll_loss", "permute", "power", "relu", "reshape", "sigmoid", "silu", "sin", "softmax",
    "sqrt", "squeeze", "stack", "sub", "sum", "tanh", "transpose", "unsqueeze", "var", "where",
]
