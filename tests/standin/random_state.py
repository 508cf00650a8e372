"""``cupy.random``: RandomState and the module-level functions, on NumPy's PCG64.

The numbers differ from cuRAND's (no test may compare them with a GPU's), but a
seed repeats them exactly. The arrays land on the current device, and the
counts follow CuPy's code: ``random_sample`` is a cuRAND generation plus a
kernel that folds 1.0 into [0, 1) (two operations), ``uniform`` scales that
(three), ``normal``/``standard_normal`` is one cuRAND call, ``seed`` launches
nothing. Only float32 and float64 samples exist, as in CuPy.
"""
import numpy as np

from . import api, counters, cuda
from .ndarray import new_array


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.char not in "fd":
        raise TypeError(f"cupy.random only supports float32 and float64 (got {dtype})")
    return dtype


def _size(size):
    return () if size is None else size


class RandomState:
    """cupy.random.RandomState(seed=None, method=None)."""

    __module__ = "cupy.random"

    def __init__(self, seed=None, method=None):
        self.seed(seed)

    def __getattr__(self, name):
        raise api.missing_member("cupy.random.RandomState", "RandomState", name)

    def seed(self, seed=None):
        """Reset the stream (launches nothing)."""
        self._generator = np.random.Generator(np.random.PCG64(seed))

    def random_sample(self, size=None, dtype=float):
        """Uniform [0, 1): a cuRAND generation and a fold into [0, 1) (two operations)."""
        counters.record("device_ops", 2)
        return new_array(np.asarray(self._generator.random(_size(size), dtype=_float_dtype(dtype))))

    def rand(self, *size, **kwarg):
        dtype = kwarg.pop("dtype", float)
        if kwarg:
            raise TypeError(f"rand() got unexpected keyword arguments {', '.join(kwarg)}")
        return self.random_sample(size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        """random_sample, then one kernel that scales to [low, high) (three operations)."""
        dtype = _float_dtype(dtype)
        counters.record("device_ops", 3)
        values = self._generator.random(_size(size), dtype=dtype) * (high - low) + low
        return new_array(np.asarray(values, dtype=dtype))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        """One cuRAND normal generation."""
        dtype = _float_dtype(dtype)
        counters.record("device_ops")
        values = self._generator.standard_normal(_size(size), dtype=dtype) * dtype.type(scale) + dtype.type(loc)
        return new_array(np.asarray(values, dtype=dtype))

    def standard_normal(self, size=None, dtype=float):
        return self.normal(size=size, dtype=dtype)

    def randint(self, low, high=None, size=None, dtype=int):
        """Integers in [low, high) (or [0, low)): a cuRAND generation and a kernel that maps it into
        the interval (two operations; CuPy's rejection loop reruns only for the rare rejected draws)."""
        if high is None:
            low, high = 0, low
        dtype = np.dtype(dtype)
        if dtype.kind not in "iu":
            raise TypeError(f"cupy.random.RandomState.randint: dtype must be an integer type, got {dtype}")
        counters.record("device_ops", 2)
        return new_array(np.asarray(self._generator.integers(low, high, _size(size), dtype=dtype)))

    def randn(self, *size, **kwarg):
        dtype = kwarg.pop("dtype", float)
        if kwarg:
            raise TypeError(f"randn() got unexpected keyword arguments {', '.join(kwarg)}")
        return self.normal(size=size, dtype=dtype)


_default_states = {}  # device -> RandomState


def get_random_state():
    """The current device's default RandomState."""
    device = cuda.current_device()
    if device not in _default_states:
        _default_states[device] = RandomState()
    return _default_states[device]


def seed(seed=None):
    get_random_state().seed(seed)


def random_sample(size=None, dtype=float):
    return get_random_state().random_sample(size, dtype)


def rand(*size, **kwarg):
    return get_random_state().rand(*size, **kwarg)


def randn(*size, **kwarg):
    return get_random_state().randn(*size, **kwarg)


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return get_random_state().uniform(low, high, size, dtype)


def normal(loc=0.0, scale=1.0, size=None, dtype=float):
    return get_random_state().normal(loc, scale, size, dtype)


def standard_normal(size=None, dtype=float):
    return get_random_state().standard_normal(size, dtype)


FUNCTIONS = (RandomState, get_random_state, seed, random_sample, rand, randn, uniform, normal, standard_normal)
