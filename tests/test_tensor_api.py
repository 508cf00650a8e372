"""The Tensor a PyTorch user reaches for: reductions, elementwise math, comparisons, conversions, factories."""
import math
import warnings

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend
import reference
from helpers import tensor


# -- reductions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (-1, True), ((0, 2), False), ((0, 2), True)])
def test_sum_mean_var_match_plain_loops(device, rng, dim, keepdim):
    x = rng.standard_normal((2, 3, 4))
    t = tensor(x, device)
    np.testing.assert_allclose(t.sum(dim, keepdim).numpy(), reference.reduce(x, dim, keepdim, sum), rtol=1e-13)
    np.testing.assert_allclose(t.mean(dim=dim, keepdim=keepdim).numpy(),
                               reference.reduce(x, dim, keepdim, lambda v: sum(v) / len(v)), rtol=1e-13)
    for correction in (0, 1, 2):
        np.testing.assert_allclose(t.var(dim, keepdim=keepdim, correction=correction).numpy(),
                                   reference.reduce(x, dim, keepdim, lambda v: reference.variance(v, correction)),
                                   rtol=1e-12)


def test_var_is_unbiased_by_default_and_takes_pytorchs_older_spellings(rng):
    x = rng.standard_normal((4, 5))
    t = tensor(x)
    unbiased = reference.reduce(x, 0, False, lambda v: reference.variance(v, 1))
    biased = reference.reduce(x, 0, False, lambda v: reference.variance(v, 0))
    np.testing.assert_allclose(t.var(0).numpy(), unbiased, rtol=1e-12)
    np.testing.assert_allclose(t.var(0, False).numpy(), biased, rtol=1e-12)      # var(dim, unbiased)
    np.testing.assert_allclose(t.var(0, unbiased=False).numpy(), biased, rtol=1e-12)
    assert t.var(False).item() == pytest.approx(reference.variance(list(x.flat), 0), rel=1e-12)  # var(unbiased)
    with pytest.raises(TypeError, match="var: got both unbiased=False and correction=1"):
        t.var(0, unbiased=False, correction=1)
    with pytest.warns(RuntimeWarning, match="var: 1 values with correction 1 leave no degrees of freedom"):
        assert math.isnan(tensor(np.array([2.0])).var().item())


@pytest.mark.parametrize("name,pick,pick_index", [("max", max, reference.first_argmax),
                                                  ("min", min, reference.first_argmin)])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_max_min_with_dim_return_values_and_indices(device, name, pick, pick_index, dim, keepdim):
    x = np.array([[3.0, 1.0, 3.0, -2.0], [0.5, 4.0, 4.0, -2.0], [3.0, 0.0, 1.0, 7.0]])  # ties in rows and columns
    result = getattr(tensor(x, device), name)(dim, keepdim=keepdim)
    assert type(result).__name__ == name and result._fields == ("values", "indices")
    values, indices = result
    np.testing.assert_array_equal(values.numpy(), reference.reduce(x, dim, keepdim, pick))
    np.testing.assert_array_equal(indices.numpy(), reference.reduce(x, dim, keepdim, pick_index))
    assert indices.dtype == np.int64 and not indices.requires_grad


def test_max_with_dim_sends_the_gradient_to_the_first_tied_element(device):
    x = tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), device, requires_grad=True)
    x.max(1).values.backward(tensor(np.array([10.0, 20.0]), device))
    np.testing.assert_array_equal(backend.as_numpy(x.grad), [[0, 10, 0], [20, 0, 0]])


@pytest.mark.parametrize("name", ["max", "min"])
def test_full_max_and_min_share_the_gradient_among_ties(device, name):
    x = np.array([[1.0, 3.0, 3.0], [3.0, -1.0, -1.0]])
    t = tensor(x, device, requires_grad=True)
    y = getattr(t, name)()
    assert y.shape == () and y.item() == (3.0 if name == "max" else -1.0)
    y.backward(tensor(np.array(6.0), device))
    top = x if name == "max" else -x  # min(x) is -max(-x): the same ties
    np.testing.assert_array_equal(backend.as_numpy(t.grad), reference.max_backward_full(top, 6.0))


def test_argmax_argmin(device, rng):
    x = rng.standard_normal((3, 4))
    x[1, 2] = x[2, 0] = 10.0  # a tie: the first one wins
    t = tensor(x, device)
    assert t.argmax().item() == 6 and t.argmax().shape == () and t.argmax().dtype == np.int64
    assert t.argmax(keepdim=True).shape == (1, 1)
    np.testing.assert_array_equal(t.argmax(1).numpy(), reference.reduce(x, 1, False, reference.first_argmax))
    np.testing.assert_array_equal(t.argmin(dim=0, keepdim=True).numpy(),
                                  reference.reduce(x, 0, True, reference.first_argmin))


def test_reductions_of_bool_tensors_count_and_all_any_work():
    x = minicnn.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert (x > 0).sum().item() == 3 and (x > 0).sum(0).numpy().tolist() == [2, 1]
    assert not (x > 0).all() and (x > 0).any() and (x > 0).all(dim=0).numpy().tolist() == [True, False]


@pytest.mark.parametrize("call,error,match", [
    (lambda t: t.sum(3), ValueError, r"sum: dim must be an int in \[-2, 2\) for a 2-D tensor, got 3"),
    (lambda t: t.mean((0, 0)), ValueError, r"mean: dim lists axis 0 more than once"),
    (lambda t: t.max(dim=(0, 1)), ValueError, r"max: dim must be an int in \[-2, 2\)"),
    (lambda t: t.max(keepdim=True), TypeError, r"max: keepdim needs a dim"),
    (lambda t: t.sum(dim=0, axis=1), TypeError, r"sum: got both dim=0 and axis=1, which name the same argument"),
    (lambda t: t.sum(0, True, keepdims=True), TypeError, r"sum: got both keepdim=True and keepdims=True"),
    (lambda t: minicnn.tensor([1, 2]).mean(), TypeError,
     r"mean: x must hold floating-point values, got dtype int64"),
    (lambda t: t[:0].max(), ValueError, r"max: x is empty \(shape \(0, 3\)\)"),
])
def test_bad_reduction_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(tensor(np.zeros((2, 3))))


def test_numpy_spellings_axis_and_keepdims_still_work(rng):
    x = rng.standard_normal((2, 3))
    t = tensor(x)
    np.testing.assert_allclose(t.sum(axis=1, keepdims=True).numpy(), x.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(F.softmax(t, axis=0).numpy(), F.softmax(t, dim=0).numpy())
    np.testing.assert_array_equal(F.concat([t, t], axis=1).numpy(), F.concat([t, t], dim=1).numpy())
    assert F.concat([t, t]).shape == (4, 3)  # dim 0 by default, as torch.cat
    with pytest.raises(TypeError, match="log_softmax: got both dim=0 and axis=0"):
        F.log_softmax(t, dim=0, axis=0)
    with pytest.raises(TypeError, match=r"softmax: give the axis to normalize over, dim=\.\.\."):
        F.softmax(t)


# -- elementwise math --------------------------------------------------------------------------------------
def test_abs_sqrt_clamp_pow_match_plain_loops(device, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    p = np.abs(a) + 0.5
    ta, tb, tp = tensor(a, device), tensor(b, device), tensor(p, device)
    np.testing.assert_array_equal(ta.abs().numpy(), reference.elementwise(lambda v: v if v >= 0 else -v, a))
    np.testing.assert_array_equal(abs(ta).numpy(), ta.abs().numpy())
    np.testing.assert_allclose(tp.sqrt().numpy(), reference.elementwise(math.sqrt, p), rtol=1e-15)
    np.testing.assert_array_equal(ta.clamp(-0.5, 0.5).numpy(),
                                  reference.elementwise(lambda v: min(max(v, -0.5), 0.5), a))
    np.testing.assert_array_equal(ta.clip(min=0.1).numpy(), reference.elementwise(lambda v: max(v, 0.1), a))
    np.testing.assert_array_equal(ta.clamp(max=0.1).numpy(), reference.elementwise(lambda v: min(v, 0.1), a))
    np.testing.assert_allclose((tp ** tb).numpy(), reference.elementwise(math.pow, p, b), rtol=1e-14)
    np.testing.assert_allclose(tp.pow(tb).numpy(), reference.elementwise(math.pow, p, b), rtol=1e-14)
    np.testing.assert_allclose((2 ** tb).numpy(), reference.elementwise(lambda v: 2.0 ** v, b), rtol=1e-14)


def test_clamp_gradient_is_one_inside_and_at_the_bounds_zero_outside(device):
    x = tensor(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), device, requires_grad=True)
    x.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(backend.as_numpy(x.grad), [0, 1, 1, 1, 0])
    y = tensor(np.array([-1.0, 0.0, 3.0]), device, requires_grad=True)
    y.clamp(min=0.0).sum().backward()
    np.testing.assert_array_equal(backend.as_numpy(y.grad), [0, 1, 1])
    assert tensor(np.array([0.2, 5.0]), device).clamp(1.0, 0.5).numpy().tolist() == [0.5, 0.5]  # min > max: max


def test_pow_gradients_follow_pytorch_at_zero(device):
    a = tensor(np.array([0.0, 0.0, 2.0]), device, requires_grad=True)
    b = tensor(np.array([0.0, 2.0, -1.0]), device, requires_grad=True)
    (a ** b).sum().backward()
    np.testing.assert_allclose(backend.as_numpy(a.grad), [0.0, 0.0, -0.25], rtol=1e-15)
    np.testing.assert_allclose(backend.as_numpy(b.grad), [0.0, 0.0, 0.5 * math.log(2.0)], rtol=1e-15)


def test_abs_gradient_at_zero_is_zero():
    x = tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("call,error,match", [
    (lambda t: t.clamp(), ValueError, "clamp: give min, max or both; got neither"),
    (lambda t: t.clamp(min=t), TypeError, "clamp: min must be a number or None, got Tensor"),
    (lambda t: minicnn.tensor([4, 9]).sqrt(), TypeError,
     "sqrt: a must hold floating-point values, got dtype int64"),
])
def test_bad_elementwise_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(tensor(np.ones(3)))


def test_a_python_float_with_an_integer_tensor_stays_a_float():
    x = minicnn.tensor([1, 4, 9])
    np.testing.assert_allclose((x ** 0.5).numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose((x * 0.5).numpy(), [0.5, 2.0, 4.5])
    assert (minicnn.tensor([1.0], dtype="float32") * 2.5).dtype == np.float32  # floats keep their width


# -- comparisons -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons_are_elementwise_bool_tensors_without_a_graph(device, rng, symbol):
    a = rng.integers(0, 3, (3, 4)).astype(np.float64)
    b = rng.integers(0, 3, (3, 4)).astype(np.float64)
    compare = {"==": lambda u, v: u == v, "!=": lambda u, v: u != v, "<": lambda u, v: u < v,
               "<=": lambda u, v: u <= v, ">": lambda u, v: u > v, ">=": lambda u, v: u >= v}[symbol]
    ta = tensor(a, device, requires_grad=True)
    expected = reference.elementwise(compare, a, b).astype(bool)
    for other in (tensor(b, device), b, b.tolist()):
        result = compare(ta, other)
        assert isinstance(result, Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.creator is None
        np.testing.assert_array_equal(result.numpy(), expected)
    np.testing.assert_array_equal(compare(ta, 1.0).numpy(), reference.elementwise(lambda u: compare(u, 1.0), a))
    np.testing.assert_array_equal(compare(1.0, ta).numpy(), reference.elementwise(lambda u: compare(1.0, u), a))
    np.testing.assert_array_equal(compare(b, ta).numpy(), reference.elementwise(compare, b, a).astype(bool))


def test_comparing_with_a_number_does_not_round_it_to_the_tensors_dtype():
    assert (minicnn.tensor([2, 3]) == 2.5).numpy().tolist() == [False, False]
    assert (minicnn.tensor([2, 3]) < 2.5).numpy().tolist() == [True, False]


def test_tensors_stay_hashable_by_identity():
    a, b = tensor(np.ones(2)), tensor(np.ones(2))
    assert len({a, b, a}) == 2 and {a: 1, b: 2}[b] == 2
    assert (a == None) is False and (a != "text") is True  # noqa: E711 (not comparable: identity)


# -- conversions -------------------------------------------------------------------------------------------
def test_float_int_bool_need_one_element(device):
    assert float(tensor(np.array([2.5]), device)) == 2.5 and int(tensor(np.array(-2.7), device)) == -2
    assert bool(tensor(np.array([[1.0]]), device)) and not bool(tensor(np.array(0.0), device))
    two = tensor(np.ones(2), device)
    with pytest.raises(ValueError, match=r"float\(\) needs a one-element tensor, got shape \(2,\)"):
        float(two)
    with pytest.raises(ValueError, match=r"int\(\) needs a one-element tensor, got shape \(2,\)"):
        int(two)
    with pytest.raises(ValueError, match=r"bool\(\) needs a one-element tensor, got shape \(2,\): the truth value"):
        bool(two)


def test_numpy_asarray_gives_the_values_on_the_cpu(device, rng):
    x = rng.standard_normal((2, 3))
    t = tensor(x, device)
    values = np.asarray(t)
    assert type(values) is np.ndarray and values.dtype == np.float64
    np.testing.assert_array_equal(values, x)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    copy = np.array(t, copy=True)
    copy[0, 0] = 99.0
    assert t.numpy()[0, 0] == x[0, 0]
    assert t.tolist() == x.tolist() and tensor(np.array(2.5), device).tolist() == 2.5


def test_numpy_asarray_shares_cpu_memory_unless_asked_to_copy():
    t = tensor(np.zeros(3))
    assert np.asarray(t) is t.array and np.asarray(t, copy=False) is t.array
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float32, copy=False)


# -- making tensors ----------------------------------------------------------------------------------------
def test_minicnn_tensor_copies_and_follows_torch_tensors_dtype_rules(device):
    array = np.array([1.0, 2.0])
    t = minicnn.tensor(array, device=device)
    array[0] = 99.0
    assert t.numpy().tolist() == [1.0, 2.0] and t.dtype == np.float64 and t.device.startswith(device)
    assert minicnn.tensor([1.5, 2]).dtype == np.float32 and minicnn.tensor([1, 2]).dtype == np.int64
    assert minicnn.tensor(True).dtype == np.bool_ and minicnn.tensor(3.0).shape == ()
    assert minicnn.tensor([1, 2], dtype="float64").dtype == np.float64
    leaf = minicnn.tensor([[1.0, 2.0]], dtype=np.float64, device=device, requires_grad=True)
    (leaf * leaf).sum().backward()
    np.testing.assert_array_equal(backend.as_numpy(leaf.grad), [[2.0, 4.0]])
    copy = minicnn.tensor(leaf)
    assert copy.array is not leaf.array and not copy.requires_grad and copy.numpy().tolist() == [[1.0, 2.0]]


def test_factories_take_dtype_device_and_requires_grad(device):
    assert minicnn.zeros(2, 3).dtype == np.float32 and minicnn.zeros((2, 3)).shape == (2, 3)
    z = minicnn.zeros([2, 3], dtype=np.float64, device=device, requires_grad=True)
    assert z.requires_grad and z.device.startswith(device) and not z.numpy().any()
    o = minicnn.ones(4, dtype="int64", device=device)
    assert o.numpy().tolist() == [1, 1, 1, 1] and o.dtype == np.int64
    assert minicnn.zeros_like(o).dtype == np.int64 and minicnn.ones_like(z).numpy().sum() == 6
    assert minicnn.ones_like(o, dtype=np.float32).dtype == np.float32
    assert minicnn.arange(4, device=device).numpy().tolist() == [0, 1, 2, 3]
    assert minicnn.arange(4).dtype == np.int64 and minicnn.arange(1, 2, 0.25).dtype == np.float32
    assert minicnn.arange(1, 2, 0.25).numpy().tolist() == [1.0, 1.25, 1.5, 1.75]
    assert minicnn.arange(5, 0, -2).numpy().tolist() == [5, 3, 1]


def test_randn_draws_from_minicnn_random(device):
    minicnn.manual_seed(4)
    first = minicnn.randn(200, 50, device=device)
    minicnn.manual_seed(4)
    again = minicnn.randn((200, 50), device=device)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert first.dtype == np.float32 and abs(first.numpy().mean()) < 0.03 and abs(first.numpy().std() - 1) < 0.03
    assert minicnn.randn(3, dtype="float64", requires_grad=True).requires_grad


@pytest.mark.parametrize("call,error,match", [
    (lambda: minicnn.zeros(2, -1), ValueError, r"zeros: size must be non-negative ints, got \(2, -1\)"),
    (lambda: minicnn.ones(2.5), ValueError, r"ones: size must be non-negative ints"),
    (lambda: minicnn.randn(2, dtype="int64"), TypeError, "randn: dtype must be floating-point, got int64"),
    (lambda: minicnn.tensor([1.0], dtype="floaty"), TypeError, r"tensor: dtype must be a numeric NumPy dtype"),
    (lambda: minicnn.arange(0, 1, 0), ValueError, "arange: step must not be zero"),
    (lambda: minicnn.zeros(2, device="tpu"), ValueError, "device must be 'cpu', 'gpu' or 'gpu:N'"),
    (lambda: minicnn.tensor([1, 2], requires_grad=True), TypeError, "requires_grad=True needs a floating-point"),
])
def test_bad_factory_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- to(): PyTorch's positional and keyword forms -------------------------------------------------------
def test_to_takes_a_positional_dtype_a_dtype_name_or_keywords():
    x = tensor(np.ones(2, np.float32), requires_grad=True)
    assert x.to(np.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to("cpu", np.float64).dtype == np.float64 and x.to(device="cpu", dtype="float16").dtype == np.float16
    assert x.to("cpu") is x and x.to(np.float32) is x
    y = x.to(np.float64)
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("args,kwargs,match", [
    (("floaty",), {}, r"to: 'floaty' is neither a device \('cpu', 'gpu', 'gpu:N', 'cuda:N'\) nor a numeric dtype"),
    ((np.float32, np.float64), {}, "to: got more than one dtype: float32, float64"),
    (("cpu",), {"device": "cpu"}, "to: got more than one device: cpu, cpu"),
    (("cpu", "gpu", "float32"), {}, "to: got more than one device"),
    ((object,), {}, "is neither a device"),
])
def test_to_rejects_what_it_cannot_sort(args, kwargs, match):
    with pytest.raises(TypeError, match=match):
        tensor(np.ones(2)).to(*args, **kwargs)


@pytest.mark.gpu
def test_to_gpu_with_a_dtype_in_one_call():
    x = tensor(np.ones(2, np.float32), requires_grad=True)
    g = x.to("gpu", np.float64)
    assert g.device == "gpu:0" and g.dtype == np.float64
    (g * 2).sum().backward()
    assert isinstance(x.grad, Tensor) and x.grad.device == "cpu" and x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 2.0]


def test_numpy_warnings_are_not_raised_by_a_well_defined_op():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = tensor(np.array([0.0, 1.0]), requires_grad=True)
        b = tensor(np.array([0.0, 2.0]), requires_grad=True)
        (a ** b).sum().backward()  # 0 ** 0 and its gradients: defined, no "divide by zero"


def test_randint_takes_torchs_two_forms_and_repeats_with_manual_seed(device):
    minicnn.manual_seed(5)
    labels = minicnn.randint(10, (1000,), device=device)
    minicnn.manual_seed(5)
    again = minicnn.randint(0, 10, (1000,), device=device)
    np.testing.assert_array_equal(labels.numpy(), again.numpy())
    values = labels.numpy()
    assert labels.dtype == np.int64 and values.min() == 0 and values.max() == 9
    assert set(np.unique(values)) == set(range(10))
    assert minicnn.randint(-3, -1, (2, 3), dtype="int32").dtype == np.int32
    for call, match in [(lambda: minicnn.randint(5, 5, (2,)), "randint: high must be greater than low"),
                        (lambda: minicnn.randint(5, 2), r"randint: size must be a tuple such as \(16,\)"),
                        (lambda: minicnn.randint(5), r"randint: takes \(high, size\) or \(low, high, size\)")]:
        with pytest.raises((TypeError, ValueError), match=match):
            call()
