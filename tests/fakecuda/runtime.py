"""The fakes of CUDA runtime and driver calls that CuPy makes, as Python functions of a FakeDevice.

Each is named after the ``cupy_backends.cuda.api.runtime``/``driver`` function it
replaces and takes the same arguments. A call to any other function of those
modules is an error the tests see (``FakeDevice.errors``): CuPy did something
the fake does not know, so its answer cannot be trusted.
"""
from cupy_backends.cuda.api import driver, runtime

from . import capsules

CUDA_VERSION = 12090  # what the runtime and the driver report: the CUDA of the ctk wheels CI installs
_MEMORY = 80 * 2 ** 30  # what memGetInfo reports (an H100's), free and total


def _attributes(major, minor):
    """cudaDeviceGetAttribute's answers for an H100 (9.0) or an A100 (8.0): those CuPy asks for."""
    per_sm_shared = 233472 if major >= 9 else 167936
    values = {"MaxThreadsPerBlock": 1024, "MaxBlockDimX": 1024, "MaxBlockDimY": 1024, "MaxBlockDimZ": 64,
              "MaxGridDimX": 2 ** 31 - 1, "MaxGridDimY": 65535, "MaxGridDimZ": 65535, "WarpSize": 32,
              "MaxSharedMemoryPerBlock": 49152, "MaxSharedMemoryPerBlockOptin": per_sm_shared - 1024,
              "MaxSharedMemoryPerMultiprocessor": per_sm_shared, "MultiProcessorCount": 132 if major >= 9 else 108,
              "MaxThreadsPerMultiProcessor": 2048, "MaxBlocksPerMultiprocessor": 32, "L2CacheSize": 50 * 2 ** 20,
              "MaxRegistersPerBlock": 65536, "MaxRegistersPerMultiprocessor": 65536, "UnifiedAddressing": 1,
              "ManagedMemory": 1, "ConcurrentKernels": 1, "MemoryPoolsSupported": 1, "CooperativeLaunch": 1,
              "PciBusId": 0, "PciDeviceId": 0, "PciDomainId": 0, "Integrated": 0, "ClockRate": 1980000,
              "MemoryClockRate": 2619000, "GlobalMemoryBusWidth": 5120, "TotalConstantMemory": 65536}
    table = {getattr(runtime, "cudaDevAttr" + name): value for name, value in values.items()}
    table[capsules.variable(runtime, "deviceAttributeComputeCapabilityMajor")] = major  # (no Python names)
    table[capsules.variable(runtime, "deviceAttributeComputeCapabilityMinor")] = minor
    return table


def _properties(device):
    major, minor = device.compute_capability
    name = b"Fake H100 (tests/fakecuda)" if major >= 9 else b"Fake A100 (tests/fakecuda)"
    return {"name": name, "totalGlobalMem": _MEMORY, "major": major, "minor": minor,
            "multiProcessorCount": 132 if major >= 9 else 108, "sharedMemPerBlock": 49152,
            "maxThreadsPerBlock": 1024, "warpSize": 32, "clockRate": 1980000, "pciBusID": 0, "pciDeviceID": 0,
            "pciDomainID": 0, "regsPerBlock": 65536, "l2CacheSize": 50 * 2 ** 20, "integrated": 0,
            "maxThreadsPerMultiProcessor": 2048, "memoryClockRate": 2619000, "memoryBusWidth": 5120}


def runtime_fakes(device):
    """{runtime function name: fake} for ``device`` (a FakeDevice, which is device 0 and the only one)."""
    attributes = _attributes(*device.compute_capability)
    handle = device.handle

    def set_device(index):
        if index != 0:
            raise ValueError(f"the fake has one device, 0; CuPy asked for {index}")

    def synchronize(*_):
        device.record("synchronize", None)

    def pointer_attributes(pointer):
        on_device = device.on_device(pointer)
        return runtime.PointerAttributes(0 if on_device else -2, pointer if on_device else 0,
                                         0 if on_device else pointer, 2 if on_device else 0)

    nothing = lambda *_: None  # noqa: E731 (calls that change nothing a test could see)
    return {
        "driverGetVersion": lambda: CUDA_VERSION, "runtimeGetVersion": lambda: CUDA_VERSION,
        "_getCUDAMajorVersion": lambda: CUDA_VERSION // 1000,
        "getDevice": lambda: 0, "setDevice": set_device, "getDeviceCount": lambda: 1,
        "deviceGetAttribute": lambda attribute, index: attributes[attribute],
        "getDeviceProperties": lambda index: _properties(device),
        "deviceGetPCIBusId": lambda index: "0000:00:00.0", "deviceCanAccessPeer": lambda a, b: 0,
        "deviceGetLimit": lambda limit: 0, "deviceSetLimit": nothing, "_ensure_context": nothing,
        "deviceSynchronize": synchronize,
        "malloc": device.malloc, "mallocAsync": lambda size, stream: device.malloc(size),
        "free": device.free, "freeAsync": lambda pointer, stream: device.free(pointer),
        "memGetInfo": lambda: (_MEMORY, _MEMORY),
        "hostAlloc": lambda size, flags: device.host_alloc(size), "freeHost": device.free_host,
        "hostRegister": nothing, "hostUnregister": nothing,
        "memcpy": lambda dst, src, size, kind: device.copy(dst, src, size),
        "memcpyAsync": lambda dst, src, size, kind, stream: device.copy(dst, src, size),
        "memset": device.memset,
        "memsetAsync": lambda pointer, value, size, stream: device.memset(pointer, value, size),
        "pointerGetAttributes": pointer_attributes,
        "pointerGetMemoryType": lambda pointer: 2 if device.on_device(pointer) else 1 if device.pinned(pointer) else 0,
        "streamCreate": handle, "streamCreateWithFlags": lambda flags: handle(),
        "streamCreateWithPriority": lambda flags, priority: handle(), "streamDestroy": nothing,
        "streamSynchronize": synchronize, "streamQuery": lambda stream: 0, "streamWaitEvent": nothing,
        "streamIsCapturing": lambda stream: 0, "streamGetFlags": lambda stream: 0, "streamGetPriority": lambda s: 0,
        "eventCreate": handle, "eventCreateWithFlags": lambda flags: handle(), "eventDestroy": nothing,
        "eventRecord": nothing, "eventSynchronize": synchronize, "eventQuery": lambda event: 0,
        "eventElapsedTime": lambda start, end: 0.0,
    }


def driver_fakes(device):
    """{driver function name: fake} for ``device``."""
    def function_attribute(attribute, function):
        return {driver.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: 1024,
                driver.CU_FUNC_ATTRIBUTE_NUM_REGS: 32}.get(attribute, 0)

    def launch(function, gx, gy, gz, bx, by, bz, shared_memory, stream, arguments, extra):
        device.launch(function, (gx, gy, gz), (bx, by, bz), shared_memory)

    return {
        "get_build_version": lambda: CUDA_VERSION, "ctxGetCurrent": lambda: 1, "ctxGetDevice": lambda: 0,
        "moduleLoadData": device.load_module, "moduleGetFunction": device.get_function,
        "moduleUnload": lambda module: None, "launchKernel": launch,
        "funcGetAttribute": function_attribute, "funcSetAttribute": lambda function, attribute, value: None,
        "occupancyMaxActiveBlocksPerMultiprocessor": lambda function, block, shared: 2048 // max(block, 1),
        "occupancyMaxPotentialBlockSize": lambda function, shared, limit: (264, 1024),
    }
