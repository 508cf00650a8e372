"""Recorded stubs for the libraries that run precompiled GPU code: cuBLAS, cuRAND and CUB.

Their kernels are machine code inside NVIDIA's and CuPy's shared libraries,
launched by the libraries themselves, so the fake driver never sees them. Each
call is recorded as ("library", (name, detail)) and does nothing: a matrix
product's detail is its (m, n, k, dtype, batch), a random fill's its element
count and dtype, a CUB reduction's its input shape and dtype. CuPy's own
choices around them (which gemm, whether CUB applies, the output array it
allocates) still run.
"""
import numpy as np

_CUDA_DATA_TYPES = {0: "float32", 1: "float64", 2: "float16", 14: "bfloat16", 4: "complex64", 5: "complex128"}
_PREFIX_TYPES = {"s": "float32", "d": "float64", "c": "complex64", "z": "complex128", "h": "float16"}
_HANDLE_RESULTS = {"create": 0xB1A5, "getPointerMode": 0, "getMathMode": 0, "getVersion": 120902,
                   "getStream": 0}


def describe_gemm(name, args):
    """(m, n, k, dtype, batch) of a cuBLAS gemm call's arguments (handle, transa, transb, m, n, k, ...)."""
    m, n, k = args[3:6]
    if name.endswith("Ex"):  # sgemmEx, gemmEx, gemmStridedBatchedEx: A's cudaDataType follows A
        dtype = _CUDA_DATA_TYPES.get(args[8], f"cudaDataType {args[8]}")
    else:
        dtype = _PREFIX_TYPES[name[0]]
    batch = args[-3] if "Batched" in name else 1  # (..., batchCount, computeType, algo) / (..., C, ldc, batch)
    if name.endswith("Batched"):
        batch = args[-1]
    return (m, n, k, dtype, batch)


def stub_cublas(device, capsules):
    """Every cuBLAS function CuPy imports is a recorded stub: ``create`` gives a handle, a getter 0."""
    from cupy_backends.cuda.libs import cublas
    for name in list(cublas.__pyx_capi__):
        def stub(*args, name=name):
            if name in _HANDLE_RESULTS:
                return _HANDLE_RESULTS[name]
            if name.startswith("set") or name == "destroy":
                return None  # configuration: no kernel
            detail = describe_gemm(name, args) if "gemm" in name else args
            device.record("library", ("cublas." + name, detail))
            return None
        if "(" in str(cublas.__pyx_capi__[name]):
            capsules.replace(cublas, name, stub, device.error)


def stub_curand(device):
    """cuRAND's generator calls (made from Python by cupy.random) as recorded stubs."""
    from cupy_backends.cuda.libs import curand
    for name in [n for n in dir(curand) if n[0].islower() and callable(getattr(curand, n))]:
        def stub(*args, name=name):
            if name == "createGenerator":
                return 0xC0FFEE
            if name.startswith("generate"):  # (generator, pointer, count, ...)
                dtype = "float64" if "Double" in name else "float32" if name != "generate" else "uint32"
                device.record("library", ("curand." + name, (args[2], dtype)))
            return None
        setattr(curand, name, stub)


def stub_cub(device):
    """CUB's device-wide reductions and scans: CuPy decides to use them, the stub makes their outputs."""
    import cupy
    from cupy.cuda import cub

    def device_reduce(x, op, reduce_axis, out_axis, out=None, keepdims=False):
        device.record("library", ("cub.device_reduce", (x.shape, str(x.dtype))))
        if op in (cub.CUPY_CUB_ARGMIN, cub.CUPY_CUB_ARGMAX):  # a (key, value) pair; CuPy casts the key
            pair = cupy.empty((max(4, x.dtype.alignment) + x.dtype.itemsize,), np.int8)
            y = pair[0:4].view(np.int32).astype(np.int64)[0]
        else:
            y = cupy.empty((), x.dtype)
        if keepdims:
            y = y.reshape(tuple(x.shape[a] if a in out_axis else 1 for a in range(x.ndim)))
        if out is not None:
            cupy._core.elementwise_copy(y, out)
            y = out
        return y

    def device_segmented_reduce(x, op, reduce_axis, out_axis, out=None, keepdims=False, contiguous_size=0):
        device.record("library", ("cub.device_segmented_reduce", (x.shape, str(x.dtype))))
        shape = (tuple(x.shape[a] if a in out_axis else 1 for a in range(x.ndim)) if keepdims
                 else tuple(x.shape[a] for a in out_axis))
        y = cupy.empty(shape, x.dtype, order="C" if x.flags.c_contiguous else "F")
        if out is not None:
            cupy._core.elementwise_copy(y, out)
            y = out
        return y

    def device_scan(x, op):
        device.record("library", ("cub.device_scan", (x.shape, str(x.dtype))))
        return x

    cub.device_reduce, cub.device_segmented_reduce = device_reduce, device_segmented_reduce
    cub.device_scan = device_scan
