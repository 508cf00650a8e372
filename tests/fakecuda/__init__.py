"""Real CuPy without a GPU: a fake CUDA device 0 under CuPy, for compiling every kernel a GPU run launches.

``install((9, 0))``, before anything imports ``cupy``, swaps the CUDA runtime
and driver functions that CuPy's Cython modules call for Python fakes
(``capsules.py``, ``runtime.py``): one device of compute capability 9.0 (or
8.0), whose memory is host memory and whose kernel launches are recorded, not
run (``device.py``). Everything above that is real CuPy, unchanged: ``cupy.fuse``
tracing, the code generation of elementwise and reduction kernels, type
resolution, the kernel cache, and NVRTC compiling each kernel to a cubin for
that architecture. cuBLAS, cuRAND and CUB run precompiled GPU code of their
own, so their calls are recorded stubs (``libraries.py``).

Values in device arrays are garbage (nothing runs), so what this proves is the
structure: every kernel compiles, which kernels launch and how many, what is
copied between host and device. The CuPy stand-in (tests/standin) checks the
numbers. ``python -m tests.fakecuda.probe`` drives minicnn through it.

    from tests import fakecuda
    device = fakecuda.install((9, 0))   # returns the FakeDevice recording everything
    import cupy                         # real CuPy, on the fake device
"""
import sys

from . import capsules, libraries
from .device import DEVICE_TO_HOST, HOST_TO_DEVICE, FakeDevice, Launch
from .runtime import driver_fakes, runtime_fakes

__all__ = ["DEVICE_TO_HOST", "HOST_TO_DEVICE", "FakeDevice", "Launch", "install"]


def _replace_all(module, fakes, device):
    """Every C function ``module`` exports: its fake, or one that records an error if CuPy calls it."""
    for name, capsule in list(module.__pyx_capi__.items()):
        if "(" not in str(capsule) or name == "check_status":
            continue  # an exported variable, or pure Python logic
        def unexpected(*args, name=name):
            raise NotImplementedError(f"{module.__name__}.{name}{args}: the fake CUDA device does not "
                                      "implement it (tests/fakecuda/runtime.py)")
        try:
            capsules.parse(str(capsule).split('"')[1])
        except ValueError:
            continue  # returns a C struct (texture descriptors): CuPy's texture API only
        capsules.replace(module, name, fakes.get(name, unexpected), device.error)


def _record_fusion_fallbacks(device):
    """Record each ``cupy.fuse`` kernel that CuPy's fusion gave up on and handed to the experimental one."""
    from cupy._core import new_fusion
    experimental = new_fusion.Fusion

    class Fallback(experimental):
        def __init__(self, func, name):
            device.record("fusion_fallback", (name, repr(sys.exc_info()[1])))  # inside CuPy's `except`
            super().__init__(func, name)

    new_fusion.Fusion = Fallback


def install(compute_capability=(9, 0)):
    """Put the fake device under CuPy; must run before ``cupy`` is imported. Returns the FakeDevice."""
    if "cupy" in sys.modules:
        raise RuntimeError("tests.fakecuda.install() must run before cupy is imported")
    from cupy_backends.cuda.api import driver, runtime
    device = FakeDevice(tuple(compute_capability))
    _replace_all(runtime, runtime_fakes(device), device)
    _replace_all(driver, driver_fakes(device), device)
    libraries.stub_cublas(device, capsules)
    libraries.stub_curand(device)
    import cupy  # noqa: F401 (now binds the fakes)
    libraries.stub_cub(device)
    _record_fusion_fallbacks(device)
    return device
