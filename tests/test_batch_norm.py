import numpy as np
import pytest

import minicnn.functional as F
from minicnn import backend, nn
import reference
from helpers import tensor


def test_batch_norm_training_matches_naive_loops_and_updates_running_stats(device, rng):
    x, w, b = rng.standard_normal((4, 3, 5, 5)) * 3 + 1, rng.standard_normal(3), rng.standard_normal(3)
    mean, var = tensor(np.full(3, 0.5), device).array, tensor(np.full(3, 2.0), device).array
    y = F.batch_norm(tensor(x, device), mean, var, tensor(w, device), tensor(b, device), training=True,
                     momentum=0.1, eps=1e-3)
    expected, batch_mean, batch_var = reference.batch_norm_train(x, w, b, 1e-3)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend.as_numpy(mean), 0.9 * 0.5 + 0.1 * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(backend.as_numpy(var), 0.9 * 2.0 + 0.1 * batch_var, rtol=1e-12)


def test_batch_norm_evaluation_uses_running_stats(device, rng):
    x, w, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    y = F.batch_norm(tensor(x, device), tensor(mean, device), tensor(var, device), tensor(w, device),
                     tensor(b, device), training=False)
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


def test_batch_norm2d_module_switches_between_batch_and_running_stats(rng):
    bn = nn.BatchNorm2d(3, eps=1e-3)
    x = tensor((rng.standard_normal((8, 3, 4, 4)) * 2 + 3).astype(np.float32))
    y = bn(x).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # batch statistics
    assert not np.allclose(bn.running_mean.array, 0)
    bn.eval()
    y_eval = bn(x).numpy()  # running stats after one step are far from the batch's
    assert np.abs(y_eval.mean(axis=(0, 2, 3))).min() > 1


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(x_shape=(4,)), ValueError, r"at least 2-D"),
    (dict(mean_shape=(4,)), ValueError, r"running_mean must have shape \(3,\) to match x's channels, got \(4,\)"),
    (dict(x_shape=(1, 3)), ValueError, r"more than one value per channel"),
    (dict(training=False, no_stats=True), ValueError, r"evaluation \(training=False\) needs running_mean"),
    (dict(weight_shape=(2,)), ValueError, r"weight must have shape \(3,\), got \(2,\)"),
])
def test_batch_norm_rejects_bad_input(kwargs, error, match):
    x = tensor(np.zeros(kwargs.get("x_shape", (2, 3, 2, 2))))
    mean = None if kwargs.get("no_stats") else np.zeros(kwargs.get("mean_shape", (3,)))
    var = None if kwargs.get("no_stats") else np.ones(3)
    with pytest.raises(error, match=match):
        F.batch_norm(x, mean, var, tensor(np.ones(kwargs.get("weight_shape", (3,)))), tensor(np.zeros(3)),
                     training=kwargs.get("training", True))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_fast_batch_norm_kernels_match_the_plain_versions(rng, training, relu):
    """CPU: the numba kernels against the plain versions (the GPU's fused ones: tests/test_gpu_fused.py);
    with relu, the kernels take the ReLU and its mask in their own passes, the plain versions beside them."""
    from minicnn.functional.normalization import (batch_norm_backward, batch_norm_backward_plain, batch_norm_forward,
                                                  batch_norm_forward_plain)
    x = tensor((rng.standard_normal((6, 5, 7, 3)) * 2 + 1).astype(np.float32), requires_grad=True)
    assert batch_norm_forward.fast_form(x.array) and batch_norm_backward.fast_form(x.array)  # not the plain twins
    w, b = (tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True) for _ in range(2))
    mean = tensor(rng.standard_normal(5).astype(np.float32)).array
    var = tensor(rng.uniform(0.5, 2, 5).astype(np.float32)).array
    stats = (None, None) if training else (mean.copy(), var.copy())
    y = F.batch_norm(x, mean, var, w, b, training=training, eps=1e-3, relu=relu)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    x3 = x.array.reshape(6, 5, -1)
    plain_y, mean, _, inv_std = batch_norm_forward_plain(x3, w.array, b.array, *stats, 1e-3)
    gy3 = gy.reshape(6, 5, -1)
    if relu:
        assert 0 < np.count_nonzero(plain_y < 0) < plain_y.size
        gy3 = gy3 * (plain_y > 0)
        plain_y = np.maximum(plain_y, 0)
    plain = batch_norm_backward_plain(gy3, x3, mean, w.array, inv_std, training)
    np.testing.assert_allclose(y.numpy(), backend.as_numpy(plain_y).reshape(y.shape), rtol=1e-5, atol=1e-5)
    for got, want in zip((x.grad, w.grad, b.grad), (plain[0].reshape(x.shape), plain[1], plain[2])):
        np.testing.assert_allclose(backend.as_numpy(got), backend.as_numpy(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_relu_is_relu_of_batch_norm_with_gradients(device, rng, training):
    x, w, b = rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(4), rng.standard_normal(4)
    gy = rng.standard_normal(x.shape)

    def run(relu_inside):
        tensors = [tensor(a, device, requires_grad=True) for a in (x, w, b)]
        mean, var = tensor(np.zeros(4), device).array, tensor(np.ones(4), device).array
        y = F.batch_norm(tensors[0], mean, var, *tensors[1:], training=training, relu=relu_inside)
        y = y if relu_inside else F.relu(y)
        y.backward(tensor(gy, device).array)
        return [y.numpy(), *(backend.as_numpy(t.grad) for t in tensors), backend.as_numpy(mean)]

    inside, after = run(True), run(False)
    assert 0 < np.count_nonzero(inside[0] == 0) < x.size
    for got, want in zip(inside, after):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("stats_device", ["cpu", "gpu:1"])
def test_running_statistics_on_another_device_are_the_usual_device_error(stats_device):
    if stats_device == "gpu:1" and backend.gpu_count() < 2:
        pytest.skip("needs two GPUs (the CuPy stand-in simulates two)")
    x = tensor(np.ones((4, 3, 2, 2)), "gpu")
    mean, var = tensor(np.zeros(3), stats_device).array, tensor(np.ones(3), stats_device).array
    with pytest.raises(ValueError, match=rf"batch_norm: all tensors must be on one device, got x on gpu:0, "
                                         rf"running_mean on {stats_device}, running_var on {stats_device}"):
        F.batch_norm(x, mean, var, training=True)
