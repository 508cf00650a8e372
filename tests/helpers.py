"""Small helpers for the tests."""
import numpy as np

from minicnn import Tensor, backend


def tensor(array, device="cpu", requires_grad=False):
    """A Tensor holding ``array`` (a NumPy array or nested list) on ``device``."""
    return Tensor(backend.to_device(np.asarray(array), device), requires_grad=requires_grad)


def tie_free(rng, shape):
    """Shuffled, well-separated values: max pooling has no ties to break."""
    size = int(np.prod(shape))
    return rng.permutation(np.linspace(-1, 1, size)).reshape(shape)


def on_cupy_standin():
    """True when the GPU code path runs on the CuPy stand-in, which counts device work (real CuPy does not)."""
    return backend.device_counts() is not None
