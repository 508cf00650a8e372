"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019)."""
from ..backend import get_array_module
from ..kernels.dispatch import Forms
from .optimizer import Optimizer


def adam_update_plain(param, grad, m, v, lr, betas, eps, weight_decay, decoupled, step):
    """One Adam (``decoupled``: AdamW) step on ``param``, ``m`` and ``v`` in place; ``step`` counts from 1."""
    xp = get_array_module(param)
    beta1, beta2 = betas
    if weight_decay and decoupled:
        param *= 1.0 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    denominator = xp.sqrt(v / (1 - beta2 ** step))
    denominator += eps
    param -= (lr / (1 - beta1 ** step)) * m / denominator


# The GPU's form: the whole rule in one kernel (minicnn.kernels.optim).
adam_update = Forms("adam_update", plain=adam_update_plain, gpu="optim:adam_update_fused")


class Adam(Optimizer):
    """Adam: running means of the gradient (m) and its square (v), bias-corrected.

        g = g + weight_decay * p          (L2 penalty, as in PyTorch's Adam)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
    """

    decoupled = False
    options = ("betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(float(b) for b in betas)
        self.eps = self._check_non_negative("eps", eps)
        self.weight_decay = self._check_non_negative("weight_decay", weight_decay)

    def update(self, param, grad, state):
        xp = get_array_module(param)
        if "m" not in state:
            state["m"], state["v"] = xp.zeros_like(param), xp.zeros_like(param)
        adam_update(param, grad, state["m"], state["v"], self.lr, self.betas, self.eps, self.weight_decay,
                    self.decoupled, self.step_count)


class AdamW(Adam):
    """Adam with decoupled weight decay: p = p * (1 - lr * weight_decay) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
