"""The CuPy stand-in (tests/standin) itself: each of its rules, biting.

A stand-in kinder than CuPy would let GPU bugs pass in CI, so each test below
makes the stand-in refuse, count or behave as CuPy does on a GPU.
"""
import gc
import inspect
import operator
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import on_cupy_standin

pytestmark = pytest.mark.skipif(not on_cupy_standin(),
                                reason="the CuPy stand-in is not installed (real CuPy runs the GPU tests)")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cp():
    import cupy
    return cupy


@pytest.fixture
def standin():
    from tests import standin
    return standin


@pytest.fixture
def x(cp):
    return cp.asarray(np.arange(6.0).reshape(2, 3))


def here():
    """(this file, the caller's line)."""
    frame = inspect.currentframe().f_back
    return os.path.abspath(frame.f_code.co_filename), frame.f_lineno


# -- the array is not NumPy's ------------------------------------------------------------------------
def test_numpy_cannot_read_a_device_array(x):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.array(x, dtype=np.float32)
    assert not isinstance(x, np.ndarray)


def test_a_numba_kernel_refuses_a_device_array(x):
    numba = pytest.importorskip("numba")

    @numba.njit
    def total(a):
        return a.sum()

    with pytest.raises(numba.core.errors.TypingError):
        total(x)


def test_numpy_functions_dispatch_to_cupys_or_fail(cp, x):
    joined = np.concatenate([x, x])  # __array_function__: cupy.concatenate
    assert isinstance(joined, cp.ndarray) and joined.shape == (4, 3)
    assert isinstance(np.exp(x), cp.ndarray) and isinstance(np.sum(x), cp.ndarray)  # __array_ufunc__
    with pytest.raises(NotImplementedError, match="cupy.linalg.norm exists in CuPy"):
        np.linalg.norm(x)


# -- only CuPy's names, with CuPy's signatures ------------------------------------------------------------
def test_numpy_only_keywords_are_type_errors(cp, x):
    with pytest.raises(TypeError, match=r"cupy.exp\(\): got an unexpected keyword argument 'where'"):
        cp.exp(x, where=x > 0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'initial'"):
        cp.sum(x, initial=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'initial'"):
        x.sum(initial=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'like'"):
        cp.zeros(3, like=x)


def test_names_cupy_lacks_are_attribute_errors_and_unimplemented_ones_say_so(cp, x):
    with pytest.raises(AttributeError, match="module 'cupy' has no attribute 'no_such_function'"):
        cp.no_such_function
    assert not hasattr(cp, "no_such_function") and not hasattr(cp.cuda.runtime, "cudaFree")
    with pytest.raises(NotImplementedError, match="cupy.fft exists in CuPy 14.2.0, but the CuPy stand-in"):
        cp.fft
    with pytest.raises(AttributeError, match="'ndarray' object has no attribute 'no_such_method'"):
        x.no_such_method
    with pytest.raises(NotImplementedError, match="cupy.ndarray.partition exists in CuPy"):
        x.partition(1)


def test_every_name_and_signature_the_stand_in_defines_is_cupys(cp):
    from tests.standin import api, installer
    for module_name, module in installer.build().items():
        table = api.MODULES[module_name]
        for name, value in vars(module).items():
            if name.startswith("_"):
                continue
            assert name in table, f"{module_name}.{name}"
            if inspect.isfunction(value) and table[name][0] == "function" and "**" not in str(
                    inspect.signature(value)) and not str(inspect.signature(value)).startswith("(*"):
                _assert_same_parameters(inspect.signature(value), api.signature(table[name][1]),
                                        f"{module_name}.{name}")
    from cupy.cuda import nccl
    for class_name, cls in [("cupy.ndarray", cp.ndarray), ("cupy.cuda.nccl.NcclCommunicator", nccl.NcclCommunicator)]:
        for name, entry in api.CLASSES[class_name].items():
            method = getattr(cls, name, None)
            if entry[0] == "method" and inspect.isfunction(method):
                _assert_same_parameters(inspect.signature(method), api.signature(entry[1]), f"{class_name}.{name}",
                                        drop_self=True)
    _assert_same_parameters(inspect.signature(nccl.NcclCommunicator), api.signature(
        api.MODULES["cupy.cuda.nccl"]["NcclCommunicator"][1]), "cupy.cuda.nccl.NcclCommunicator")


def _assert_same_parameters(ours, cupys, name, drop_self=False):
    params = list(ours.parameters.values())[1 if drop_self else 0:]
    assert [(p.name, p.kind) for p in params] == [(p.name, p.kind) for p in cupys.parameters.values()], name


def test_every_signature_in_the_table_parses():
    from tests.standin import api
    entries = [entry for table in list(api.MODULES.values()) + list(api.CLASSES.values()) for entry in table.values()]
    texts = [entry[1] for entry in entries if entry[0] in ("function", "method", "ufunc", "class") and entry[1]]
    assert len(texts) > 700
    for text in texts:
        api.signature(text)


# -- operands -------------------------------------------------------------------------------------------
def test_host_arrays_in_device_operations_fail_as_in_cupys_kernels(cp, x):
    for host in (np.ones(3), np.array(2.0)):  # a 0-d NumPy array is no scalar to CuPy
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            x + host
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            host * x  # NumPy hands it to the device array's __array_ufunc__
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.where(x > 0, np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[...] = np.ones((2, 3))
    assert (x * 2.0).dtype == np.float64 and (x + np.float32(1)).shape == (2, 3)  # scalars are fine
    assert (x == np.array(1.0)).dtype == np.bool_  # comparisons take a 0-d NumPy array, as CuPy's


def test_reductions_and_scalar_indexing_give_0d_device_arrays_with_no_index(cp, x):
    for value in (x.sum(), x.max(), cp.mean(x), x[1, 2], x[0][1], cp.count_nonzero(x)):
        assert isinstance(value, cp.ndarray) and value.ndim == 0
    with pytest.raises(TypeError):
        operator.index(x[1, 2])
    with pytest.raises(TypeError):
        range(cp.asarray(3))
    with pytest.raises(TypeError, match="len\\(\\) of unsized object"):
        len(x.sum())
    assert len(x) == 2 and x.shape == (2, 3) and x.dtype == np.float64 and x.ndim == 2 and x.size == 6
    assert x.strides == (24, 8) and x.flags.c_contiguous and x.flags["C_CONTIGUOUS"] and x.device.id == 0


# -- counting ---------------------------------------------------------------------------------------------
def test_host_reads_are_counted_one_each(cp, x, standin):
    reads = [lambda: float(x[0, 0]), lambda: int(x[0, 0]), lambda: bool(x[0, 0]), lambda: x[0, 0].item(),
             lambda: x.tolist(), lambda: x.get(), lambda: repr(x), lambda: cp.asnumpy(x),
             lambda: x[x > 2], lambda: cp.nonzero(x), lambda: cp.unique(x)]
    for read in reads:
        with standin.counting() as counter:
            read()
        assert counter.syncs == 1
    with standin.counting() as counter:
        cp.bincount(cp.asarray(np.array([0, 2, 2])))
    assert counter.syncs == 2  # CuPy checks x >= 0 and reads max(x) on the host


def test_counts_are_charged_to_the_calling_line(cp, x, standin):
    with standin.counting() as counter:
        y = x * 2 + 1; line = here()  # noqa: E702 (one line: two kernels)
        value = float(y[1, 1]); read_line = here()  # noqa: E702
        z = cp.asarray(np.ones(4)); upload_line = here()  # noqa: E702
    assert value == 9.0 and z.shape == (4,)
    assert counter.sites("device_ops") == {line: 2}
    assert counter.sites("syncs") == {read_line: 1} and counter.sites("uploads") == {upload_line: 1}
    assert counter.totals() == {"device_ops": 2, "syncs": 1, "uploads": 1}
    assert "test_standin.py" in counter.report()


def test_views_cost_nothing_and_writes_go_through_them(cp, x, standin):
    with standin.counting() as counter:
        views = [x[1:, ::2], x.T, x.reshape(3, 2), x.ravel(), x[None], cp.expand_dims(x, 0), x.swapaxes(0, 1),
                 cp.broadcast_to(x, (4, 2, 3)), x[0], cp.split(x, 3, axis=1)[1], cp.ascontiguousarray(x)]
    assert counter.device_ops == 0 and all(isinstance(v, cp.ndarray) for v in views)
    column = x[:, 1]
    with standin.counting() as counter:
        column += 10
        copied = x.T.reshape(6)  # the transposed layout cannot be a view: one copy
    assert counter.device_ops == 2
    np.testing.assert_array_equal(x.get()[:, 1], [11.0, 14.0])
    np.testing.assert_array_equal(copied.get(), x.get().T.reshape(6))


def test_like_functions_keep_the_prototypes_layout_as_cupy_does(cp, standin):
    """Order "K" (the default of empty_like, zeros_like, ones_like, full_like): a channels-last
    prototype gives a channels-last result, a transposed one a transposed one, a C-contiguous one C."""
    channels_last = cp.zeros((2, 4, 5, 3)).transpose(0, 3, 1, 2)
    for prototype in (channels_last, cp.zeros((3, 4)).T, cp.zeros((2, 3))):
        for make, kernels in ((cp.empty_like, 0), (cp.zeros_like, 1), (cp.ones_like, 1),
                              (lambda a: cp.full_like(a, 7.0), 1)):
            with standin.counting() as counter:
                made = make(prototype)
            assert made.shape == prototype.shape and made.strides == prototype.strides
            assert counter.device_ops == kernels
    np.testing.assert_array_equal(cp.full_like(channels_last, 7.0).get(), np.full((2, 3, 4, 5), 7.0))
    np.testing.assert_array_equal(cp.zeros_like(channels_last, dtype=np.int8, order="C").get(),
                                  np.zeros((2, 3, 4, 5), np.int8))
    assert cp.empty_like(channels_last, order="C").flags.c_contiguous


def test_concatenate_gives_a_c_contiguous_result_whatever_the_inputs_layout(cp):
    """CuPy allocates the result in C order (NumPy's concatenate keeps its inputs' layout instead)."""
    channels_last = cp.arange(24.0).reshape(2, 2, 2, 3).transpose(0, 3, 1, 2)
    joined = cp.concatenate([channels_last, channels_last], axis=1)
    assert joined.flags.c_contiguous
    np.testing.assert_array_equal(joined.get(), np.concatenate([channels_last.get()] * 2, axis=1))


def test_a_ufuncs_new_output_is_c_contiguous_whatever_the_inputs_layout(cp):
    """CuPy's ufuncs (and the operators, which call them) take no order= and allocate C-ordered outputs;
    NumPy's keep the inputs' layout (order="K"). An out= array keeps its own."""
    channels_last = cp.arange(24.0).reshape(2, 2, 2, 3).transpose(0, 3, 1, 2)
    for result in (cp.maximum(channels_last, 0.0), channels_last * 2.0, -channels_last, cp.exp(channels_last)):
        assert result.flags.c_contiguous and result.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal((channels_last * 2.0).get(), channels_last.get() * 2.0)
    target = cp.empty_like(channels_last)  # channels-last, as its prototype
    cp.multiply(channels_last, 2.0, out=target)
    assert not target.flags.c_contiguous
    assert cp.add(cp.ones(()), 1.0).shape == ()  # 0-d operands: a 0-d array, not a scalar


def test_copyto_writes_in_place_in_one_kernel(cp, standin):
    """A masked copy of a scalar or an array, a fill, a copy: one kernel each, into ``dst``'s own memory;
    nothing for an empty ``dst``; a host array or a mask that is not bool is refused, as by CuPy."""
    dst = cp.zeros((2, 3))
    mask = cp.asarray(np.array([[True], [False]]))
    for src, where, expected in ((-np.inf, mask, [[-np.inf] * 3, [0.0] * 3]), (2.0, None, [[2.0] * 3] * 2),
                                 (cp.arange(3.0), mask, [[0.0, 1.0, 2.0], [2.0] * 3])):
        with standin.counting() as counter:
            cp.copyto(dst, src, where=where)
        assert counter.device_ops == 1
        np.testing.assert_array_equal(dst.get(), expected)
    with standin.counting() as counter:
        cp.copyto(cp.zeros((0, 3)), 1.0)
    assert counter.device_ops == 0
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.copyto(dst, np.ones(3))
    with pytest.raises(TypeError, match="to dtype\\('bool'\\)"):
        cp.copyto(dst, 1.0, where=cp.ones((2, 1)))


def test_composite_functions_count_cupys_kernels(cp, x, standin):
    expected = [(lambda: cp.empty((2, 3)), 0), (lambda: cp.zeros(3), 1), (lambda: cp.ones(3), 1),
                (lambda: cp.pad(x, 1), 2), (lambda: cp.concatenate([x, x, x, x]), 4),
                (lambda: cp.random.random_sample(4), 2), (lambda: cp.random.standard_normal(4), 1),
                (lambda: x @ x.T, 1),  # a transposed operand is F-contiguous: cuBLAS takes it as it is
                (lambda: x[:, ::2].T @ x[:, ::2], 3),  # neither C- nor F-contiguous: copied first, each
                (lambda: x[cp.asarray(np.array([1, 0]))], 1), (lambda: x.astype(np.float32), 1),
                (lambda: x.astype(np.float64, copy=False), 0), (lambda: cp.eye(3), 2)]
    for make, count in expected:
        with standin.counting() as counter:
            make()
        assert counter.device_ops == count, inspect.getsource(make).strip()
    with standin.counting() as counter, standin.one_operation():
        (x * 2 + 1).sum()  # a composite call counted as one operation (a fused kernel's NumPy twin)
    assert counter.device_ops == 1


def test_cupys_scatter_add_refuses_int64(cp):
    index = cp.asarray(np.array([0, 2, 2]))
    counts = cp.zeros(3, dtype=np.int32)
    cp.add.at(counts, index, 1)
    np.testing.assert_array_equal(counts.get(), [1, 0, 2])
    with pytest.raises(TypeError, match="scatter_add only supports int32"):
        cp.add.at(cp.zeros(3, dtype=np.int64), index, 1)


def test_allow_synchronize_false_turns_a_read_into_an_error(cp, x):
    import cupyx
    with cupyx.allow_synchronize(False):
        x + 1
        with pytest.raises(cupyx.DeviceSynchronized):
            float(x[0, 0])


# -- devices ----------------------------------------------------------------------------------------------------
def test_an_array_on_another_device_fails_in_a_kernel_but_moves_as_in_cupy(cp, standin):
    assert cp.cuda.runtime.getDeviceCount() == 2 and cp.cuda.runtime.getDevice() == 0
    with cp.cuda.Device(1):
        x1 = cp.asarray(np.arange(4.0))
        assert x1.device.id == 1 and (x1 * 2).device.id == 1
    assert cp.cuda.runtime.getDevice() == 0
    with pytest.raises(ValueError, match=r"resides \(1\) is different from the current device \(0\)\. "
                                         "Peer access is unavailable"):
        x1 * 2
    with pytest.raises(ValueError, match="different from the current device"):
        x1.astype(np.float32)  # a cast is a kernel on the current device
    assert x1.astype(np.float64, copy=False) is x1 and x1[1:].device.id == 1  # no kernel: fine anywhere
    np.testing.assert_array_equal(x1.get(), np.arange(4.0))  # a read works from any device
    for moved in (cp.asarray(x1), cp.array(x1), x1.copy()):  # CuPy copies to the current device
        assert moved.device.id == 0 and moved is not x1
    np.testing.assert_array_equal(cp.asarray(x1).get(), np.arange(4.0))
    with pytest.raises(NotImplementedError, match="cannot copy non-contiguous array between devices"):
        cp.asarray(x1[::2])
    x0 = cp.zeros(2)
    assert cp.asarray(x0) is x0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        cp.cuda.Device(2).use()
    with standin.simulated_devices(0):
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorNoDevice"):
            cp.cuda.runtime.getDeviceCount()
    assert cp.cuda.runtime.getDeviceProperties(1)["name"] == b"CuPy stand-in (NumPy)"


def test_the_memory_pool_accounts_for_live_arrays(cp):
    pool = cp.get_default_memory_pool()
    gc.collect()
    pool.free_all_blocks()
    used, total = pool.used_bytes(), pool.total_bytes()
    a = cp.zeros(1000)  # 8,000 bytes: one 8,192-byte block
    view = a[::2]
    assert pool.used_bytes() == used + 8192 and pool.total_bytes() == total + 8192
    del a
    gc.collect()
    assert pool.used_bytes() == used + 8192  # the view keeps the memory alive
    del view
    gc.collect()
    assert pool.used_bytes() == used and pool.total_bytes() == total + 8192  # the pool keeps the block
    b = cp.ones(1024)  # the same rounded size: the freed block is reused
    assert pool.total_bytes() == total + 8192
    pool.free_all_blocks()
    assert pool.total_bytes() == total + 8192 and b.size == 1024
    del b
    gc.collect()
    pool.free_all_blocks()
    assert pool.total_bytes() == total


def test_random_state_is_seeded_float_only_and_counted(cp, standin):
    first, second = cp.random.RandomState(5), cp.random.RandomState(5)
    with standin.counting() as counter:
        a = first.random_sample((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(a.get(), second.random_sample((3, 4), dtype=np.float32).get())
    assert a.dtype == np.float32 and counter.device_ops == 2 and 0 <= float(a.min()) and float(a.max()) < 1
    with pytest.raises(TypeError, match="float32 and float64"):
        first.random_sample(3, dtype=np.int32)


# -- TF32 ---------------------------------------------------------------------------------------------------
def test_tf32_rounds_to_ten_mantissa_bits_ties_to_even():
    from tests.standin.linalg import round_to_tf32
    values = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -10, -2.5, np.inf], np.float32)
    np.testing.assert_array_equal(round_to_tf32(values), [1.0, 1 + 2 ** -9, 1 + 2 ** -10, -2.5, np.inf])


TF32_ONCE = """
import os
import numpy as np
from tests.standin import install
from tests.standin.linalg import round_to_tf32
cp = install()
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((8, 8)).astype(np.float32) for _ in range(2))
exact, rounded = a @ b, round_to_tf32(a) @ round_to_tf32(b)
cp.asarray(a.astype(np.float64)) @ cp.asarray(b.astype(np.float64))  # not float32: decides nothing
first = (cp.asarray(a) @ cp.asarray(b)).get()                        # CUPY_TF32=1 read here, once
os.environ["CUPY_TF32"] = "0"
later = (cp.asarray(a) @ cp.asarray(b)).get()
print(np.array_equal(first, rounded), np.array_equal(later, rounded), np.array_equal(first, exact))
"""


def test_tf32_is_read_once_at_the_first_float32_product():
    env = dict(os.environ, CUPY_TF32="1", PYTHONPATH=os.pathsep.join([REPO_ROOT]))
    result = subprocess.run([sys.executable, "-c", TF32_ONCE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False"]


# -- raw device pointers ------------------------------------------------------------------------------------------
def test_data_ptr_is_a_made_up_device_address_consistent_across_views(cp, standin):
    with standin.counting() as counter:
        a, b = cp.zeros((4, 6), np.float32), cp.zeros(3)
        first = a.data.ptr
        pointers = [a.data.ptr, a[1].data.ptr, a[1:, 2:].data.ptr, a.T.data.ptr, a.reshape(-1)[5:].data.ptr,
                    a[:, ::-1].data.ptr]
    assert counter.device_ops == 2 and counter.syncs == 0  # the two zero-fills; reading pointers is free
    assert isinstance(first, int) and first % 512 == 0 and pointers == [first, first + 24, first + 32, first,
                                                                         first + 20, first + 20]
    assert b.data.ptr >= first + 512 and b.data.ptr % 512 == 0  # another allocation, another range
    assert a.data.device_id == 0 and a.data.device == cp.cuda.Device(0) and cp.zeros(0).data.ptr == 0
    with pytest.raises(NotImplementedError, match="cupy.cuda.MemoryPointer.copy_to_host exists in CuPy"):
        a.data.copy_to_host
    assert cp.cuda.Stream.null.ptr == 0 and cp.cuda.Stream.null.device_id == -1
    with cp.cuda.Device(1):
        stream = cp.cuda.Stream()
    assert stream.ptr != 0 and stream.device_id == 1


@pytest.fixture
def nccl(cp):
    from cupy.cuda import nccl
    return nccl


@pytest.fixture
def alone(nccl):
    """A communicator of one rank, on device 0."""
    return nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)


def test_ncclcommunicator_of_one_reduces_in_one_device_operation_and_reads_nothing(cp, nccl, alone, standin):
    unique_id = nccl.get_unique_id()
    assert isinstance(unique_id, bytes) and len(unique_id) == 128 and unique_id != nccl.get_unique_id()
    assert (alone.rank_id(), alone.size(), alone.device_id()) == (0, 1, 0) and nccl.available
    x, total = cp.asarray(np.arange(5.0)), cp.zeros(5)
    f64, stream = nccl.NCCL_FLOAT64, cp.cuda.get_current_stream().ptr
    with standin.counting() as counter:
        alone.allReduce(x.data.ptr, total.data.ptr, 5, f64, nccl.NCCL_SUM, stream); line = here()  # noqa: E702
        alone.bcast(x.data.ptr, 0, f64, 0, stream)  # nothing to move: no kernel
    assert counter.sites("device_ops") == {line: 1} and counter.syncs == 0 and counter.uploads == 0
    np.testing.assert_array_equal(total.get(), np.arange(5.0))
    alone.destroy()
    with pytest.raises(nccl.NcclError, match="NCCL_ERROR_INVALID_ARGUMENT: .*this communicator was destroyed"):
        alone.rank_id()


def test_ncclcommunicator_refuses_what_nccl_cannot_do_with_the_pointers_it_gets(cp, nccl, alone):
    x = cp.asarray(np.arange(6, dtype=np.float32))
    with cp.cuda.Device(1):
        elsewhere, stream_elsewhere = cp.zeros(6, np.float32), cp.cuda.Stream()
    gone = cp.zeros(6, np.float32).data.ptr  # the array died right after: its pointer dangles
    f32, add, ptr = nccl.NCCL_FLOAT32, nccl.NCCL_SUM, x.data.ptr
    cases = [((ptr, ptr, 7, f32, add, 0), "with 6 element.s. from there to its end, but the call has 7"),
             ((x[4:].data.ptr, ptr, 3, f32, add, 0), "sendbuf .* 2 element.s. from there .* has 3"),
             ((ptr, ptr, 6, nccl.NCCL_FLOAT64, add, 0), "float32 .* but datatype is NCCL_FLOAT64"),
             ((ptr + 2, ptr, 1, f32, add, 0), "sendbuf is 2 bytes into .*: not at an element"),
             ((gone, ptr, 6, f32, add, 0), "sendbuf 0x[0-9a-f]+ is no address in a live device array"),
             ((ptr, elsewhere.data.ptr, 6, f32, add, 0), "recvbuf points into .* on device 1, but this "
                                                         "communicator works on device 0"),
             ((ptr, ptr, 6, f32, add, stream_elsewhere.ptr), "is a stream of device 1"),
             ((ptr, ptr, 6, f32, add, 12345), "stream 0x3039 is no live stream"),
             ((ptr, ptr, 6, f32, 9, 0), "op 9 is none of NCCL_SUM"),
             ((ptr, ptr, 6, nccl.NCCL_BFLOAT16, add, 0), "no bfloat16 arrays")]
    for arguments, message in cases:
        with pytest.raises(nccl.NcclError, match=message):
            alone.allReduce(*arguments)
    with pytest.raises(TypeError, match="an integer is required"):  # as Cython converts the arguments
        alone.allReduce(x.data, ptr, 6, f32, add, 0)
    with pytest.raises(OverflowError, match="can't convert negative value to size_t"):
        alone.allReduce(ptr, ptr, -1, f32, add, 0)
    with pytest.raises(nccl.NcclError, match="root 1 is not a rank of this communicator of 1"):
        alone.bcast(x.data.ptr, 6, f32, 1, 0)
    np.testing.assert_array_equal(x.get(), np.arange(6))  # nothing was written


def test_ncclcommunicator_is_made_as_in_cupy_14_and_only_cupys_nccl_names_exist(cp, nccl):
    import cupy
    with pytest.raises(TypeError, match=r"Argument 'commId' has incorrect type \(expected bytes, got tuple\)"):
        nccl.NcclCommunicator(1, tuple(nccl.get_unique_id()), 0)  # CuPy 13's ids were tuples
    with pytest.raises(ValueError, match="commId length 10 != 128"):
        nccl.NcclCommunicator(1, bytes(10), 0)
    with pytest.raises(nccl.NcclError, match="commId was not made by get_unique_id"):
        nccl.NcclCommunicator(1, bytes(128), 0)
    with pytest.raises(nccl.NcclError, match="rank 1 is not one of the ranks 0 to ndev - 1 = 0"):
        nccl.NcclCommunicator(1, nccl.get_unique_id(), 1)
    with pytest.raises(nccl.NcclError, match=r"NcclCommunicator\(ndev=2\) .* this process is not in MPI"):
        nccl.NcclCommunicator(2, nccl.get_unique_id(), 0)  # (pytest's process never imports mpi4py.MPI)
    with pytest.raises(AttributeError, match="module 'cupy.cuda.nccl' has no attribute 'allreduce'"):
        nccl.allreduce
    with pytest.raises(NotImplementedError, match="cupy.cuda.nccl.groupStart exists in CuPy 14.2.0"):
        nccl.groupStart()
    with pytest.raises(NotImplementedError, match="NcclCommunicator.send exists in CuPy"):
        nccl.NcclCommunicator(1, nccl.get_unique_id(), 0).send
    assert not hasattr(cupy.cuda, "nccl")  # as in CuPy, cupy.cuda.nccl is reached by importing it


def launch_standin_nccl(case, timeout=120):
    """tests/mpi/standin_nccl.py on 2 MPI ranks, each on the stand-in with 2 simulated devices."""
    from helpers import launch_mpi
    script = os.path.join(REPO_ROOT, "tests", "mpi", "standin_nccl.py")
    return launch_mpi(["-m", "tests.standin.run", "--devices", "2", script, case], ranks=2, timeout=timeout)


def test_ncclcommunicator_on_two_mpi_ranks_gives_nccls_results_and_keeps_its_rules():
    code, output, _ = launch_standin_nccl("collectives")
    assert code == 0, output
    assert "rank 0: passed" in output and "rank 1: passed" in output, output


def test_a_rank_that_never_joins_a_communicator_makes_the_others_fail_instead_of_waiting_forever():
    code, output, seconds = launch_standin_nccl("one-rank-never-joins", timeout=60)
    assert code != 0 and "rank 0: the communicator rank 1 never joined failed" in output, output
    print(f"the job ended {seconds:.1f} s after launch (join timeout: 2 s)")


# -- the runner ------------------------------------------------------------------------------------------------------
def test_the_runner_runs_a_command_on_the_stand_in_and_reports_its_costs():
    result = subprocess.run([sys.executable, "-m", "tests.standin.run", "--report", "-m", "minicnn.gradcheck",
                             "--device", "gpu:1", "--layer", "relu"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Gradient check on gpu:1" in result.stdout and "1 of 1 cases passed" in result.stdout
    assert "CuPy stand-in: device_ops " in result.stderr and "kernels/fusion.py" in result.stderr
    no_gpu = subprocess.run([sys.executable, "-m", "tests.standin.run", "--devices", "0", "-m", "minicnn.gradcheck",
                             "--device", "gpu"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert no_gpu.returncode == 2 and "CuPy finds none (cudaErrorNoDevice" in no_gpu.stderr


# -- cupy.fuse: CuPy's old fusion, each of its rules (tests/standin/fusion.py) ----------------------------------
def test_the_three_ways_to_fuse_give_one_device_operation_per_call(cp, x, standin):
    def squared_diff(a, b):
        return (a - b) * (a - b)

    for fused in (cp.fuse(squared_diff), cp.fuse()(squared_diff), cp.fuse(kernel_name="sq")(squared_diff)):
        with standin.counting() as counter:
            result = fused(x, 1.5)
        assert counter.device_ops == 1 and counter.syncs == 0
        np.testing.assert_array_equal(result.get(), (np.arange(6.0).reshape(2, 3) - 1.5) ** 2)
    assert cp.fuse(kernel_name="sq")(squared_diff).name == "sq"
    assert cp.fuse(squared_diff).__name__ == "squared_diff"


def test_without_a_device_array_the_function_is_just_called(cp):
    assert cp.fuse(lambda a, b: a * b)(3, 4.0) == 12.0


def test_arguments_numpy_arrays_and_other_types_are_refused(cp, x):
    fused = cp.fuse(lambda a, b: a + b)
    with pytest.raises(TypeError, match="Invalid argument type.*numpy.ndarray"):
        fused(x, np.ones(3))
    with pytest.raises(TypeError, match="Invalid argument type"):
        fused(x, [1.0, 2.0, 3.0])


def test_a_device_array_captured_from_outside_is_refused(cp, x):
    outside = cp.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.fuse(lambda a: a + outside)(x)


@pytest.mark.parametrize("body", [lambda a: a.sum(), lambda a: a.reshape(6), lambda a: a.T, lambda a: a[0],
                                  lambda a: a.shape, lambda a: np.exp(a)])
def test_methods_attributes_indexing_and_numpy_functions_are_refused(cp, x, body):
    with pytest.raises((AttributeError, TypeError)):
        cp.fuse(body)(x)


def test_a_variable_cannot_be_cast_to_bool(cp, x):
    def branches(a):
        return a if a > 0 else -a
    with pytest.raises(TypeError, match="Can't cast to bool"):
        cp.fuse(branches)(x)


def test_in_place_operators_and_setitem_write_into_the_argument(cp, x, standin):
    @cp.fuse
    def step(p, g, lr):
        p -= lr * g
        g[...] = 0.0

    p, g = cp.ones((2, 3)), x.copy()
    with standin.counting() as counter:
        assert step(p, g, 0.5) is None
    assert counter.device_ops == 1
    np.testing.assert_array_equal(p.get(), 1 - 0.5 * np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(g.get(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[\.\.\.\]"):
        cp.fuse(lambda a: a.__setitem__(0, 1.0))(p)


def test_an_argument_written_in_place_must_span_the_kernel_and_not_overlap_another(cp, x):
    @cp.fuse
    def add_into(a, b):
        a += b

    with pytest.raises(ValueError, match="broadcast shape"):
        add_into(cp.ones((1, 3)), x)
    with pytest.raises(ValueError, match="non-broadcastable output"):
        add_into(cp.ones(3), x)
    with pytest.raises(ValueError, match="shares memory"):
        add_into(x[:, :2], x[:, 1:])


def test_outputs_take_the_broadcast_shape_and_a_tuple_gives_several(cp):
    @cp.fuse
    def affine(x, scale, shift):
        y = x * scale + shift
        return y, y > 0

    x = cp.asarray(np.linspace(-1, 1, 8).reshape(2, 4))
    scale, shift = cp.asarray(np.arange(4.0)), cp.asarray(np.full((2, 1), 0.25))
    y, positive = affine(x, scale, shift)
    expected = np.linspace(-1, 1, 8).reshape(2, 4) * np.arange(4.0) + 0.25
    np.testing.assert_allclose(y.get(), expected)
    assert positive.dtype == np.bool_ and positive.shape == (2, 4)
    ones = cp.fuse(lambda x, s: s * 1.0)(x, 2.0)  # a scalar output is broadcast too
    assert ones.shape == (2, 4) and float(ones[0, 0]) == 2.0
    with pytest.raises(TypeError, match="can't return"):
        cp.fuse(lambda a: [a])(x)


def test_one_reduction_then_only_the_reduced_values_and_constants(cp, x, standin):
    @cp.fuse
    def mean_square(a, b):
        return cp.sum(a * b, axis=0) * 0.5

    with standin.counting() as counter:
        result = mean_square(x, x)
    assert counter.device_ops == 1
    np.testing.assert_allclose(result.get(), (np.arange(6.0).reshape(2, 3) ** 2).sum(axis=0) * 0.5)
    with pytest.raises(NotImplementedError, match="Multiple reduction"):
        cp.fuse(lambda a: cp.sum(cp.sum(a, axis=0)))(x)
    with pytest.raises(NotImplementedError, match="Multiple reduction"):
        cp.fuse(lambda a: (cp.sum(a, axis=0), cp.amax(a, axis=0)))(x)
    with pytest.raises(ValueError, match="Shape mismatch"):
        cp.fuse(lambda a, s: cp.sum(a, axis=0) * s)(x, 2.0)  # an argument after the reduction
    with pytest.raises(ValueError, match="Shape mismatch"):
        cp.fuse(lambda a: (cp.sum(a, axis=0), a))(x)


def test_a_reduction_runs_over_the_broadcast_shape_of_every_argument(cp, x):
    # b broadcasts to x's shape: CuPy's ReductionKernel sums it twice over axis 0
    b = cp.asarray(np.ones((1, 3)))
    np.testing.assert_array_equal(cp.fuse(lambda a, b: cp.sum(b, axis=0))(x, b).get(), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("keyword", [{"keepdims": True}, {"dtype": np.float32}])
def test_reduction_keywords_other_than_axis_are_refused(cp, x, keyword):
    with pytest.raises(NotImplementedError):
        cp.fuse(lambda a: cp.sum(a, axis=0, **keyword))(x)


def test_a_reduction_cannot_write_into_an_argument(cp, x):
    def write_then_reduce(a):
        a *= 2.0
        return cp.sum(a, axis=0)
    with pytest.raises(ValueError, match="ReductionKernel"):
        cp.fuse(write_then_reduce)(x.copy())


def test_where_takes_a_bool_condition_and_copy_astype_clip_work(cp, x):
    @cp.fuse
    def mixed(a):
        return cp.where(a > 2.0, a, 0.0).astype(np.float32), cp.clip(a, 1.0, 4.0).copy()

    kept, clipped = mixed(x)
    assert kept.dtype == np.float32
    np.testing.assert_array_equal(kept.get(), np.where(np.arange(6.0) > 2, np.arange(6.0), 0).reshape(2, 3))
    np.testing.assert_array_equal(clipped.get(), np.clip(np.arange(6.0), 1, 4).reshape(2, 3))
    with pytest.raises(TypeError, match="bool"):
        cp.fuse(lambda a: cp.where(a, a, 0.0))(x)


def test_python_scalars_are_weak_and_results_of_scalars_only_are_strong(cp):
    x32 = cp.ones(3, dtype=np.float32)
    assert cp.fuse(lambda x, a: x * a + 1.0)(x32, 0.5).dtype == np.float32
    assert cp.fuse(lambda x, a, b: x * (a * b))(x32, 0.5, 2.0).dtype == np.float64  # as in CuPy's tracer
    assert cp.fuse(lambda x, a: x * a)(x32, np.float64(0.5)).dtype == np.float64  # a NumPy scalar is strong


def test_ufunc_keywords_other_than_out_are_refused(cp, x):
    with pytest.raises(TypeError, match="Wrong arguments"):
        cp.fuse(lambda a: cp.exp(a, dtype=np.float32))(x)


def test_a_fused_function_called_inside_another_is_part_of_its_kernel(cp, x, standin):
    inner = cp.fuse(lambda a: a * 2.0)
    outer = cp.fuse(lambda a: inner(a) + 1.0)
    with standin.counting() as counter:
        result = outer(x)
    assert counter.device_ops == 1
    np.testing.assert_array_equal(result.get(), np.arange(6.0).reshape(2, 3) * 2 + 1)


def test_a_python_float_with_only_bool_or_integer_operands_is_refused(cp, x):
    # NumPy gives float64; CuPy's old fusion takes the first loop 0.5 fits: float16
    with pytest.raises(TypeError, match="float16"):
        cp.fuse(lambda a: (a > 1.0) * 0.5)(x)
    result = cp.fuse(lambda a: (a > 1.0).astype(a.dtype) * 0.5)(x)
    assert result.dtype == np.float64


def test_real_and_imag_are_free_views_of_a_complex_array_and_steps_of_a_fused_kernel(cp, standin):
    z = cp.asarray(np.array([1 + 2j, 3 - 1j]))
    with standin.counting() as counter:
        real, imag = z.real, cp.imag(z)
    assert counter.device_ops == 0
    imag[0] = 5.0  # a view: the write lands in z
    assert complex(z[0]) == 1 + 5j and float(real[1]) == 3.0
    x = cp.asarray(np.array([1.0, 2.0]))
    assert x.real is x
    with standin.counting() as counter:
        assert float(x.imag.sum()) == 0.0  # new zeros: a fill (and the sum)
    assert counter.device_ops == 2
    sums = cp.fuse(lambda a, unit: cp.sum(a + unit * (a * a), axis=0))(x, np.complex128(1j))
    total, squares = cp.fuse(lambda s: (cp.real(s), cp.imag(s)))(sums)
    assert (float(total), float(squares)) == (3.0, 5.0)
