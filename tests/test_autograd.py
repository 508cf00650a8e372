"""Tensor semantics and the backward pass."""
import gc
import weakref

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend
from helpers import tensor


def test_data_is_the_array_itself_and_grad_a_tensor_over_a_raw_array():
    array = np.ones((2, 3), np.float32)
    x = Tensor(array, requires_grad=True)
    assert x.array is array
    x.array[0, 0] = 5.0  # writing into .array changes the tensor
    assert array[0, 0] == 5.0
    (x * 2).sum().backward()
    assert type(x.grad) is Tensor and type(x.grad.array) is np.ndarray
    assert x.grad.shape == (2, 3) and x.grad.dtype == np.float32 and not x.grad.requires_grad
    assert x.grad is x.grad  # one Tensor, as in PyTorch
    assert x.shape == (2, 3) and x.dtype == np.float32 and x.device == "cpu"


def test_python_numbers_become_float32():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="requires_grad=True needs a floating-point array, got dtype int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_worked_example_by_hand():
    """y = (a * b + a) summed: dy/da = b + 1, dy/db = a."""
    a = Tensor(np.array([2.0, -1.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (a * b + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 5.0])
    np.testing.assert_array_equal(b.grad, [2.0, -1.0])


def test_gradients_accumulate_where_a_tensor_feeds_several_ops():
    """Like an inception block's input feeding four branches."""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    branches = [x * 1.0, x * 2.0, x * 3.0, x * 4.0]
    F.concat(branches, axis=0).sum().backward()
    np.testing.assert_array_equal(x.grad, [10.0, 10.0])


def test_gradients_accumulate_across_backward_calls_until_cleared():
    x = Tensor(np.array([1.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0])


def test_backward_needs_grad_for_non_scalar_outputs():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element tensor .* shape \(3,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient must have this tensor's shape \(3,\), got \(2,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="requires grad"):
        Tensor(np.ones(1)).backward()


def test_no_grad_records_nothing():
    x = Tensor(np.ones(2), requires_grad=True)
    with minicnn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    assert (x * 2).requires_grad


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor(np.ones(2), requires_grad=True)
    d = x.detach()
    assert d.array is x.array and not d.requires_grad
    assert (x * 2).detach().creator is None


def test_backward_is_iterative_on_a_very_deep_graph():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(20000):  # far beyond Python's recursion limit
        y = y + 1e-4
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_backward_frees_the_graph():
    x = Tensor(np.ones((100, 100)), requires_grad=True)
    hidden = x * 2
    watcher = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    gc.collect()
    assert watcher() is not None  # the graph keeps the intermediate alive...
    loss.backward()
    gc.collect()
    assert watcher() is None  # ...until backward has used it
    with pytest.raises(RuntimeError, match="already used"):
        loss.backward()


def test_diamond_graph_waits_for_all_consumers():
    """b feeds c twice by different paths; b's gradient must be complete before it flows on."""
    a = Tensor(np.array([2.0]), requires_grad=True)
    b = a * a          # db/da = 2a = 4
    c = b * 3 + b * b  # dc/db = 3 + 2b = 11
    c.sum().backward()
    np.testing.assert_allclose(a.grad, [44.0])


def test_to_copies_across_dtypes_and_back_propagates():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert x.to("cpu") is x
    y = x.to(dtype=np.float64)
    assert y.dtype == np.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_asking_for_a_gpu_without_cupy_says_what_to_install(without_cupy):
    with pytest.raises(backend.DeviceUnavailableError, match=r"needs CuPy, which could not be imported.*"
                                                             r"pip install -e '\.\[cuda12\]'"):
        Tensor(np.ones(2)).to("gpu")


def test_asking_for_a_gpu_where_cupy_finds_none_says_why(without_gpu):
    with pytest.raises(backend.DeviceUnavailableError, match=r"CuPy finds none \(cudaErrorNoDevice: .*nvidia-smi"):
        Tensor(np.ones(2)).to("gpu")


@pytest.mark.parametrize("spec", ["gpu:x", "tpu", "cuda:x", "cuda0", ""])
def test_bad_device_names_are_rejected(spec):
    with pytest.raises(ValueError, match="device must be 'cpu', 'gpu' or 'gpu:N'"):
        backend.parse_device(spec)


@pytest.mark.gpu
def test_tensor_moves_to_the_gpu_and_back(rng):
    x = tensor(rng.standard_normal((2, 3)), requires_grad=True)
    g = x.to("gpu")
    assert g.device == "gpu:0" and backend.is_gpu_array(g.array)
    (g * 3).sum().backward()
    assert isinstance(x.grad, Tensor) and x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 3.0))
    np.testing.assert_array_equal(g.numpy(), x.numpy())


@pytest.mark.gpu
def test_mixing_cpu_and_gpu_tensors_names_both_devices():
    a, b = tensor(np.ones(2)), tensor(np.ones(2), "gpu")
    with pytest.raises(ValueError, match=r"input 0 on cpu, input 1 on gpu:0"):
        a + b
    with pytest.raises(ValueError, match=r"on cpu.*on gpu:0"):
        F.conv2d(tensor(np.ones((1, 1, 3, 3))), tensor(np.ones((1, 1, 3, 3)), "gpu"))


def test_a_leaf_owns_its_gradient_array():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()  # Add hands the same array to both inputs; Sum's is a broadcast view
    a.grad *= 2  # in place, as gradient clipping does
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 1.0])
    s = Tensor(np.array(2.0), requires_grad=True)
    (s * 3).backward()
    assert isinstance(s.grad, Tensor) and s.grad.shape == () and s.grad == 3.0


def test_an_op_whose_backward_reads_no_input_does_not_keep_it_alive():
    """A ReLU keeps only an outline of the tensor before it (its backward reads its output), so that
    tensor's array is freed once the caller drops it; an op that reads its inputs (a product) keeps them."""
    x = minicnn.Tensor(np.arange(-3.0, 3.0).reshape(2, 3), requires_grad=True)
    before_relu, before_product = x * 2, x * 3
    relu_input, product_input = weakref.ref(before_relu.array), weakref.ref(before_product.array)
    y = F.relu(before_relu) + before_product * before_product
    del before_relu, before_product
    gc.collect()
    assert relu_input() is None and product_input() is not None
    y.sum().backward()
    values = np.arange(-3.0, 3.0).reshape(2, 3)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (values > 0) + 2 * 9 * values)
