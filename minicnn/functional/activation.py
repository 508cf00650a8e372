"""ReLU, SiLU, softmax and log-softmax. ReLU's and SiLU's fast forms: :mod:`minicnn.kernels.activation`."""
import numpy as np

from ..backend import get_array_module
from ..engine import Op
from ..kernels.dispatch import Forms
from .validation import dim_or_axis, normalize_axis, require_tensor


def relu_plain(x):
    """max(x, 0) of an array."""
    return get_array_module(x).maximum(x, x.dtype.type(0))


def relu_backward_plain(gy, y):
    """gy * (y > 0): the gradient through a ReLU whose output was y."""
    return gy * (y > 0)


relu_values = Forms("relu", plain=relu_plain, cpu="activation:relu_threads", gpu="activation:relu_fused")
relu_gradient = Forms("relu_backward", plain=relu_backward_plain, cpu="activation:relu_backward_numba",
                      gpu="activation:relu_backward_fused")


class ReLUFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, x):
        self.y = relu_values(x)
        return self.y

    def backward(self, gy):  # keeping y (the next op holds it anyway) costs no memory
        return relu_gradient(gy, self.y)


def sigmoid_plain(x):
    """1 / (1 + exp(-x)) of an array, written with e = exp(-|x|) <= 1 so that exp never overflows."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1, e) / (1 + e)


def silu_plain(x):
    """x * sigmoid(x) of an array."""
    return x * sigmoid_plain(x)


def silu_backward_plain(gy, x):
    """gy * d/dx (x * s) = gy * s * (1 + x * (1 - s)), s = sigmoid(x), for the SiLU's input x."""
    s = sigmoid_plain(x)
    return gy * (s * (1 + x * (1 - s)))


silu_values = Forms("silu", plain=silu_plain, cpu="activation:silu_numba", gpu="activation:silu_fused")
silu_gradient = Forms("silu_backward", plain=silu_backward_plain, cpu="activation:silu_backward_numba",
                      gpu="activation:silu_backward_fused")


class SiLUFunction(Op):
    def forward(self, x):
        self.x = x  # backward recomputes sigmoid(x) from x, which the graph holds anyway
        return silu_values(x)

    def backward(self, gy):
        return silu_gradient(gy, self.x)


class LogSoftmaxFunction(Op):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)  # exp can no longer overflow
        y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.softmax = xp.exp(y)
        return y

    def backward(self, gy):
        return gy - self.softmax * gy.sum(axis=self.axis, keepdims=True)


class SoftmaxFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


def relu(x):
    """max(x, 0) elementwise. The gradient at exactly 0 is taken as 0 (as in PyTorch)."""
    require_tensor("relu", "x", x)
    return ReLUFunction()(x)


def silu(x):
    """x * sigmoid(x) elementwise (the "sigmoid linear unit", also called swish; PyTorch's ``F.silu``)."""
    require_tensor("silu", "x", x)
    return SiLUFunction()(x)


def _softmax_dim(op, x, dim, axis):
    require_tensor(op, "x", x)
    dim = dim_or_axis(op, dim, axis)
    if dim is None:
        raise TypeError(f"{op}: give the axis to normalize over, dim=... (or NumPy's name, axis=...)")
    return normalize_axis(op, dim, x.ndim)


def softmax(x, dim=None, *, axis=None):
    """exp(x) / sum(exp(x)) along ``dim`` (``axis`` is NumPy's name for it), computed stably."""
    return SoftmaxFunction(_softmax_dim("softmax", x, dim, axis))(x)


def log_softmax(x, dim=None, *, axis=None):
    """log(softmax(x)) along ``dim`` (or ``axis``), computed without overflow or log(0)."""
    return LogSoftmaxFunction(_softmax_dim("log_softmax", x, dim, axis))(x)


class TanhFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class SigmoidFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, x):
        self.y = sigmoid_plain(x).astype(x.dtype, copy=False)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


def tanh(x):
    """The hyperbolic tangent, elementwise; its gradient is 1 - tanh(x)**2."""
    require_tensor("tanh", "x", x)
    return TanhFunction()(x)


def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x)) elementwise, without overflow; its gradient is y (1 - y)."""
    require_tensor("sigmoid", "x", x)
    return SigmoidFunction()(x)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    add("relu", "(3, 4, 5)", lambda inp: (relu, [inp.away_from_zero(3, 4, 5)]))
    add("softmax", "dim 1", lambda inp: ((lambda x: softmax(x, dim=1)), [inp.normal(4, 5)]))
    add("log_softmax", "dim 0", lambda inp: ((lambda x: log_softmax(x, dim=0)), [inp.normal(4, 5)]))
    add("silu", "(3, 4, 5)", lambda inp: (silu, [inp.normal(3, 4, 5)]))
    add("silu", "silu(10 x): the tails, where exp(-|x|) is tiny", lambda inp: (
        (lambda x: silu(x * 10.0)), [inp.normal(2, 3)]))
    add("tanh", "(3, 4)", lambda inp: (tanh, [inp.normal(3, 4)]))
    add("sigmoid", "large |x| too", lambda inp: (sigmoid, [inp._tensor(np.array([-30.0, -3.0, 0.2, 4.0, 30.0]))]))
