"""The optimizers' fast forms: each update rule once over the flat buffers, in place, in one kernel
(plain twins: the ``update`` methods' array code in minicnn/optim/sgd.py and adam.py).

SGD also has a CPU form: the plain rule's NumPy expressions each make a
temporary as big as all the parameters (41 MB for GoogLeNet, five a step),
which glibc maps and the kernel zero-fills anew every step; one numba pass on
minicnn's threads makes none, with the same float32 operations in the same
order, so the results agree bit for bit.
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



def _sgd_loop(param, grad, buffer, lr, momentum, weight_decay, nesterov, start, stop):
    param, grad = param[start:stop], grad[start:stop]  # see chunks.py: loop indices from 0 vectorise
    buffer = buffer[start:stop] if momentum != 0 else buffer
    for i in range(param.size):
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        if momentum != 0:
            b = buffer[i] * momentum + g
            buffer[i] = b
            g = g + momentum * b if nesterov else b
        param[i] -= lr * g


_sgd_numba = None


def sgd_update_numba(param, grad, buffer, lr, momentum, weight_decay, nesterov):
    """Twin of ``SGD.update`` on the CPU: one pass over the flat buffers (1-D, as the optimizer keeps its
    groups), in place, on minicnn's threads; ``buffer`` None without momentum."""
    global _sgd_numba
    from .chunks import jit, run_chunks  # numba, only when a CPU step needs it
    if buffer is None:
        buffer = param[:0]  # numba wants an array; without momentum the loop never reads it
    if param.ndim != 1 or grad.shape != param.shape:
        raise ValueError(f"sgd_update_numba: takes the optimizer's flat 1-D buffers, got param of shape "
                         f"{param.shape} and grad of shape {grad.shape}")
    if _sgd_numba is None:
        _sgd_numba = jit(_sgd_loop)
    scalar = param.dtype.type  # the plain rule computes in the parameters' dtype (NumPy's scalars are weak)
    run_chunks(param.size, 65536, _sgd_numba, param, grad, buffer, scalar(lr), scalar(momentum),
               scalar(weight_decay), bool(nesterov))
