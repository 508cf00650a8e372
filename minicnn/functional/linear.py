"""Fully connected layer: y = x @ weight.T + bias."""
from ..backend import get_array_module
from ..engine import Op
from .validation import require_same_dtype, require_tensor


class LinearFunction(Op):
    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, gy):
        needs = self.needs_input_grad
        gx = gy @ self.weight if needs[0] else None
        gy_rows = gy.reshape(-1, gy.shape[-1])  # (M, out): the leading axes as rows, summed over below
        gw = gb = None
        if needs[1]:  # (out, M) @ (M, in), written into the optimizer's buffer where there is one
            xp = get_array_module(gy)
            gw = xp.matmul(gy_rows.T, self.x.reshape(-1, self.x.shape[-1]), out=self.gradient_buffer(1))
        if len(needs) == 2:  # no bias
            return gx, gw
        if needs[2]:
            gb = gy_rows.sum(axis=0, out=self.gradient_buffer(2))
        return gx, gw, gb


def linear(x, weight, bias=None):
    """Affine map of the last axis.

    Args:
        x: Tensor (..., in_features).
        weight: Tensor (out_features, in_features) (PyTorch's layout).
        bias: Tensor (out_features,) or None.
    Returns:
        Tensor (..., out_features).
    """
    op = "linear"
    require_tensor(op, "x", x)
    require_tensor(op, "weight", weight, 2, "(out_features, in_features)")
    require_same_dtype(op, "weight", weight, "x", x)
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x's last axis must have in_features = {weight.shape[1]} entries "
                         f"(weight shape {weight.shape}), got x shape {x.shape}")
    if bias is None:
        return LinearFunction()(x, weight)
    require_tensor(op, "bias", bias, 1, "(out_features,)")
    require_same_dtype(op, "bias", bias, "x", x)
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return LinearFunction()(x, weight, bias)


def gradcheck_cases(add):
    """The gradient-check cases of this module's ops (minicnn.gradcheck.cases collects them): add(layer,
    configuration, build), build(inputs) -> (function, input tensors), inputs a gradcheck.cases.Inputs."""
    add("linear", "(5, 6) -> 4", lambda inp: (linear, [inp.normal(5, 6), inp.normal(4, 6), inp.normal(4)]))
    add("linear", "(2, 3, 6) -> 4, no bias", lambda inp: (linear, [inp.normal(2, 3, 6), inp.normal(4, 6)]))
