"""Build the stand-in's modules and put them in ``sys.modules`` in place of CuPy.

Each module is a ``StandinModule`` holding exactly one CuPy module's public
names: what the stand-in implements is set on it (and must be in the table),
constants, exceptions and NumPy helpers that CuPy re-exports come straight
from the table, and every other name raises NotImplementedError when used.
"""
import sys

from . import addresses, api, counters, cuda, elementwise, fusion, linalg, nccl, random_state, routines
from .ndarray import ndarray, scatter

MODULE_NAMES = ("cupy", "cupy.random", "cupy.linalg", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.memory",
                "cupy.cuda.nccl", "cupy.exceptions", "cupyx")
_OWN_EXCEPTIONS = {"cupy_backends.cuda.api.runtime.CUDARuntimeError": cuda.CUDARuntimeError,
                   "cupy._core.syncdetect.DeviceSynchronized": counters.DeviceSynchronized,
                   "cupy_backends.cuda.libs.nccl.NcclError": nccl.NcclError}
_built = {}


def _exception(qualified, bases):
    """The stand-in's class for one of CuPy's exceptions (NumPy's own when CuPy re-exports it)."""
    if qualified not in _OWN_EXCEPTIONS:
        module, _, name = qualified.rpartition(".")
        if module.split(".")[0] == "numpy":
            _OWN_EXCEPTIONS[qualified] = _import(qualified)
        else:
            base_classes = tuple(_import(base) for base in bases)
            _OWN_EXCEPTIONS[qualified] = type(name, base_classes, {"__module__": module})
    return _OWN_EXCEPTIONS[qualified]


def _import(qualified):
    """The object at a dotted path such as 'numpy.linalg.LinAlgError' or 'builtins.ValueError'."""
    import importlib
    module, _, name = qualified.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError:  # 'numpy.rec.format_parser': rec is an attribute of numpy
        parent, _, child = module.rpartition(".")
        return getattr(getattr(importlib.import_module(parent), child), name)


def _from_table(module):
    """Define every constant, exception and NumPy re-export of ``module``'s table."""
    for name, entry in api.MODULES[module._table].items():
        if entry[0] == "constant":
            module.define(name, api.constant_value(entry[1]))
        elif entry[0] == "exception":
            module.define(name, _exception(entry[1], entry[2]))
        elif entry[0] == "numpy":
            module.define(name, _import(entry[1]))


def _implemented():
    """{module name: {name: object}} of what the stand-in implements."""
    cupy = {**routines.functions(), **elementwise.build("cupy"), **linalg.FUNCTIONS,
            "ndarray": ndarray, "ufunc": elementwise.ufunc, "fuse": fusion.fuse}
    cupy.update(fusion.COMPLEX_PARTS)
    return {
        "cupy": cupy,
        "cupy.random": {f.__name__: f for f in random_state.FUNCTIONS},
        "cupy.linalg": {},
        "cupy.cuda": {"Device": cuda.Device, "Stream": cuda.Stream, "MemoryPool": cuda.MemoryPool,
                      "MemoryPointer": addresses.MemoryPointer, "get_current_stream": cuda.get_current_stream,
                      "get_device_id": cuda.current_device, "is_available": lambda: cuda.state.device_count > 0},
        "cupy.cuda.runtime": {f.__name__: f for f in cuda.RUNTIME_FUNCTIONS},
        "cupy.cuda.memory": {"MemoryPool": cuda.MemoryPool, "MemoryPointer": addresses.MemoryPointer},
        "cupy.cuda.nccl": {"NcclCommunicator": nccl.NcclCommunicator, "get_unique_id": nccl.get_unique_id},
        "cupy.exceptions": {},
        "cupyx": {"scatter_add": lambda a, slices, value: scatter(a, slices, value, _numpy_at("add")),
                  "scatter_max": lambda a, slices, value: scatter(a, slices, value, _numpy_at("maximum")),
                  "scatter_min": lambda a, slices, value: scatter(a, slices, value, _numpy_at("minimum")),
                  "allow_synchronize": counters.allow_synchronize, **elementwise.build("cupyx")},
    }


def _numpy_at(name):
    import numpy
    return getattr(numpy, name).at


def build():
    """The stand-in's modules, {name: module}, built once per process."""
    if not _built:
        implemented = _implemented()
        for name in MODULE_NAMES:
            module = api.StandinModule(name, name, f"CuPy stand-in for {name} (NumPy-backed; tests/standin)")
            _from_table(module)
            for attribute, value in implemented[name].items():
                module.define(attribute, value)
            _built[name] = module
        _built["cupy"].__version__ = api.VERSION  # the CuPy whose API this is (the doctor prints it)
        for name, module in _built.items():  # submodules as attributes of their parents
            parent, _, child = name.rpartition(".")
            if parent in _built and child in api.MODULES[parent]:  # (not cupy.cuda.nccl: CuPy imports it on request)
                _built[parent].define(child, module)
    return _built


def install(device_count=2):
    """Replace CuPy in ``sys.modules`` by the stand-in, simulating ``device_count`` devices.

    Any real CuPy already imported is dropped from ``sys.modules`` first (code
    holding a reference to it keeps it). Also registers its counters with
    ``minicnn.backend.set_device_counter``, where minicnn's trace and the
    benchmark read them. Returns the ``cupy`` module.
    """
    for name in [name for name in sys.modules if name.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]:
        del sys.modules[name]
    cuda.configure(device_count)
    sys.modules.update(build())
    from minicnn import backend
    backend.set_device_counter(counters.totals)
    return sys.modules["cupy"]


def real_gpu_count():
    """How many GPUs a real CuPy sees: 0 without CuPy, a driver or a GPU. Imports real CuPy if installed."""
    import importlib.util
    if importlib.util.find_spec("cupy") is None:
        return 0
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # ImportError of a broken install, CUDARuntimeError without a driver or a GPU
        return 0


def install_unless_gpu(device_count=2):
    """Keep real CuPy where it sees a GPU; install the stand-in elsewhere (or always with
    MINICNN_CUPY_STANDIN=1). Returns a line saying which one runs the GPU tests."""
    import os
    forced = os.environ.get("MINICNN_CUPY_STANDIN") == "1"
    gpus = 0 if forced else real_gpu_count()
    if gpus:
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        return f"GPU tests run on real CuPy {cupy.__version__}: {gpus} GPU(s), {name}"
    install(device_count)
    why = "MINICNN_CUPY_STANDIN=1" if forced else "no GPU found"
    return (f"GPU tests run on the CuPy stand-in (tests/standin, NumPy-backed, CuPy {api.VERSION}'s API, "
            f"{device_count} simulated devices): {why}")
