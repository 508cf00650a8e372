"""Fully connected layer: y = x @ weight.T + bias."""
from ..engine import Op
from .conv import matrix_product
from .validation import require_same_dtype, require_tensor


def _rows(a):
    """(..., features) -> (M, features): the leading axes as rows."""
    return a.reshape(-1, a.shape[-1])


class LinearFunction(Op):
    # The products go through conv's matrix_product: on the CPU on minicnn's threads, BLAS on one
    # thread meanwhile (BLAS's own threads would wake, then spin beside minicnn's).
    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        return matrix_product(_rows(x), weight.T, bias).reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, gy):
        needs = self.needs_input_grad
        gy_rows = _rows(gy)  # (M, out): the leading axes as rows, summed over below
        gx = matrix_product(gy_rows, self.weight).reshape(self.x.shape) if needs[0] else None
        gw = gb = None
        if needs[1]:  # (out, M) @ (M, in), written into the optimizer's buffer where there is one
            gw = matrix_product(gy_rows.T, _rows(self.x), out=self.gradient_buffer(1))
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
