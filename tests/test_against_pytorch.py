"""Agreement with PyTorch, where PyTorch happens to be installed (it is never a dependency).

minicnn follows PyTorch's names, defaults and output-size rules; these tests
hold it to PyTorch's numbers in float64, forward and backward. Without torch
they are skipped.
"""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, nn, optim

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _compare(ours, theirs, *arrays, rng):
    mine = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, y_ref = ours(*mine), theirs(*ref)
    g = rng.standard_normal(tuple(y_ref.shape))
    y.backward(g)
    y_ref.backward(torch.tensor(g))
    np.testing.assert_allclose(y.array, y_ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.grad, r.grad.numpy(), rtol=1e-10, atol=1e-12)


POOLS = [(3, 2, 0, True, 8), (3, 2, 1, False, 7), (3, 1, 1, False, 5), (3, 3, 1, True, 7), (2, 2, 1, True, 5),
         (3, 2, 1, True, 10), (5, 3, 0, False, 16), (5, 3, 0, True, 16)]


@pytest.mark.parametrize("k,s,p,ceil,size", POOLS)
def test_max_pool2d(rng, k, s, p, ceil, size):
    _compare(lambda x: F.max_pool2d(x, k, s, p, ceil), lambda x: TF.max_pool2d(x, k, s, p, ceil_mode=ceil),
             rng.standard_normal((2, 3, size, size)), rng=rng)


@pytest.mark.parametrize("k,s,p,ceil,size", POOLS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(rng, k, s, p, ceil, size, count_include_pad):
    _compare(lambda x: F.avg_pool2d(x, k, s, p, ceil, count_include_pad),
             lambda x: TF.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=count_include_pad),
             rng.standard_normal((2, 3, size, size)), rng=rng)


@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 1.0), (5, 0.5, 0.75, 1.0), (4, 0.8, 0.6, 2.0),
                                               (2, 1.0, 0.75, 1.0), (6, 1.0, 0.75, 1.0)])
def test_local_response_norm(rng, size, alpha, beta, k):
    _compare(lambda x: F.local_response_norm(x, size, alpha, beta, k),
             lambda x: TF.local_response_norm(x, size, alpha, beta, k), rng.standard_normal((2, 7, 3, 3)), rng=rng)


@pytest.mark.parametrize("out", [1, 3, (7, 5), 9])
def test_adaptive_avg_pool2d(rng, out):
    _compare(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out),
             rng.standard_normal((2, 3, 7, 5)), rng=rng)


@pytest.mark.parametrize("stride,padding,kernel", [(2, 1, 3), (1, 0, 1), (1, 2, 5), ((2, 1), (1, 0), (3, 2))])
def test_conv2d(rng, stride, padding, kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    _compare(lambda x, w, b: F.conv2d(x, w, b, stride, padding), lambda x, w, b: TF.conv2d(x, w, b, stride, padding),
             rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, kh, kw)), rng.standard_normal(4), rng=rng)


def test_batch_norm_training_and_running_stats(rng):
    mean, var = np.zeros(3), np.ones(3)
    mean_ref, var_ref = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    _compare(lambda x, w, b: F.batch_norm(x, mean, var, w, b, True, 0.1, 1e-3),
             lambda x, w, b: TF.batch_norm(x, mean_ref, var_ref, w, b, True, 0.1, 1e-3),
             rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3), rng.standard_normal(3), rng=rng)
    np.testing.assert_allclose(mean, mean_ref.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, var_ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(rng, smoothing):
    target = rng.integers(0, 5, 6)
    _compare(lambda z: F.cross_entropy(z, target, smoothing),
             lambda z: TF.cross_entropy(z, torch.tensor(target), label_smoothing=smoothing),
             rng.standard_normal((6, 5)), rng=rng)


@pytest.mark.parametrize("ours,theirs", [
    (lambda p: optim.SGD(p, 0.1, 0.9, 5e-4, nesterov=True),
     lambda p: torch.optim.SGD(p, 0.1, 0.9, weight_decay=5e-4, nesterov=True)),
    (lambda p: optim.Adam(p, 0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, 0.01, weight_decay=0.1)),
    (lambda p: optim.AdamW(p, 0.01), lambda p: torch.optim.AdamW(p, 0.01)),
])
def test_optimizers(rng, ours, theirs):
    start = rng.standard_normal((4, 3))
    p, p_ref = nn.Parameter(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    opt, opt_ref = ours([p]), theirs([p_ref])
    for _ in range(5):
        g = rng.standard_normal((4, 3))
        p.grad, p_ref.grad = Tensor(g.copy()), torch.tensor(g)
        opt.step()
        opt_ref.step()
    np.testing.assert_allclose(p.array, p_ref.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ours,theirs", [
    (lambda o: optim.OneCycleLR(o, 0.1, 50), lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, 50)),
    (lambda o: optim.CosineAnnealingLR(o, 20), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20)),
    (lambda o: optim.StepLR(o, 8, 0.96), lambda o: torch.optim.lr_scheduler.StepLR(o, 8, 0.96)),
])
def test_learning_rate_schedules(ours, theirs):
    opt = optim.SGD([nn.Parameter(np.zeros(1))], 0.05, momentum=0.9)
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt_ref = torch.optim.SGD([param], 0.05, momentum=0.9)
    sched, sched_ref = ours(opt), theirs(opt_ref)
    for _ in range(49):  # every step a training loop takes
        assert opt.lr == pytest.approx(opt_ref.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        param.grad = torch.zeros(1, dtype=torch.float64)
        opt_ref.step()
        sched.step()
        sched_ref.step()


# -- the Tensor API -------------------------------------------------------------------------------------
TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 0.0, -2.0], [3.0, -1.0, 0.5, 3.0]])  # ties along both axes


@pytest.mark.parametrize("key", [1, (slice(None), slice(1, 3)), (Ellipsis, 1), (None, -1), (slice(1, None, 2),),
                                 [0, 2, 0], ([0, 2, 0], slice(None), [1, 3, 1]), (slice(None), 0, [2, 2, 1])])
def test_indexing(rng, key):
    _compare(lambda x: x[key], lambda x: x[key], rng.standard_normal((3, 2, 4)), rng=rng)


def test_boolean_mask(rng):
    x = rng.standard_normal((3, 4))
    _compare(lambda t: t[x > 0], lambda t: t[torch.tensor(x > 0)], x, rng=rng)


@pytest.mark.parametrize("ours,theirs", [
    (lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    (lambda x: x.transpose(0, -1), lambda x: x.transpose(0, -1)),
    (lambda x: x[0].T, lambda x: x[0].T),
    (lambda x: x.view(-1, 4).unsqueeze(1), lambda x: x.view(-1, 4).unsqueeze(1)),
    (lambda x: x[:1].squeeze(), lambda x: x[:1].squeeze()),
    (lambda x: x.flatten(1), lambda x: x.flatten(1)),
])
def test_axes(rng, ours, theirs):
    _compare(ours, theirs, rng.standard_normal((2, 3, 4)), rng=rng)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_max_min_with_dim_and_ties(rng, name, dim, keepdim):
    _compare(lambda x: getattr(x, name)(dim, keepdim).values, lambda x: getattr(x, name)(dim, keepdim).values,
             TIES, rng=rng)
    ours, theirs = getattr(Tensor(TIES), name)(dim, keepdim), getattr(torch.tensor(TIES), name)(dim, keepdim)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


@pytest.mark.parametrize("name", ["max", "min"])
def test_full_max_min_with_ties(rng, name):
    _compare(lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), TIES, rng=rng)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, True), (1, False)])
def test_argmax_argmin(name, dim, keepdim):
    ours = getattr(Tensor(TIES), name)(dim, keepdim)
    theirs = getattr(torch.tensor(TIES), name)(dim, keepdim)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("ours,theirs", [
    (lambda x: x.sum(dim=(0, 2)), lambda x: x.sum(dim=(0, 2))),
    (lambda x: x.mean(1, keepdim=True), lambda x: x.mean(1, keepdim=True)),
    (lambda x: x.var(), lambda x: x.var()),
    (lambda x: x.var(-1, keepdim=True), lambda x: x.var(-1, keepdim=True)),
    (lambda x: x.var((0, 1), correction=0), lambda x: x.var((0, 1), correction=0)),
    (lambda x: x.var(1, False), lambda x: x.var(1, False)),
    (lambda x: x.var(0, correction=2), lambda x: x.var(0, correction=2)),
])
def test_reductions(rng, ours, theirs):
    _compare(ours, theirs, rng.standard_normal((3, 4, 5)), rng=rng)


@pytest.mark.parametrize("ours,theirs", [
    (lambda x: x.abs(), lambda x: x.abs()),
    (lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5)),
    (lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0)),
    (lambda x: x.clip(max=1.0), lambda x: x.clip(max=1.0)),
    (lambda x: 2 ** x, lambda x: 2 ** x),
])
def test_elementwise(rng, ours, theirs):
    x = np.concatenate([rng.standard_normal(6), [0.0, 0.5, -0.5, 1.0]])  # zero and the clamp bounds themselves
    _compare(ours, theirs, x, rng=rng)


def test_sqrt(rng):
    _compare(lambda x: x.sqrt(), lambda x: x.sqrt(), np.abs(rng.standard_normal(6)) + 0.01, rng=rng)


def test_pow_with_a_tensor_exponent_including_zeros(rng):
    a = np.array([0.0, 0.0, 0.0, 2.0, 0.5, 3.0])
    b = np.array([0.0, 2.0, 1.0, -1.0, 0.5, 0.0])
    _compare(lambda x, y: x ** y, lambda x, y: x ** y, a, b, rng=rng)
    _compare(lambda x, y: x.pow(y), lambda x, y: x.pow(y), np.abs(rng.standard_normal((3, 1))) + 0.1,
             rng.standard_normal(4), rng=rng)


def test_hooks_see_what_pytorchs_hooks_see():
    """Tensor and full backward hooks: the same calls with the same gradients, and the same effect of
    what they return (a module with two tensor inputs on separate paths and a plain number)."""
    def run(engine, tensor, relu, module_base):
        class Mix(module_base):
            def forward(self, a, scale, b):
                return a * scale, relu(b)

        a = tensor(np.array([1.0, 2.0]), requires_grad=True)
        b = tensor(np.array([-1.0, 3.0]), requires_grad=True)
        seen = []
        a.register_hook(lambda grad: seen.append(("a", grad.tolist())) or grad * 3)

        def hook(module, grad_input, grad_output):
            seen.append(([None if g is None else g.tolist() for g in grad_input],
                         [None if g is None else g.tolist() for g in grad_output]))
            return grad_input[0] * -1.0, None, grad_input[2]

        mix = Mix()
        mix.register_full_backward_hook(hook)
        y, z = mix(a * 1.0 + a * 2.0, 5.0, b * 1.0)
        (y * 2.0 + z * 4.0).sum().backward()
        return seen, a.grad.tolist(), b.grad.tolist()

    ours = run(minicnn, Tensor, F.relu, nn.Module)
    theirs = run(torch, lambda a, requires_grad: torch.tensor(a, requires_grad=requires_grad), torch.relu,
                 torch.nn.Module)
    assert ours == theirs
