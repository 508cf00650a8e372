"""The optimizers' fast GPU forms: each update rule once over the flat buffers, in place, in one kernel
(plain twins: the ``update`` methods' array code in minicnn/optim/sgd.py and adam.py).
"""
from .fusion import cp, fused


@fused
def _sgd(param, grad, lr, weight_decay):
    param -= lr * (grad + weight_decay * param)


@fused
def _sgd_momentum(param, grad, buffer, lr, momentum, weight_decay):
    grad = grad + weight_decay * param
    buffer *= momentum
    buffer += grad
    param -= lr * buffer


@fused
def _sgd_nesterov(param, grad, buffer, lr, momentum, weight_decay):
    grad = grad + weight_decay * param
    buffer *= momentum
    buffer += grad
    param -= lr * (grad + momentum * buffer)


def sgd_update_fused(param, grad, buffer, lr, momentum, weight_decay, nesterov):
    """Twin of ``SGD.update`` (PyTorch's rule) in one kernel; ``buffer`` (None without momentum) in place."""
    if buffer is None:
        _sgd(param, grad, lr, weight_decay)
    elif nesterov:
        _sgd_nesterov(param, grad, buffer, lr, momentum, weight_decay)
    else:
        _sgd_momentum(param, grad, buffer, lr, momentum, weight_decay)


@fused
def _adam(param, grad, m, v, keep, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, bias2, eps,
          weight_decay):
    param *= keep  # AdamW's decoupled weight decay (keep = 1 - lr * weight_decay), else keep = 1
    grad = grad + weight_decay * param
    m *= beta1
    m += one_minus_beta1 * grad
    v *= beta2
    v += one_minus_beta2 * grad * grad
    param -= step_size * m / (cp().sqrt(v / bias2) + eps)


def adam_update_fused(param, grad, m, v, lr, betas, eps, weight_decay, decoupled, step):
    """Twin of ``Adam.update`` and ``AdamW``'s in one kernel: param, m and v in place."""
    beta1, beta2 = betas
    keep, weight_decay = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    _adam(param, grad, m, v, keep, beta1, beta2, 1 - beta1, 1 - beta2, lr / (1 - beta1 ** step), 1 - beta2 ** step,
          eps, weight_decay)

