"""Build the stand-in's modules and put them in ``sys.modules`` in place of CuPy.

Each module is a ``StandinModule`` holding what the stand-in defines of one
CuPy module: what it implements, and the constants, exceptions and NumPy
helpers CuPy re-exports. tests/test_standin.py checks every one of those names
against the installed real CuPy.
"""
import sys

from . import addresses, api, counters, cuda, elementwise, fusion, linalg, nccl, random_state, routines
from .ndarray import ndarray, scatter

MODULE_NAMES = ("cupy", "cupy.random", "cupy.linalg", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.memory",
                "cupy.cuda.nccl", "cupy.exceptions", "cupyx")
_built = {}


def _implemented():
    """{module name: {name: object}} of what the stand-in defines."""
    import numpy
    cupy = {**routines.functions(), **elementwise.build(), **linalg.FUNCTIONS, **fusion.COMPLEX_PARTS,
            **{name: getattr(numpy, name) for name in api.NUMPY_NAMES},
            "ndarray": ndarray, "ufunc": elementwise.ufunc, "fuse": fusion.fuse}
    exceptions = {name: getattr(numpy.exceptions, name) for name in api.NUMPY_EXCEPTIONS.split()}
    cupy.update(exceptions)
    return {
        "cupy": cupy,
        "cupy.random": {f.__name__: f for f in random_state.FUNCTIONS},
        "cupy.linalg": {"LinAlgError": numpy.linalg.LinAlgError},
        "cupy.cuda": {"Device": cuda.Device, "Stream": cuda.Stream, "MemoryPool": cuda.MemoryPool,
                      "MemoryPointer": addresses.MemoryPointer, "get_current_stream": cuda.get_current_stream,
                      "get_device_id": cuda.current_device, "is_available": lambda: cuda.state.device_count > 0},
        "cupy.cuda.runtime": {"CUDARuntimeError": cuda.CUDARuntimeError,
                              **{f.__name__: f for f in cuda.RUNTIME_FUNCTIONS}},
        "cupy.cuda.memory": {"MemoryPool": cuda.MemoryPool, "MemoryPointer": addresses.MemoryPointer,
                             "CUDARuntimeError": cuda.CUDARuntimeError},
        "cupy.cuda.nccl": {"NcclCommunicator": nccl.NcclCommunicator, "get_unique_id": nccl.get_unique_id,
                           "NcclError": nccl.NcclError, **nccl.CONSTANTS},
        "cupy.exceptions": exceptions,
        "cupyx": {"scatter_add": lambda a, slices, value: scatter(a, slices, value, _numpy_at("add")),
                  "scatter_max": lambda a, slices, value: scatter(a, slices, value, _numpy_at("maximum")),
                  "scatter_min": lambda a, slices, value: scatter(a, slices, value, _numpy_at("minimum")),
                  "allow_synchronize": counters.allow_synchronize, "DeviceSynchronized": counters.DeviceSynchronized},
    }


def _numpy_at(name):
    import numpy
    return getattr(numpy, name).at


def build():
    """The stand-in's modules, {name: module}, built once per process."""
    if not _built:
        for name, names in _implemented().items():
            module = api.StandinModule(name, f"CuPy stand-in for {name} (NumPy-backed; tests/standin)")
            for attribute, value in names.items():
                module.define(attribute, value)
            _built[name] = module
        _built["cupy"].__version__ = api.VERSION  # the CuPy whose API this is (the doctor prints it)
        for name, module in _built.items():  # submodules as attributes of their parents
            parent, _, child = name.rpartition(".")
            if parent in _built and name != "cupy.cuda.nccl":  # (CuPy imports nccl only on request)
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
