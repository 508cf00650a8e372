"""minicnn's random numbers: one seeded stream for the CPU and one per GPU.

Weight initialisation, dropout and ``minicnn.randn`` draw from here, so ``manual_seed(s)`` makes a
run repeat exactly on the CPU (and on a GPU, run to run on the same machine).
A function that needs the same dropout mask twice (a gradient check, say)
calls ``manual_seed`` before each forward pass.
"""
import numpy as np

from .backend import get_array_module, on_device_of

_seed = None
_cpu_generator = np.random.default_rng()
_gpu_generators = {}  # GPU index -> cupy.random.RandomState


def manual_seed(seed):
    """Seed every minicnn random stream (CPU now, each GPU on its first use)."""
    global _seed, _cpu_generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _cpu_generator = np.random.default_rng(_seed)
    for index, generator in _gpu_generators.items():  # reseeded in place: no new cuRAND state
        generator.seed(_gpu_seed(index))


def _gpu_seed(index):
    """A different, repeatable seed for each GPU (None before any manual_seed: a random one)."""
    if _seed is None:
        return None
    return int(np.random.SeedSequence([_seed, index]).generate_state(1)[0])


def cpu_generator():
    """The NumPy ``Generator`` behind CPU randomness."""
    return _cpu_generator


def _gpu_generator(cp):
    index = cp.cuda.runtime.getDevice()
    if index not in _gpu_generators:
        _gpu_generators[index] = cp.random.RandomState(_gpu_seed(index))
    return _gpu_generators[index]


def uniform(shape, dtype, like):
    """Uniform [0, 1) samples of ``shape`` and ``dtype``, on the device of array ``like``."""
    with on_device_of(like):  # that GPU's stream, and the samples land there
        return uniform_values(shape, dtype, get_array_module(like))


def uniform_values(shape, dtype, xp=np):
    """Uniform [0, 1) samples of ``shape`` and float ``dtype`` from ``xp``'s stream (numpy: the CPU's,
    cupy: the current GPU's); float16 is drawn as float32 and converted."""
    drawn = dtype if np.dtype(dtype) in (np.float32, np.float64) else np.float32
    generator = _cpu_generator.random if xp is np else _gpu_generator(xp).random_sample
    return generator(shape, dtype=drawn).astype(dtype, copy=False)


def standard_normal(shape, dtype, xp=np):
    """Normal(0, 1) samples of ``shape`` and float ``dtype`` from ``xp``'s stream.

    ``xp`` is numpy (the CPU stream) or cupy (the stream of the current GPU).
    Both generators draw float32 or float64; other float dtypes are drawn as
    float32 and converted.
    """
    drawn = dtype if np.dtype(dtype) in (np.float32, np.float64) else np.float32
    generator = _cpu_generator if xp is np else _gpu_generator(xp)
    return generator.standard_normal(shape, dtype=drawn).astype(dtype, copy=False)


def integers(low, high, shape, dtype, xp=np):
    """Integers drawn uniformly from [low, high), of ``shape`` and integer ``dtype``, from ``xp``'s stream."""
    if xp is np:
        return _cpu_generator.integers(low, high, shape, dtype=dtype)
    return _gpu_generator(xp).randint(low, high, shape, dtype=dtype)
