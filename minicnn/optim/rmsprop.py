"""RMSprop (Tieleman & Hinton, 2012), with PyTorch's update rule, options and defaults."""
from ..backend import get_array_module
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop: divide each gradient by a running root mean square of its recent values.

        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g**2                 (s starts at 0)
        d = sqrt(s) + eps, or if centered: sqrt(s - a**2) + eps with a = alpha * a + (1 - alpha) * g
        b = momentum * b + g / d;  p = p - lr * b          (momentum > 0)
        p = p - lr * g / d                                 (momentum = 0)
    """

    options = ("alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr)
        self.alpha = self._check_non_negative("alpha", alpha)
        self.eps = self._check_non_negative("eps", eps)
        self.weight_decay = self._check_non_negative("weight_decay", weight_decay)
        self.momentum = self._check_non_negative("momentum", momentum)
        self.centered = bool(centered)

    def update(self, param, grad, state):
        xp = get_array_module(param)
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state.setdefault("grad_avg", xp.zeros_like(param))
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * grad
            denominator = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denominator = xp.sqrt(square_avg)
        denominator += self.eps
        if self.momentum:
            buffer = state.setdefault("momentum_buffer", xp.zeros_like(param))
            buffer *= self.momentum
            buffer += grad / denominator
            param -= self.lr * buffer
        else:
            param -= self.lr * (grad / denominator)
