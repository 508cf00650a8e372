"""The gradient-check cases: every layer, in the configurations that break implementations.

``python -m minicnn.gradcheck`` runs these as a report, and the test suite runs
the same list. Each case builds float64 inputs on a device and a function of
them; inputs are chosen away from kinks (ReLU at 0, ties in a max), where a
derivative does not exist and central differences mean nothing.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import functional as F
from .. import backend, random
from ..engine import Tensor


class Inputs:
    """Makes float64 test tensors on one device from one seeded generator."""

    def __init__(self, device, seed=0):
        self.device, self.rng = device, np.random.default_rng(seed)

    def _tensor(self, values, requires_grad=True):
        return Tensor(backend.to_device(values.astype(np.float64), self.device), requires_grad=requires_grad)

    def normal(self, *shape, requires_grad=True):
        return self._tensor(self.rng.standard_normal(shape), requires_grad)

    def away_from_zero(self, *shape):
        """Values with |v| >= 0.1, for inputs of ReLU (its kink is at 0)."""
        v = self.rng.standard_normal(shape)
        return self._tensor(np.sign(v) * (np.abs(v) + 0.1))

    def tie_free(self, *shape):
        """Distinct values at least ~1/size apart, shuffled: no max ties within a finite-difference step."""
        size = int(np.prod(shape))
        values = np.linspace(-1, 1, size) + self.rng.uniform(0, 0.2 / size, size)
        return self._tensor(self.rng.permutation(values).reshape(shape))

    def positive(self, *shape):
        return self._tensor(self.rng.uniform(0.5, 2.0, shape))

    def labels(self, n, classes):
        return backend.to_device(self.rng.integers(0, classes, n), self.device)

    def array(self, values):
        return backend.to_device(np.asarray(values, dtype=np.float64), self.device)


@dataclass(frozen=True)
class Case:
    """One configuration of one layer: ``build(Inputs)`` returns (fn, list of input tensors)."""

    layer: str
    config: str
    build: Callable


CASES = []


def _add(layer, config, build):
    CASES.append(Case(layer, config, build))


# -- convolution: kernel 1/3/5/7, stride 2, padding, odd sizes, rectangles, no bias ---------------
for kernel, stride, padding, size, bias in [
    (1, 1, 0, 5, True),          # pointwise: a plain matrix product, no im2col
    (1, 2, 0, 7, True),          # 1x1 with stride: through im2col
    (3, 1, 1, 6, True),
    (3, 2, 1, 7, True),          # odd size, stride 2
    (5, 1, 2, 5, False),
    (7, 2, 3, 9, True),
    ((3, 2), (2, 1), (1, 0), 6, True),  # rectangular kernel, different strides per axis
]:
    def _build(inp, kernel=kernel, stride=stride, padding=padding, size=size, bias=bias):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        tensors = [inp.normal(2, 3, size, size), inp.normal(4, 3, kh, kw)] + ([inp.normal(4)] if bias else [])
        return (lambda x, w, b=None: F.conv2d(x, w, b, stride, padding)), tensors
    _add("conv2d", f"kernel {kernel}, stride {stride}, padding {padding}, {size}x{size}"
         + ("" if bias else ", no bias"), _build)

# -- pooling: ceil mode, padding, overlapping windows, odd sizes -------------------------------------
for kernel, stride, padding, ceil, size in [
    (2, 2, 0, False, 6),
    (3, 2, 0, True, 8),          # ceil mode (GoogLeNet's 224 stem): 8 -> 4 windows
    (3, 2, 1, False, 7),         # the CIFAR stem's pad-1 pool
    (3, 1, 1, False, 5),         # inception pool branch: same size out
    (3, 3, 1, True, 7),          # ceil mode with padding, odd size
    ((3, 2), (2, 1), (1, 0), False, 6),
]:
    geometry = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil)
    config = f"kernel {kernel}, stride {stride}, padding {padding}, {size}x{size}" + (", ceil" if ceil else "")
    _add("max_pool2d", config, lambda inp, g=geometry, s=size:
         ((lambda x: F.max_pool2d(x, **g)), [inp.tie_free(2, 3, s, s)]))
    _add("avg_pool2d", config, lambda inp, g=geometry, s=size:
         ((lambda x: F.avg_pool2d(x, **g)), [inp.normal(2, 3, s, s)]))
_add("avg_pool2d", "kernel 3, stride 2, padding 1, 7x7, ceil, count_include_pad=False",
     lambda inp: ((lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
                  [inp.normal(2, 3, 7, 7)]))
_add("avg_pool2d", "kernel 5, stride 3 (aux head), 16x16",
     lambda inp: ((lambda x: F.avg_pool2d(x, 5, 3)), [inp.normal(1, 2, 16, 16)]))
_add("adaptive_avg_pool2d", "global (output 1)",
     lambda inp: ((lambda x: F.adaptive_avg_pool2d(x, 1)), [inp.normal(2, 3, 5, 5)]))
_add("adaptive_avg_pool2d", "uneven bins (7x5 -> 3x2)",
     lambda inp: ((lambda x: F.adaptive_avg_pool2d(x, (3, 2))), [inp.normal(2, 3, 7, 5)]))

# -- LRN: odd and even sizes, a large alpha so window mistakes show --------------------------------
for size, alpha, beta, k, channels in [(5, 1e-4, 0.75, 1.0, 7), (5, 0.5, 0.75, 1.0, 7), (4, 0.8, 0.6, 2.0, 6),
                                       (3, 1.0, 0.75, 1.0, 2), (1, 0.5, 0.75, 1.0, 3)]:
    _add("local_response_norm", f"size {size}, alpha {alpha}, beta {beta}, k {k}, {channels} channels",
         lambda inp, s=size, a=alpha, b=beta, k=k, c=channels:
         ((lambda x: F.local_response_norm(x, s, a, b, k)), [inp.normal(2, c, 3, 3)]))


# -- batch norm, dropout, activations, linear, losses ------------------------------------------------
def _batch_norm(training, shape):
    def build(inp):
        channels = shape[1]
        mean, var = inp.array(np.zeros(channels)), inp.array(np.ones(channels) * 1.5)
        return ((lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=training, eps=1e-3)),
                [inp.normal(*shape), inp.normal(channels), inp.normal(channels)])
    return build


_add("batch_norm", "training, (4, 3, 3, 3)", _batch_norm(True, (4, 3, 3, 3)))
_add("batch_norm", "training, (6, 4) (1-D features)", _batch_norm(True, (6, 4)))
_add("batch_norm", "evaluation, running statistics", _batch_norm(False, (4, 3, 3, 3)))


def _dropout(p):
    def fn(x):
        random.manual_seed(1234)  # the same mask on every call
        return F.dropout(x, p, training=True)
    return lambda inp: (fn, [inp.normal(4, 5, 3)])


_add("dropout", "p 0.5, fixed mask", _dropout(0.5))
_add("dropout", "p 0.2, fixed mask", _dropout(0.2))
_add("relu", "(3, 4, 5)", lambda inp: (F.relu, [inp.away_from_zero(3, 4, 5)]))
_add("linear", "(5, 6) -> 4", lambda inp: (F.linear, [inp.normal(5, 6), inp.normal(4, 6), inp.normal(4)]))
_add("linear", "(2, 3, 6) -> 4, no bias", lambda inp: (F.linear, [inp.normal(2, 3, 6), inp.normal(4, 6)]))
_add("softmax", "dim 1", lambda inp: ((lambda x: F.softmax(x, dim=1)), [inp.normal(4, 5)]))
_add("log_softmax", "dim 0", lambda inp: ((lambda x: F.log_softmax(x, dim=0)), [inp.normal(4, 5)]))


def _cross_entropy(smoothing, reduction):
    def build(inp):
        target = inp.labels(6, 5)
        return ((lambda z: F.cross_entropy(z, target, smoothing, reduction)), [inp.normal(6, 5)])
    return build


_add("cross_entropy", "mean", _cross_entropy(0.0, "mean"))
_add("cross_entropy", "label smoothing 0.1, sum", _cross_entropy(0.1, "sum"))
_add("cross_entropy", "per sample (reduction none)", _cross_entropy(0.0, "none"))

# -- joining, reshaping, arithmetic --------------------------------------------------------------------
_add("concat", "3 tensors, dim 1", lambda inp: ((lambda *ts: F.concat(ts, dim=1)),
                                                  [inp.normal(2, 1, 3), inp.normal(2, 4, 3), inp.normal(2, 2, 3)]))
_add("concat", "dim 0", lambda inp: ((lambda a, b: F.concat([a, b], dim=0)), [inp.normal(1, 3), inp.normal(2, 3)]))
_add("flatten", "(2, 3, 4, 5) from axis 1", lambda inp: ((lambda x: F.flatten(x, 1)), [inp.normal(2, 3, 4, 5)]))
_add("arithmetic", "a + b * c, broadcasting", lambda inp: ((lambda a, b, c: a + b * c),
                                                          [inp.normal(2, 3), inp.normal(3), inp.normal(2, 1)]))
_add("arithmetic", "a / b - c", lambda inp: ((lambda a, b, c: a / b - c),
                                            [inp.normal(2, 3), inp.positive(2, 3), inp.normal(1, 3)]))
_add("arithmetic", "sum, mean and reshape (NumPy's axis/keepdims)", lambda inp: (
    (lambda a: a.reshape(4, 3).sum(axis=0) * a.mean(axis=(0, 1), keepdims=True).reshape(3)), [inp.normal(2, 2, 3)]))
_add("arithmetic", "matmul, power, exp, log", lambda inp: (
    (lambda a, b, c: (a @ b) ** 2 + c.exp() + c.log()), [inp.normal(3, 4), inp.normal(4, 2), inp.positive(3, 2)]))

# -- the Tensor API: indexing, axes, reductions, elementwise math ---------------------------------------
for config, key in [
    ("x[1]", 1), ("x[:, 1:3]", (slice(None), slice(1, 3))), ("x[..., ::-2]", (Ellipsis, slice(None, None, -2))),
    ("x[None, -1]", (None, -1)), ("x[[0, 2, 0]] (a row twice)", [0, 2, 0]),
    ("x[[0, 2, 0], :, [1, 3, 1]] (a pair twice)", ([0, 2, 0], slice(None), [1, 3, 1])),
    ("x[x > 0] (boolean mask)", None),
]:
    _add("indexing", config, lambda inp, key=key: (
        (lambda x: x[x > 0] if key is None else x[key]), [inp.away_from_zero(3, 2, 4)]))
_add("indexing", "for row in x (rows weighted 1, 2, 3)", lambda inp: (
    (lambda x: F.concat([row * (i + 1) for i, row in enumerate(x)])), [inp.normal(3, 4)]))
_add("permute", "x.T (3-D: all axes reversed)", lambda inp: ((lambda x: x.T), [inp.normal(2, 3, 4)]))
_add("permute", "transpose(0, 2)", lambda inp: ((lambda x: x.transpose(0, 2)), [inp.normal(2, 3, 4)]))
_add("permute", "permute(2, 0, 1)", lambda inp: ((lambda x: x.permute(2, 0, 1)), [inp.normal(2, 3, 4)]))
_add("reshape", "view(-1, 4), squeeze, unsqueeze, flatten(0, 1)", lambda inp: (
    (lambda x: x.view(-1, 4).unsqueeze(1).squeeze().reshape((2, 3, 4)).flatten(0, 1)), [inp.normal(2, 1, 3, 4)]))
for name in ("max", "min"):
    _add(name, "every element (a 0-d tensor)", lambda inp, n=name: (
        (lambda x: getattr(x, n)()), [inp.tie_free(3, 4)]))
    _add(name, "dim 1: values", lambda inp, n=name: ((lambda x: getattr(x, n)(1).values), [inp.tie_free(3, 4, 2)]))
    _add(name, "dim -1, keepdim: values", lambda inp, n=name: (
        (lambda x: getattr(x, n)(dim=-1, keepdim=True).values), [inp.tie_free(3, 4)]))
_add("reduction", "sum(dim=(0, 2)) and mean(dim=1, keepdim=True)", lambda inp: (
    (lambda x: x.sum(dim=(0, 2)) * x.mean(dim=1, keepdim=True).sum()), [inp.normal(2, 3, 4)]))
_add("reduction", "var (unbiased) and var(dim=0, correction=0)", lambda inp: (
    (lambda x: x.var() + x.var(dim=0, correction=0)), [inp.normal(4, 3)]))
_add("reduction", "var(dim=(1, 2), keepdim=True)", lambda inp: (
    (lambda x: x.var(dim=(1, 2), keepdim=True)), [inp.normal(2, 3, 4)]))
_add("elementwise", "abs, sqrt", lambda inp: ((lambda a, b: a.abs() + b.sqrt()),
                                             [inp.away_from_zero(3, 4), inp.positive(3, 4)]))
_add("elementwise", "clamp(-0.5, 0.8), clamp(min=0), clip(max=0.3)", lambda inp: (
    (lambda x: x.clamp(-0.5, 0.8) + x.clamp(min=0.0) * x.clip(max=0.3)), [inp.away_from_zero(4, 5)]))
_add("elementwise", "a ** b (tensor exponent), 2 ** b", lambda inp: (
    (lambda a, b: a ** b + 2 ** b), [inp.positive(3, 4), inp.normal(3, 4)]))
_add("elementwise", "a ** b broadcasting (3, 1) by (4,)", lambda inp: (
    (lambda a, b: a.pow(b)), [inp.positive(3, 1), inp.normal(4)]))

# -- PyTorch's pointwise functions, losses and joins (issue 17) ------------------------------------------
_add("elementwise", "sin, cos", lambda inp: ((lambda a: a.sin() * 2 + F.cos(a)), [inp.normal(3, 4)]))
_add("elementwise", "tanh, sigmoid (large |x| too)", lambda inp: (
    (lambda a, b: F.tanh(a).sum() + F.sigmoid(b).sum()),
    [inp.normal(3, 4), inp._tensor(np.array([-30.0, -3.0, 0.2, 4.0, 30.0]))]))
_add("where", "broadcasting (3, 1) and (4,)", lambda inp: (
    (lambda a, b: F.where(a > 0, a, b)), [inp.away_from_zero(3, 1), inp.normal(4)]))
_add("where", "a number for other", lambda inp: ((lambda a: F.where(a > 0, a * 3, 0.5)), [inp.away_from_zero(3, 4)]))
_add("stack", "3 tensors, dim 1", lambda inp: ((lambda *ts: F.stack(ts, dim=1)),
                                                [inp.normal(2, 3), inp.normal(2, 3), inp.normal(2, 3)]))
_add("clone", "x.clone() * x", lambda inp: ((lambda x: x.clone() * x), [inp.normal(3, 4)]))
_add("norm", "2-norm, 1-norm over dim 1, p=3", lambda inp: (
    (lambda x: x.norm() + x.norm(1, dim=1).sum() + x.norm(3)), [inp.away_from_zero(3, 4)]))
_add("norm", "2-norm over dim (0, 2), keepdim", lambda inp: (
    (lambda x: x.norm(dim=(0, 2), keepdim=True)), [inp.normal(2, 3, 4)]))
for reduction in ("mean", "sum", "none"):
    _add("mse_loss", reduction, lambda inp, r=reduction: (
        (lambda a, b: F.mse_loss(a, b, reduction=r)), [inp.normal(3, 4), inp.normal(3, 4)]))

    def _nll(inp, r=reduction):
        target = inp.labels(6, 5)
        return (lambda z: F.nll_loss(z, target, reduction=r)), [inp.normal(6, 5)]
    _add("nll_loss", reduction, _nll)
