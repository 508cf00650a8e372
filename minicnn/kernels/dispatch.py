"""The one place that picks an op's form: plain, or fast for the arrays' device.

An op with fast kernels declares its forms once, beside its plain code::

    im2col_forms = Forms("im2col", plain=im2col_strided, cpu="conv:im2col_numba", gpu="conv:im2col_gather")

and calls ``im2col_forms(x, kernel, stride, padding)``. The first argument picks
the form: a NumPy array takes the ``cpu`` one, a CuPy array the ``gpu`` one,
anything else (and a device without a fast form) the plain one. Every form
takes the same arguments and returns the same values: the plain one is the
reference that the tests hold the fast ones to. A fast form is named
"module:function" in :mod:`minicnn.kernels` and imported on first use (numba
takes a while to import). The choice is cached per array type: one dict
lookup per call.

:func:`plain_forms` runs every op in its plain form (for teaching, and for the
twin tests); the environment variable ``MINICNN_PLAIN_KERNELS=1``, read once
when this module is imported, does the same for a whole process.

A fast GPU form that raises on its first use (its kernel does not compile on
this CUDA version, or does not launch on this GPU) is replaced by the plain
form for the rest of the process, with one warning; ``python -m minicnn.doctor
--device gpu`` lists which fast forms run and which fell back. After a first
call that worked, an error is a real error and is raised, as is any error of
a plain form.
"""
import contextlib
import importlib
import os
import warnings

import numpy as np

from ..backend import is_gpu_array

PLAIN_FROM_ENVIRONMENT = os.environ.get("MINICNN_PLAIN_KERNELS") == "1"
ALL_FORMS = []  # every op's Forms, in the order they were declared (the doctor lists them)

_plain_only = PLAIN_FROM_ENVIRONMENT  # every op in its plain form (plain_forms() sets it for a block)


class FastFormWarning(RuntimeWarning):
    """A fast GPU form failed on its first use; its op runs in its plain form from then on."""


class Forms:
    """An op's forms: ``plain`` (a function, NumPy and CuPy alike) and fast ones by device.

    Args:
        name: the op's name, for warnings and the doctor.
        plain: the plain function.
        cpu, gpu: "module:function" in minicnn.kernels (or the function itself), or None where the device
            has no fast form.
    """

    def __init__(self, name, plain, cpu=None, gpu=None):
        self.name, self.plain = name, plain
        self.fast = {"cpu": cpu, "gpu": gpu}
        self.gpu_status = "not run yet" if gpu else None  # "active", or "fell back: <error>"
        self._by_type = {}  # array type -> the function that runs for it
        ALL_FORMS.append(self)

    def __call__(self, *args, **kwargs):
        if _plain_only:
            return self.plain(*args, **kwargs)
        form = self._by_type.get(type(args[0])) or self._choose(args[0])
        return form(*args, **kwargs)

    def __repr__(self):
        return f"Forms({self.name!r}, cpu={self.fast['cpu']!r}, gpu={self.fast['gpu']!r})"

    def fast_form(self, array):
        """The fast form ("module:function") that a call on ``array`` runs, or None when the plain one does."""
        device = _device_kind(array)
        if _plain_only or self._by_type.get(type(array)) is self.plain:
            return None
        return self.fast.get(device)

    def _choose(self, array):
        device = _device_kind(array)
        fast = self.fast.get(device)
        if fast is None:
            form = self.plain
        else:
            form = load(fast) if isinstance(fast, str) else fast
            form = form if device == "cpu" else self._on_trial(type(array), form)
        self._by_type[type(array)] = form
        return form

    def _on_trial(self, array_type, fast):
        """``fast`` until its first call returns; if that call raises, the plain form from then on."""
        def first_call(*args, **kwargs):
            try:
                result = fast(*args, **kwargs)
            except Exception as error:  # a kernel that does not compile or launch here
                self._by_type[array_type] = self.plain
                self.gpu_status = f"fell back: {type(error).__name__}: {error}"
                warnings.warn(f"minicnn: the fast GPU form of {self.name} ({_name_of(self.fast['gpu'])}) failed on "
                              f"its first use ({type(error).__name__}: {error}); {self.name} runs in its plain form "
                              "from now on (slower, same results). Please report it on minicnn's issue tracker with "
                              "the output of `python -m minicnn.doctor --device gpu`.", FastFormWarning, stacklevel=3)
                return self.plain(*args, **kwargs)
            self._by_type[array_type] = fast
            self.gpu_status = "active"
            return result
        return first_call

    def reset(self):
        """Forget the choices made (and any fallback): the next call chooses again."""
        self._by_type.clear()
        self.gpu_status = "not run yet" if self.fast["gpu"] else None


def _device_kind(array):
    return "cpu" if isinstance(array, np.ndarray) else "gpu" if is_gpu_array(array) else None


def load(name):
    """The function named "module:function" in minicnn.kernels."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


@contextlib.contextmanager
def plain_forms(plain=True):
    """Within the block, every op runs in its plain form (``plain=False``: the fast ones again)."""
    global _plain_only
    before, _plain_only = _plain_only, bool(plain)
    try:
        yield
    finally:
        _plain_only = before


def plain_only():
    """True when every op runs in its plain form (:func:`plain_forms`, or MINICNN_PLAIN_KERNELS=1)."""
    return _plain_only


def fast_gpu_forms():
    """(op name, "module:function", status) for each op with a fast GPU form; status: "active", "not run
    yet" or "fell back: <error>"."""
    return [(forms.name, _name_of(forms.fast["gpu"]), forms.gpu_status) for forms in ALL_FORMS if forms.fast["gpu"]]


def _name_of(form):
    return form if isinstance(form, str) else getattr(form, "__qualname__", repr(form))
