import numpy as np
import pytest

import minicnn.functional as F
from minicnn.functional import lrn
from minicnn import backend
from minicnn.functional.lrn import lrn_backward_plain, lrn_forward_plain
import reference
from helpers import tensor


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
@pytest.mark.parametrize("alpha,beta,k", [(1e-4, 0.75, 1.0), (0.9, 0.75, 1.0), (0.5, 0.6, 2.0)])
def test_lrn_matches_naive_loops(device, rng, size, alpha, beta, k):
    x = rng.standard_normal((2, 7, 3, 4)) * 2
    y = F.local_response_norm(tensor(x, device), size, alpha, beta, k)
    np.testing.assert_allclose(y.numpy(), reference.local_response_norm(x, size, alpha, beta, k), rtol=1e-12)


@pytest.mark.parametrize("size", [2, 5])
def test_fast_lrn_kernels_match_the_plain_version(rng, size):
    """CPU only: the numba kernels against the plain version (the GPU has no fast kernels yet)."""
    x = tensor(rng.standard_normal((3, 11, 5, 6)).astype(np.float32), requires_grad=True)
    assert lrn.lrn_forward.fast_form(x.array) and lrn.lrn_backward.fast_form(x.array)  # not the plain twins
    y = F.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.0)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    plain_y, scale, scale_pow = lrn_forward_plain(x.array, size, 0.5, 0.75, 1.0)
    plain_gx = lrn_backward_plain(gy, x.array, scale, scale_pow, size, 0.5, 0.75)
    np.testing.assert_allclose(y.numpy(), backend.as_numpy(plain_y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.as_numpy(x.grad), backend.as_numpy(plain_gx), rtol=1e-5, atol=1e-5)


def test_lrn_with_paper_values_barely_changes_small_inputs(rng):
    """GoogLeNet's LRN (alpha 1e-4, k 1) on unit-scale inputs: b ~= a * (1 - 0.75e-4 * energy)."""
    x = rng.standard_normal((1, 8, 2, 2)).astype(np.float32)
    y = F.local_response_norm(tensor(x), 5).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, rtol=2e-3)
    assert not np.allclose(y, x, rtol=1e-7, atol=0)


@pytest.mark.parametrize("args,error,match", [
    (dict(size=0), ValueError, "size must be a positive int, got 0"),
    (dict(size=2.5), ValueError, "size must be a positive int"),
    (dict(size=5, k=0.0), ValueError, "needs k > 0"),
])
def test_lrn_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        F.local_response_norm(tensor(np.zeros((1, 3, 2, 2))), **args)


def test_lrn_rejects_wrong_ndim():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got shape \(3, 2\)"):
        F.local_response_norm(tensor(np.zeros((3, 2))), 5)
