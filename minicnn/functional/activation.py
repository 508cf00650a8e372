"""ReLU, softmax and log-softmax."""
from .. import kernels
from ..backend import get_array_module
from ..engine import Op
from .validation import dim_or_axis, normalize_axis, require_tensor


def relu_values(x):
    """max(x, 0) of an array (numba's threads on the CPU; one kernel on a GPU)."""
    if kernels.use_numba(x):
        return kernels.cpu.relu(x)
    if kernels.use_gpu_kernels(x):
        return kernels.gpu_fused.relu(x)
    return get_array_module(x).maximum(x, x.dtype.type(0))


def relu_gradient(gy, y):
    """gy * (y > 0): the gradient through a ReLU whose output was y (one pass, or one kernel on a GPU)."""
    if kernels.use_numba(gy):
        return kernels.cpu.relu_backward(gy, y)
    if kernels.use_gpu_kernels(gy):
        return kernels.gpu_fused.relu_backward(gy, y)
    return gy * (y > 0)


class ReLUFunction(Op):
    saved_inputs, saves_output = (), True  # backward reads the output only

    def forward(self, x):
        self.y = relu_values(x)
        return self.y

    def backward(self, gy):  # keeping y (the next op holds it anyway) costs no memory
        return relu_gradient(gy, self.y)


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
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class SigmoidFunction(Op):
    def forward(self, x):
        xp = get_array_module(x)
        # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below: neither exponent can overflow
        e = xp.exp(-xp.abs(x))
        self.y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
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
