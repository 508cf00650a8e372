"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's rule)."""
from ..backend import get_array_module
from ..kernels.dispatch import Forms
from .optimizer import Optimizer


def sgd_update_plain(param, grad, buffer, lr, momentum, weight_decay, nesterov):
    """One SGD step on ``param`` in place (``buffer``: the momentum buffer, None without momentum)."""
    if weight_decay:
        grad = grad + weight_decay * param
    if momentum:
        buffer *= momentum
        buffer += grad
        grad = grad + momentum * buffer if nesterov else buffer
    param -= lr * grad


# The fast forms: the whole rule in one kernel (minicnn.kernels.optim).
sgd_update = Forms("sgd_update", plain=sgd_update_plain, cpu="optim:sgd_update_numba", gpu="optim:sgd_update_fused")


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
        sgd_update(param, grad, state.get("momentum_buffer"), self.lr, self.momentum, self.weight_decay, self.nesterov)
