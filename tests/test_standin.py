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
    for name, entry in api.CLASSES["cupy.ndarray"].items():
        method = getattr(cp.ndarray, name, None)
        if entry[0] == "method" and inspect.isfunction(method):
            _assert_same_parameters(inspect.signature(method), api.signature(entry[1]), f"cupy.ndarray.{name}",
                                    drop_self=True)


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
    env = dict(os.environ, CUPY_TF32="1", PYTHONPATH=os.pathsep.join([os.path.join(REPO_ROOT, "src"), REPO_ROOT]))
    result = subprocess.run([sys.executable, "-c", TF32_ONCE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False"]


# -- the runner ------------------------------------------------------------------------------------------------------
def test_the_runner_runs_a_command_on_the_stand_in_and_reports_its_costs():
    result = subprocess.run([sys.executable, "-m", "tests.standin.run", "--report", "-m", "minicnn.gradcheck",
                             "--device", "gpu:1", "--layer", "relu"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Gradient check on gpu:1" in result.stdout and "1 of 1 cases passed" in result.stdout
    assert "CuPy stand-in: device_ops " in result.stderr and "functional/activation.py" in result.stderr
    no_gpu = subprocess.run([sys.executable, "-m", "tests.standin.run", "--devices", "0", "-m", "minicnn.gradcheck",
                             "--device", "gpu"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert no_gpu.returncode == 2 and "CuPy finds none (cudaErrorNoDevice" in no_gpu.stderr
