"""The gradient-check cases: every layer, in the configurations that break implementations.

``python -m minicnn.gradcheck`` runs these as a report, and the test suite runs
the same list. Each op's module keeps its cases beside the op, in a function
``gradcheck_cases(add)`` that :data:`CASES` collects from every module of
:mod:`minicnn.functional`. Each case builds float64 inputs on a device and a
function of them; inputs are chosen away from kinks (ReLU at 0, ties in a max),
where a derivative does not exist and central differences mean nothing.
"""
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import functional as F
from .. import backend
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


# Each module of minicnn.functional keeps its ops' cases beside them, in gradcheck_cases(add): these
# modules first, in the order of the chapters, then every other one (so that none is left out).
_FIRST = ("conv", "pooling", "lrn", "normalization", "dropout", "activation", "linear", "loss", "shape",
          "arithmetic", "indexing", "reduction")
_OTHERS = sorted({module.name for module in pkgutil.iter_modules(F.__path__)} - set(_FIRST))
for _name in _FIRST + tuple(_OTHERS):
    _cases_of = getattr(importlib.import_module(f"{F.__name__}.{_name}"), "gradcheck_cases", None)
    if _cases_of is not None:
        _cases_of(_add)
