"""A batch norm in evaluation folded into the convolution before it (PyTorch's ``torch.nn.utils.fusion``).

In evaluation, batch norm is an affine map per channel c:
``y = (z - running_mean[c]) * s[c] + beta[c]`` with ``s = gamma / sqrt(running_var + eps)``.
When ``z`` is a convolution's output channel c, the map can move into the
convolution: scale the weights of output channel c by ``s[c]`` and take
``b' = (b - running_mean) * s + beta`` as the bias. One convolution then gives
what the convolution and the batch norm gave, up to float rounding, with no
pass over the activations for the batch norm.

Same names, arguments and results as PyTorch's, with one difference: minicnn
has no transposed convolution, so :func:`fuse_conv_bn_eval` refuses
``transpose=True`` (:func:`fuse_conv_bn_weights` takes it: it is arithmetic on
the weight's axis 1 instead of axis 0).
"""
import copy
import numbers

from ...backend import device_of, get_array_module, on_device_of
from ...engine import Tensor, device_mismatch
from ..layers import BatchNorm2d, Conv2d
from ..module import Parameter

_OP = "fuse_conv_bn_weights"


def _vector(name, value, channels, optional):
    """``value``'s array, checked to be a Tensor of shape (channels,); None if ``optional`` and not given."""
    if value is None and optional:
        return None
    if not isinstance(value, Tensor):
        raise TypeError(f"{_OP}: {name} must be a minicnn.Tensor of shape ({channels},)"
                        + (" or None" if optional else "") + f", got {type(value).__name__}")
    if value.shape != (channels,) or value.dtype.kind != "f":
        raise ValueError(f"{_OP}: {name} must be a floating-point tensor of shape ({channels},) (one entry per "
                         f"output channel of conv_w), got shape {value.shape}, dtype {value.dtype}")
    return value.array


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The weight and bias of one convolution that does what conv (conv_w, conv_b) then batch norm in evaluation do.

    Args:
        conv_w: Tensor (O, I, kh, kw) (any number of kernel axes; (I, O, ...) with ``transpose``).
        conv_b: Tensor (O,) or None (no bias: 0).
        bn_rm, bn_rv: Tensors (O,): the batch norm's running mean and variance.
        bn_eps: the batch norm's eps, added to the variance.
        bn_w, bn_b: Tensors (O,) (gamma and beta) or None (1 and 0).
        transpose: the output channels are conv_w's axis 1 (a transposed convolution's weight).
    Returns:
        (weight, bias): new Parameters, weight of conv_w's shape and dtype, bias (O,) of conv_b's dtype
        (conv_w's if None); each requires grad as conv_w and conv_b do (the bias does not if conv_b is None).
        They are leaves: nothing is recorded.
    """
    if not isinstance(conv_w, Tensor) or conv_w.ndim < 3 or conv_w.dtype.kind != "f":
        raise TypeError(f"{_OP}: conv_w must be a floating-point minicnn.Tensor (out_channels, in_channels, "
                        f"*kernel_size), got " + (f"shape {conv_w.shape}, dtype {conv_w.dtype}"
                                                  if isinstance(conv_w, Tensor) else type(conv_w).__name__))
    if not isinstance(bn_eps, numbers.Real) or isinstance(bn_eps, bool) or bn_eps < 0:
        raise ValueError(f"{_OP}: bn_eps must be a number >= 0, got {bn_eps!r}")
    if not isinstance(transpose, bool):
        raise TypeError(f"{_OP}: transpose must be True or False, got {transpose!r}")
    channels = conv_w.shape[1 if transpose else 0]
    names = ["conv_w", "conv_b", "bn_rm", "bn_rv", "bn_w", "bn_b"]
    weight, bias, mean, var, gamma, beta = [conv_w.array] + [
        _vector(name, value, channels, optional=name not in ("bn_rm", "bn_rv"))
        for name, value in zip(names[1:], (conv_b, bn_rm, bn_rv, bn_w, bn_b))]
    given = [(name, array) for name, array in zip(names, (weight, bias, mean, var, gamma, beta)) if array is not None]
    devices = [device_of(array) for _, array in given]
    if len(set(devices)) > 1:
        raise ValueError(device_mismatch(_OP, [name for name, _ in given], devices))

    with on_device_of(weight):
        scale = (1 if gamma is None else gamma) / get_array_module(weight).sqrt(var + bn_eps)  # (O,)
        axes = [1] * conv_w.ndim
        axes[1 if transpose else 0] = channels
        fused_w = (weight * scale.reshape(axes)).astype(conv_w.dtype, copy=False)
        fused_b = (((0 if bias is None else bias) - mean) * scale + (0 if beta is None else beta))
        fused_b = fused_b.astype(conv_w.dtype if conv_b is None else conv_b.dtype, copy=False)
    return (Parameter(fused_w, requires_grad=conv_w.requires_grad),
            Parameter(fused_b, requires_grad=conv_b is not None and conv_b.requires_grad))


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A new Conv2d that does what ``conv`` then ``bn`` do in evaluation (PyTorch's, for Conv2d).

    Both must be in evaluation mode (``.eval()``) and ``bn`` must have its
    running statistics: as PyTorch, an AssertionError otherwise. ``conv`` and
    ``bn`` are left as they were; the new layer is a deep copy of ``conv``
    (hooks included, as in PyTorch) with the weights of :func:`fuse_conv_bn_weights`
    and always a bias.
    """
    if not isinstance(conv, Conv2d):
        raise TypeError(f"fuse_conv_bn_eval: conv must be an nn.Conv2d, got {type(conv).__name__}")
    if not isinstance(bn, BatchNorm2d):
        raise TypeError(f"fuse_conv_bn_eval: bn must be an nn.BatchNorm2d, got {type(bn).__name__}")
    if transpose is not False:
        raise ValueError(f"fuse_conv_bn_eval: transpose must be False (minicnn has no transposed "
                         f"convolution), got {transpose!r}")
    if conv.training or bn.training:
        raise AssertionError("fuse_conv_bn_eval: fusion only for eval: call .eval() on conv and bn first "
                             f"(conv.training is {conv.training}, bn.training is {bn.training})")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_conv_bn_eval: bn.running_mean and bn.running_var must not be None")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias)
    return fused
