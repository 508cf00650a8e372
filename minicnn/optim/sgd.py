"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's rule)."""
from .. import kernels
from ..backend import get_array_module
from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD: for each parameter p with gradient g,

        g = g + weight_decay * p
        b = momentum * b + g            (b = g at the first step)
        g = g + momentum * b if nesterov else b
        p = p - lr * g
    """

    options = ("momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum = self._check_non_negative("momentum", momentum)
        self.weight_decay = self._check_non_negative("weight_decay", weight_decay)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum above 0")
        self.nesterov = bool(nesterov)

    def update(self, param, grad, state):
        if self.momentum and "momentum_buffer" not in state:
            # zeros: the first step then makes b = g, as PyTorch's copy does
            state["momentum_buffer"] = get_array_module(param).zeros_like(param)
        if kernels.use_gpu_kernels(param):  # the whole rule in one kernel
            kernels.gpu_fused.sgd_update(param, grad, state.get("momentum_buffer"), self.lr, self.momentum,
                                         self.weight_decay, self.nesterov)
            return
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buffer = state["momentum_buffer"]
            buffer *= self.momentum
            buffer += grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * grad
