"""The fused GPU kernels (minicnn.kernels.gpu_fused) against their plain twins, on the GPU code path.

Each op runs twice on the same GPU inputs: with the fused kernels, and with
MINICNN_PLAIN_KERNELS=1 (the plain array code). Float64 results and gradients
must agree; float32 must stay float32. On the CuPy stand-in the tests also
count the kernels each fused op launches.
"""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import kernels, optim
from helpers import on_cupy_standin, tensor

pytestmark = pytest.mark.gpu


def channels_last(array):
    """NumPy ``array`` (N, C, H, W) on the GPU, stored channels-last as minicnn's convolutions return it."""
    return tensor(np.ascontiguousarray(array.transpose(0, 2, 3, 1)), "gpu").array.transpose(0, 3, 1, 2)


def is_channels_last(array):
    return array.transpose(0, 2, 3, 1).flags.c_contiguous


def run_both(monkeypatch, run):
    """(run() with the fused kernels, run() with the plain twins), each a tuple of NumPy arrays."""
    fused = run()
    with monkeypatch.context() as plain_only:
        plain_only.setenv("MINICNN_PLAIN_KERNELS", "1")
        plain = run()
    return fused, plain


def assert_all_close(fused, plain, rtol=1e-12, atol=1e-12):
    assert len(fused) == len(plain)
    for index, (got, want) in enumerate(zip(fused, plain)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"result {index}")


def forward_backward(op, inputs, seed=1):
    """(op's output, then each input's gradient) for a random upstream gradient, as NumPy arrays."""
    tensors = [tensor(a, "gpu", requires_grad=True) if isinstance(a, np.ndarray) else
               minicnn.Tensor(a, requires_grad=True) for a in inputs]
    out = op(*tensors)
    gy = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(tensor(gy, "gpu").array)
    return (out.numpy(), *(t.grad.array.get() for t in tensors))


def kernels_of(step):
    """Device operations that ``step()`` launches (stand-in only)."""
    from tests import standin
    with standin.counting() as counter:
        step()
    return counter.device_ops


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_batch_norm_matches_the_plain_twin_with_gradients_and_running_statistics(monkeypatch, rng, training, layout):
    x = rng.standard_normal((4, 3, 5, 2)) * 3 + 10
    x = channels_last(x) if layout == "channels_last" else x
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    start_mean, start_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def run():
        mean, var = tensor(start_mean, "gpu").array, tensor(start_var, "gpu").array
        results = forward_backward(
            lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=training, momentum=0.2, eps=1e-3),
            [x, weight, bias])
        return (*results, mean.get(), var.get())

    fused, plain = run_both(monkeypatch, run)
    assert_all_close(fused, plain, rtol=1e-10)
    assert not np.allclose(fused[-1], start_var) if training else np.array_equal(fused[-1], start_var)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_its_relu_matches_the_plain_twin_with_gradients(monkeypatch, rng, training):
    x = channels_last(rng.standard_normal((4, 3, 5, 2)))
    weight, bias, mean, var = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3), np.ones(3)
    fused, plain = run_both(monkeypatch, lambda: forward_backward(
        lambda x, w, b: F.batch_norm(x, tensor(mean, "gpu").array, tensor(var, "gpu").array, w, b, training=training,
                                     relu=True), [x, weight, bias]))
    assert_all_close(fused, plain, rtol=1e-10)
    assert 0 < np.count_nonzero(fused[0] == 0) < fused[0].size and np.all(fused[0] >= 0)


def test_batch_norm_keeps_channels_last_and_float32_and_launches_few_kernels(rng):
    x = minicnn.Tensor(channels_last(rng.standard_normal((4, 6, 3, 3)).astype(np.float32)), requires_grad=True)
    bn = minicnn.nn.BatchNorm2d(6).to("gpu")
    y = bn(x)
    assert y.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert is_channels_last(y.array)
    if on_cupy_standin():
        assert kernels_of(lambda: bn(x)) == 3  # the sums of x and x**2, the statistics (+ running), normalize
        y, gy = bn(x), tensor(np.ones(y.shape, np.float32), "gpu").array
        # 2 kernels (the two sums of gradients, dL/dx), and 3 copies of the gradients into the leaves' arrays
        assert kernels_of(lambda: y.backward(gy)) == 2 + 3
        assert kernels_of(lambda: bn(x, relu=True)) == 3  # the ReLU inside the normalization's kernel
        y = bn(x, relu=True)
        assert kernels_of(lambda: y.backward(gy)) == 2 + 3
        optim.SGD(bn.parameters(), lr=0.1).zero_grad()  # the weight's and bias's gradients: into its buffer
        y = bn(x, relu=True)
        assert kernels_of(lambda: y.backward(gy)) == 3 + 1  # one kernel stores both; x's gradient is copied
        assert bn.weight.grad.array is bn.weight._grad_buffer and bn.weight.grad.dtype == np.float32


def test_batch_norm_without_running_statistics_matches_the_plain_twin(monkeypatch, rng):
    x = rng.standard_normal((5, 4))
    fused, plain = run_both(monkeypatch, lambda: forward_backward(
        lambda x: F.batch_norm(x, None, None, training=True), [x]))
    assert_all_close(fused, plain, rtol=1e-10)


def test_relu_backward_matches_the_plain_twin_and_takes_the_layout_of_the_output(monkeypatch, rng):
    x = channels_last(rng.standard_normal((2, 3, 4, 5)))
    fused, plain = run_both(monkeypatch, lambda: forward_backward(F.relu, [x]))
    assert_all_close(fused, plain, rtol=0, atol=0)
    y = F.relu(minicnn.Tensor(x))
    assert is_channels_last(y.array)  # a ufunc's output is C-ordered: the kernel runs in x's memory order
    channel_major_gy = tensor(np.ones(x.shape), "gpu").array
    assert is_channels_last(kernels.gpu_fused.relu_backward(channel_major_gy, y.array))


@pytest.mark.parametrize("size,alpha", [(5, 1e-4), (4, 0.8), (1, 0.5)])
def test_lrn_matches_the_plain_twin_with_gradients(monkeypatch, rng, size, alpha):
    x = channels_last(rng.standard_normal((2, 6, 3, 4)))
    fused, plain = run_both(monkeypatch, lambda: forward_backward(
        lambda x: F.local_response_norm(x, size, alpha, 0.75, 2.0), [x]))
    assert_all_close(fused, plain, rtol=1e-12)


def test_dropout_matches_the_plain_twin_for_the_same_draw(monkeypatch, rng):
    x = rng.standard_normal((6, 50))

    def run():
        minicnn.manual_seed(3)
        return forward_backward(lambda x: F.dropout(x, 0.3), [x])

    fused, plain = run_both(monkeypatch, run)
    assert_all_close(fused, plain, rtol=0, atol=0)
    assert 0 < np.count_nonzero(fused[0] == 0) < x.size


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_the_plain_twin_with_gradients(monkeypatch, rng, reduction, smoothing):
    logits, labels = rng.standard_normal((5, 7)) * 4, rng.integers(0, 7, 5)
    fused, plain = run_both(monkeypatch, lambda: forward_backward(
        lambda z: F.cross_entropy(z, labels, smoothing, reduction), [logits]))
    assert_all_close(fused, plain, rtol=1e-11)


def test_cross_entropy_of_a_gpu_label_out_of_range_is_nan(monkeypatch):
    labels = tensor(np.array([0, 9, 1]), "gpu").array
    fused, plain = run_both(monkeypatch, lambda: (
        F.cross_entropy(tensor(np.zeros((3, 4)), "gpu"), labels, reduction="none").numpy(),))
    np.testing.assert_array_equal(np.isnan(fused[0]), [False, True, False])
    np.testing.assert_array_equal(fused[0], plain[0])


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
], ids=["sgd", "sgd-wd", "momentum", "nesterov", "adam", "adamw"])
def test_optimizer_steps_match_the_plain_twin_in_one_kernel(monkeypatch, rng, make):
    values, grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)], [rng.standard_normal((3, 4)),
                                                                            rng.standard_normal(5)]

    def run():
        params = [tensor(v, "gpu", requires_grad=True) for v in values]
        opt = make(params)
        for step in range(3):
            for p, g in zip(params, grads):
                p.grad = tensor(g * (step + 1), "gpu")
            opt.step()
        return tuple(p.numpy() for p in params)

    fused, plain = run_both(monkeypatch, run)
    assert_all_close(fused, plain, rtol=1e-14, atol=1e-15)
    if on_cupy_standin():
        params = [tensor(v.astype(np.float32), "gpu", requires_grad=True) for v in values]
        opt = make(params)
        for p, g in zip(params, grads):
            p.grad = tensor(g.astype(np.float32), "gpu")
        opt.step()  # the first step makes the state
        assert kernels_of(opt.step) == 1 and params[0].dtype == np.float32


def test_fused_ops_keep_float32(rng):
    x = minicnn.Tensor(channels_last(rng.standard_normal((2, 4, 3, 3)).astype(np.float32)), requires_grad=True)
    outputs = [F.local_response_norm(x, 3), F.dropout(x, 0.5), F.relu(x),
               F.cross_entropy(x.reshape(2, 36), np.array([1, 2]))]
    for out in outputs:
        assert out.dtype == np.float32
        out.sum().backward() if out.ndim else out.backward()
        assert x.grad.dtype == np.float32


def test_no_fused_kernel_fell_back_to_the_experimental_fusion(rng):
    """CuPy's old fusion, when it cannot trace a function, silently retries with its experimental one
    (slower, and not what the stand-in checked): after a training step of every fused op, none may have.
    (On the stand-in, which raises where the old fusion gives up, the step itself is the check.)"""
    for make_optimizer in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), optim.Adam):
        net = minicnn.nn.Sequential(minicnn.nn.Conv2d(3, 4, 3), minicnn.nn.BatchNorm2d(4), minicnn.nn.ReLU(),
                                    minicnn.nn.LocalResponseNorm(3), minicnn.nn.Flatten(), minicnn.nn.Dropout(0.5),
                                    minicnn.nn.Linear(4 * 6 * 6, 5)).to("gpu")
        opt = make_optimizer(net.parameters())
        x = tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), "gpu")
        loss = F.cross_entropy(net(x), np.array([1, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = tensor(rng.standard_normal((2, 3, 4, 4)), "gpu", requires_grad=True)  # float64, without an optimizer
    F.batch_norm(x, None, None, training=True, relu=True).sum().backward()
    fell_back = [name for name, kernel in vars(kernels.gpu_fused).items()
                 if getattr(kernel, "new_fusion", None) is not None]
    assert not fell_back
