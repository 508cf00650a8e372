"""Optimizers and schedules against their update rules, written out by hand."""
import math

import numpy as np
import pytest

from minicnn import nn, optim


def _run(optimizer_factory, grads, p0):
    p = nn.Parameter(p0.copy())
    opt = optimizer_factory([p])
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


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
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None


def test_optimizer_state_round_trip(rng):
    p = nn.Parameter(rng.standard_normal(3))
    opt = optim.SGD([p], 0.1, momentum=0.9)
    p.grad = np.ones(3)
    opt.step()
    q = nn.Parameter(p.data.copy())
    other = optim.SGD([q], 0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    for o, param in ((opt, p), (other, q)):
        param.grad = np.ones(3)
        o.step()
    np.testing.assert_array_equal(p.data, q.data)


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
