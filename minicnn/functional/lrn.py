"""Local response normalization across channels (AlexNet, GoogLeNet v1).

    b_c = a_c * U_c ** -beta,    U_c = k + alpha / size * sum_{j in window(c)} a_j ** 2

window(c) = channels c - size//2 ... c + (size-1)//2, cut at the edges (PyTorch's
convention, Caffe's for odd sizes; note alpha is divided by size).

Backward, with g = dL/db:

    dL/da_c = g_c * U_c ** -beta
              - 2 * alpha * beta / size * a_c * sum_{j : c in window(j)} g_j * b_j / U_j

The second sum runs over the channels whose window contains c: c - (size-1)//2
... c + size//2, the window mirrored (the same window when size is odd).

The fast forms: :mod:`minicnn.kernels.lrn`.
"""
from ..backend import get_array_module
from ..engine import Op
from ..kernels.dispatch import Forms
from .validation import require_tensor


def channel_window_sum(a, before, after):
    """out[:, c] = sum of a[:, c - before : c + after + 1] (channels past the edges count as 0).

    Args:
        a: array (N, C, H, W).
    Returns:
        array (N, C, H, W).
    """
    xp = get_array_module(a)
    channels = a.shape[1]
    padded = xp.pad(a, ((0, 0), (before, after), (0, 0), (0, 0)))
    out = padded[:, 0:channels].copy()
    for shift in range(1, before + after + 1):
        out += padded[:, shift:shift + channels]
    return out


def lrn_forward_plain(x, size, alpha, beta, k):
    """Returns (y, scale, scale ** -beta), scale = U above; all (N, C, H, W)."""
    scale = channel_window_sum(x * x, size // 2, (size - 1) // 2)
    scale *= alpha / size
    scale += k
    scale_pow = scale ** -beta
    return x * scale_pow, scale, scale_pow


def lrn_backward_plain(gy, x, scale, scale_pow, size, alpha, beta):
    """dL/dx for dL/dy = gy (all arrays (N, C, H, W))."""
    ratio = gy * x * scale_pow / scale  # g_j * b_j / U_j
    mirrored = channel_window_sum(ratio, (size - 1) // 2, size // 2)
    return gy * scale_pow - (2.0 * alpha * beta / size) * x * mirrored


lrn_forward = Forms("lrn", plain=lrn_forward_plain, cpu="lrn:lrn_forward_numba", gpu="lrn:lrn_forward_fused")
lrn_backward = Forms("lrn_backward", plain=lrn_backward_plain, cpu="lrn:lrn_backward_numba",
                     gpu="lrn:lrn_backward_fused")


class LocalResponseNormFunction(Op):
    def __init__(self, size, alpha, beta, k):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        y, self.scale, self.scale_pow = lrn_forward(x, self.size, self.alpha, self.beta, self.k)
        self.x = x
        return y

    def backward(self, gy):
        return lrn_backward(gy, self.x, self.scale, self.scale_pow, self.size, self.alpha, self.beta)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalize each value by the energy of ``size`` neighbouring channels.

    Args:
        x: Tensor (N, C, H, W).
        size: number of channels in the window (odd or even).
        alpha, beta, k: as in the formula in this module's docs (alpha is divided by size).
    Returns:
        Tensor (N, C, H, W).
    """
    op = "local_response_norm"
    require_tensor(op, "x", x, 4, "(N, C, H, W)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    if k <= 0 or alpha < 0:
        raise ValueError(f"{op}: needs k > 0 and alpha >= 0 (so the base stays positive), "
                         f"got k={k!r}, alpha={alpha!r}")
    return LocalResponseNormFunction(size, float(alpha), float(beta), float(k))(x)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    for size, alpha, beta, k, channels in [(5, 1e-4, 0.75, 1.0, 7), (5, 0.5, 0.75, 1.0, 7), (4, 0.8, 0.6, 2.0, 6),
                                           (3, 1.0, 0.75, 1.0, 2), (1, 0.5, 0.75, 1.0, 3)]:
        add("local_response_norm", f"size {size}, alpha {alpha}, beta {beta}, k {k}, {channels} channels",
            lambda inp, s=size, a=alpha, b=beta, k=k, c=channels:
            ((lambda x: local_response_norm(x, s, a, b, k)), [inp.normal(2, c, 3, 3)]))
