"""``cupy.fuse`` on the CuPy stand-in (tests/standin/fusion.py): each rule of CuPy's old fusion, biting.

The fast GPU kernels (minicnn.kernels.gpu_fused) are fused functions; these
tests make sure the stand-in refuses what CuPy's tracer cannot compile and
counts a fused call as the one kernel it is.
"""
import numpy as np
import pytest

from helpers import on_cupy_standin

pytestmark = pytest.mark.skipif(not on_cupy_standin(),
                                reason="the CuPy stand-in is not installed (real CuPy runs the GPU tests)")


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
