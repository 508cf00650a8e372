"""PyTorch's ``torch.cuda`` questions, answered through CuPy: is a GPU there, and how many.

``device = minicnn.device("cuda" if minicnn.cuda.is_available() else "cpu")`` picks
a GPU where CuPy sees one. minicnn's GPU names ("gpu", "gpu:N") and PyTorch's
("cuda", "cuda:N") mean the same devices.
"""
from . import backend


def is_available():
    """True when CuPy is installed and sees at least one GPU (False, not an error, otherwise)."""
    return backend.gpu_available()


def device_count():
    """How many GPUs CuPy sees (0 without CuPy, a driver or a GPU)."""
    return backend.gpu_count()
