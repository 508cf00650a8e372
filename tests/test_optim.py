"""Optimizers and schedules against their update rules, written out by hand."""
import math

import numpy as np
import pytest

from minicnn import Tensor, nn, optim


def _run(optimizer_factory, grads, p0):
    p = nn.Parameter(p0.copy())
    opt = optimizer_factory([p])
    for g in grads:
        p.grad = Tensor(g.copy())
        opt.step()
    return p.array


def test_sgd_nesterov_with_weight_decay(rng):
    p0, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(4)]
    lr, mu, wd = 0.1, 0.9, 5e-4
    p, buf = p0.copy(), None
    for g in grads:
        g = g + wd * p
        buf = g.copy() if buf is None else mu * buf + g
        p = p - lr * (g + mu * buf)
    np.testing.assert_allclose(_run(lambda ps: optim.SGD(ps, lr, mu, wd, nesterov=True), grads, p0), p, rtol=1e-12)


def test_sgd_plain_and_heavy_ball(rng):
    p0, grads = rng.standard_normal(3), [rng.standard_normal(3) for _ in range(3)]
    np.testing.assert_allclose(_run(lambda ps: optim.SGD(ps, 0.5), grads, p0), p0 - 0.5 * sum(grads), rtol=1e-12)
    p, buf = p0.copy(), None
    for g in grads:
        buf = g.copy() if buf is None else 0.9 * buf + g
        p = p - 0.5 * buf
    np.testing.assert_allclose(_run(lambda ps: optim.SGD(ps, 0.5, momentum=0.9), grads, p0), p, rtol=1e-12)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw(rng, decoupled):
    p0, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(6)]
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    p, m, v = p0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    cls = optim.AdamW if decoupled else optim.Adam
    np.testing.assert_allclose(_run(lambda ps: cls(ps, lr, weight_decay=wd), grads, p0), p, rtol=1e-10)


def test_parameters_without_gradients_are_left_alone():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], 0.1)
    a.grad = Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(b.array, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None


def test_optimizer_state_round_trip(rng):
    p = nn.Parameter(rng.standard_normal(3))
    opt = optim.SGD([p], 0.1, momentum=0.9)
    p.grad = Tensor(np.ones(3))
    opt.step()
    q = nn.Parameter(p.array.copy())
    other = optim.SGD([q], 0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    for o, param in ((opt, p), (other, q)):
        param.grad = Tensor(np.ones(3))
        o.step()
    np.testing.assert_array_equal(p.array, q.array)


def _lrs(make_scheduler, steps, lr=0.1):
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr)
    sched = make_scheduler(opt)
    out = [opt.lr]
    for _ in range(steps):
        sched.step()
        out.append(opt.lr)
    return out


def test_step_lr_paper_schedule_falls_4_percent_every_8_epochs():
    lrs = _lrs(lambda o: optim.StepLR(o, step_size=8, gamma=0.96), 17)
    assert lrs[7] == pytest.approx(0.1) and lrs[8] == pytest.approx(0.096) and lrs[16] == pytest.approx(0.09216)


def test_cosine_schedule():
    lrs = _lrs(lambda o: optim.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 10)
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.001 + 0.099 / 2) and lrs[10] == pytest.approx(0.001)


def test_one_cycle_warms_up_then_anneals():
    lrs = _lrs(lambda o: optim.OneCycleLR(o, max_lr=1.0, total_steps=100, pct_start=0.3), 100)
    low, peak = 1.0 / 25, 29  # starts at max_lr / div_factor; peaks at step pct_start * total - 1
    assert lrs[0] == pytest.approx(low) and lrs[peak] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a > b for a, b in zip(lrs[peak:99], lrs[peak + 1:100]))
    assert lrs[99] == pytest.approx(low / 1e4)  # the last step ends at max_lr / (div_factor * final_div_factor)
    fraction = (60 - peak) / (99 - peak)  # cosine annealing from the peak down
    assert lrs[60] == pytest.approx(low / 1e4 + (1.0 - low / 1e4) * (1 + math.cos(math.pi * fraction)) / 2)
    linear = _lrs(lambda o: optim.OneCycleLR(o, 1.0, 100, anneal_strategy="linear"), 99)
    assert linear[10] == pytest.approx(low + (1.0 - low) * 10 / peak)


def test_scheduler_state_round_trip():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], 0.1)
    sched = optim.OneCycleLR(opt, 0.5, 20)
    for _ in range(7):
        sched.step()
    other_opt = optim.SGD([nn.Parameter(np.zeros(1))], 0.1)
    other = optim.OneCycleLR(other_opt, 0.5, 20)
    other.load_state_dict(sched.state_dict())
    assert other_opt.lr == opt.lr


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, -0.1), "lr must be a non-negative number"),
    (lambda p: optim.SGD(p, 0.1, nesterov=True), "nesterov=True needs a momentum above 0"),
    (lambda p: optim.SGD([], 0.1), "params is empty"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas must be two numbers in \[0, 1\)"),
])
def test_optimizers_reject_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter(np.zeros(1))])


# -- the flat buffers -------------------------------------------------------------------------------

def _sgd_by_hand(p0, grads, lr=0.1, mu=0.9, wd=1e-2):
    """Nesterov SGD with weight decay on one array, step by step; None in grads: no step."""
    p, buf = p0.copy(), None
    for g in grads:
        if g is None:
            continue
        g = g + wd * p
        buf = g.copy() if buf is None else mu * buf + g
        p = p - lr * (g + mu * buf)
    return p


def test_parameters_live_in_one_flat_buffer_per_device_and_dtype(rng):
    def make_net():
        return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 1), nn.Flatten(), nn.Linear(12, 4))

    net, twin = make_net(), make_net()
    twin.load_state_dict(net.state_dict())
    before = [p.array.copy() for p in net.parameters()]
    opt = optim.SGD(net.parameters(), lr=0.1)
    (group,) = opt.groups
    assert group.array.size == sum(p.numel() for p in net.parameters())
    for p, value in zip(net.parameters(), before):
        assert p.array.base is group.array  # a view, not a copy
        np.testing.assert_array_equal(p.array, value)
    x = Tensor(rng.standard_normal((5, 2, 4, 4)).astype(np.float32))
    net(x).sum().backward()
    twin(x).sum().backward()  # no optimizer: each gradient an array of its own
    for p, q in zip(net.parameters(), twin.parameters()):
        assert p.grad.array.base is group.grad  # the backward pass wrote into the gradient buffer
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-6, atol=1e-6)


def test_flat_steps_equal_steps_parameter_by_parameter(rng):
    shapes = [(3, 2), (4,), (), (2, 1, 3)]
    starts = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(4)]
    params = [nn.Parameter(s.copy()) for s in starts]
    opt = optim.SGD(params, 0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = Tensor(g.copy())
        opt.step()
    for index, (p, start) in enumerate(zip(params, starts)):
        expected = _sgd_by_hand(start, [step[index] for step in grads])
        np.testing.assert_allclose(p.array, expected, rtol=1e-12)


def test_a_parameter_without_a_gradient_keeps_its_value_and_state(rng):
    a, b = nn.Parameter(rng.standard_normal(3)), nn.Parameter(rng.standard_normal(2))
    a0, b0 = a.array.copy(), b.array.copy()
    opt = optim.SGD([a, b], 0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)
    ga = [rng.standard_normal(3) for _ in range(3)]
    gb = [rng.standard_normal(2), None, rng.standard_normal(2)]  # b gets no gradient in step 2
    for g_a, g_b in zip(ga, gb):
        opt.zero_grad()
        a.grad = Tensor(g_a.copy())
        b.grad = None if g_b is None else Tensor(g_b.copy())
        opt.step()
    np.testing.assert_allclose(a.array, _sgd_by_hand(a0, ga), rtol=1e-12)
    np.testing.assert_allclose(b.array, _sgd_by_hand(b0, gb), rtol=1e-12)


def test_mixed_dtypes_make_two_groups_and_the_state_dict_keeps_parameter_order(rng):
    params = [nn.Parameter(rng.standard_normal(2)), nn.Parameter(rng.standard_normal(3).astype(np.float32)),
              nn.Parameter(rng.standard_normal(4))]
    opt = optim.SGD(params, 0.1, momentum=0.9)
    assert sorted(g.array.dtype.name for g in opt.groups) == ["float32", "float64"]
    for p in params:
        p.grad = Tensor(np.ones(p.shape, p.dtype))
    opt.step()
    state = opt.state_dict()["state"]
    assert [s["momentum_buffer"].shape for s in state] == [(2,), (3,), (4,)]
    assert state[1]["momentum_buffer"].dtype == np.float32


def test_moving_the_model_after_building_the_optimizer_is_refused():
    net = nn.Linear(3, 2)
    opt = optim.SGD(net.parameters(), lr=0.1)
    net.to(dtype=np.float64)
    for p in net.parameters():
        p.grad = Tensor(np.zeros(p.shape))
    with pytest.raises(RuntimeError, match=r"SGD: parameter 0 \(shape \(2, 3\)\) no longer lives in the "
                                           r"optimizer's buffer.*Build the optimizer after moving the model"):
        opt.step()


def test_the_same_parameter_twice_is_refused():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match=r"params\[1\] appears more than once"):
        optim.SGD([p, p], 0.1)


@pytest.mark.parametrize("reuse", ["once", "twice in the graph", "twice in one op"])
def test_gradients_written_straight_into_the_optimizers_buffer_equal_the_engines_copies(device, reuse):
    """Linear and batch norm write their parameters' gradients into the optimizer's buffer themselves
    (Op.gradient_buffer) where it is safe; a parameter used twice still gets the sum."""
    import inspect
    import os

    import minicnn.functional as F
    from minicnn import backend, grad_buffers
    from helpers import on_cupy_standin, tensor

    def run(with_optimizer):
        rng = np.random.default_rng(0)
        weight, bias, gamma, beta = (tensor(rng.standard_normal(shape), device, requires_grad=True)
                                     for shape in [(3, 4), (3,), (3,), (3,)])
        if with_optimizer:
            optim.SGD([weight, bias, gamma, beta], lr=0.1)
        x = tensor(rng.standard_normal((5, 4)), device)
        h = F.linear(x, weight, bias)
        if reuse == "twice in the graph":
            h = h + F.linear(x * 2.0, weight)
        elif reuse == "twice in one op":
            h = h * F.linear(weight, weight)[0].sum()  # weight as both inputs of one op (an asymmetric gradient)
        y = F.batch_norm(h, None, None, gamma, beta, training=True, relu=True)
        if device == "gpu" and on_cupy_standin():
            from tests import standin
            with standin.counting() as counter:
                (y * y).sum().backward()
            lines, first = inspect.getsourcelines(grad_buffers.accumulate)
            copies = sum(n for (path, line), n in counter.sites("device_ops").items()
                         if path == os.path.abspath(grad_buffers.__file__) and first <= line < first + len(lines))
        else:
            (y * y).sum().backward()
            copies = None
        for p in (weight, bias, gamma, beta):
            assert (p.grad.array is p._grad_buffer) == with_optimizer
        return [backend.as_numpy(p.grad) for p in (weight, bias, gamma, beta)], copies

    (direct, copies), (copied, _) = run(True), run(False)
    for got, want in zip(direct, copied):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    if copies is not None:  # on the stand-in: the engine's kernels, a copy or an add into the buffer
        assert copies == {"once": 0, "twice in the graph": 1, "twice in one op": 2}[reuse]


def test_a_gradient_buffer_is_offered_only_where_writing_there_is_safe():
    from minicnn.engine import Op
    p, q = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    optim.SGD([p], lr=0.1)  # p's gradient lives in the optimizer's buffer, q's nowhere yet
    op = Op()
    op.inputs = (p, q)
    assert op.gradient_buffer(0) is p._grad_buffer and op.gradient_buffer(1) is None
    op.inputs = (p, p)  # one input's gradient written there would be overwritten by the other's copy
    assert op.gradient_buffer(0) is None
    op.inputs = (p, q)
    p.grad = Tensor(p._grad_buffer)  # a gradient already there this pass: it must be added to, not overwritten
    assert op.gradient_buffer(0) is None
    p.grad = None
    p.register_hook(lambda grad: grad)  # hooks see the summed gradient first
    assert op.gradient_buffer(0) is None
