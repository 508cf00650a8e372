"""The sum of two gradients, split over minicnn's threads (plain twin: ``a + b``, functional/arithmetic.py)."""
import numpy as np

from . import host_memory
from .chunks import over_images


def add_threads(a, b):
    """a + b for two arrays of one shape (gradients meeting in backward); keeps a's layout."""
    return over_images(np.add, host_memory.empty_like(a), a, b)

