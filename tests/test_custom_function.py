"""minicnn.autograd.Function: PyTorch's ctx API for a user's own op, checked against torch.autograd.Function."""
import numpy as np
import pytest
import torch

import minicnn
from minicnn import Tensor, autograd


def legendre_p3(lib):
    """The tutorial's P3(x) = (5x^3 - 3x) / 2 written against ``lib`` (torch or minicnn)."""

    class LegendrePolynomial3(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (5 * x ** 3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * x ** 2 - 1)

    return LegendrePolynomial3


def scaled_product(lib):
    """Two tensors and two non-tensor arguments, ctx attributes and needs_input_grad."""

    class ScaledProduct(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, scale, b, label):
            ctx.scale, ctx.label = scale, label
            ctx.seen = tuple(ctx.needs_input_grad)
            ctx.save_for_backward(a, b)
            return a * b * scale

        @staticmethod
        def backward(ctx, grad_output):
            a, b = ctx.saved_tensors
            ga = grad_output * b * ctx.scale if ctx.needs_input_grad[0] else None
            gb = grad_output * a * ctx.scale if ctx.needs_input_grad[2] else None
            return ga, None, gb, None

    return ScaledProduct


def test_the_tutorials_legendre_polynomial_matches_torch():
    x = np.linspace(-1.0, 1.0, 7)
    results = []
    for lib in (torch, minicnn):
        t = lib.tensor(x, requires_grad=True)
        y = legendre_p3(lib).apply(t)
        y.sum().backward()
        results.append((y.detach().numpy(), t.grad.numpy(), type(y.grad_fn).__name__))
    (want_y, want_g, want_name), (got_y, got_g, got_name) = results
    np.testing.assert_allclose(got_y, want_y, rtol=1e-12)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-12)
    assert got_name == want_name == "LegendrePolynomial3Backward"


def test_non_tensor_arguments_ctx_attributes_and_needs_input_grad_match_torch():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    results = []
    for lib in (torch, minicnn):
        ta, tb = lib.tensor(a, requires_grad=True), lib.tensor(b)
        function = scaled_product(lib)
        y = function.apply(ta, 2.5, tb, "label")
        y.sum().backward()
        results.append((y.detach().numpy(), ta.grad.numpy(), tb.grad, y.grad_fn is not None))
    (want_y, want_ga, want_gb, want_fn), (got_y, got_ga, got_gb, got_fn) = results
    np.testing.assert_allclose(got_y, want_y)
    np.testing.assert_allclose(got_ga, want_ga)
    assert got_gb is None and want_gb is None and got_fn and want_fn


def test_needs_input_grad_is_one_bool_per_argument():
    seen = []
    for lib in (torch, minicnn):
        class Probe(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, scale, b):
                seen.append(tuple(ctx.needs_input_grad))
                return a * scale + b

            @staticmethod
            def backward(ctx, grad_output):
                return grad_output, None, grad_output

        Probe.apply(lib.ones(2, requires_grad=True), 3.0, lib.ones(2))
    assert seen[0] == seen[1] == (True, False, False)


def test_gradcheck_checks_a_custom_function_in_float64():
    x = Tensor(np.linspace(-0.9, 0.9, 5), requires_grad=True)
    result = minicnn.gradcheck(legendre_p3(minicnn).apply, [x])
    assert result.checked == 5 and result.max_rel_error < 1e-6

    class WrongDerivative(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 3 * x  # should be 3 x^2

    with pytest.raises(minicnn.GradcheckError, match="analytic"):
        minicnn.gradcheck(WrongDerivative.apply, [x])


def test_a_saved_input_changed_in_place_makes_backward_refuse_as_in_torch():
    errors = []
    for lib in (torch, minicnn):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        z = legendre_p3(lib).apply(w)  # saves w
        with lib.no_grad():
            w.detach().mul_(2)  # the same array and version counter as w
        try:
            z.sum().backward()
            errors.append(None)
        except RuntimeError as error:
            errors.append(str(error))
    assert all(e is not None and "modified by an inplace operation" in e for e in errors)


def test_hooks_and_trace_see_a_custom_function():
    x = Tensor(np.array([0.25, 0.5]), requires_grad=True)
    seen = []
    with autograd.trace() as ops:
        y = legendre_p3(minicnn).apply(x)
        y.register_hook(lambda grad: seen.append(grad.copy()) or grad * 2)
        y.sum().backward()
    recorded = [(op.phase, op.name) for op in ops]  # with the ops its forward and backward ran
    assert ("forward", "LegendrePolynomial3Backward") in recorded
    assert ("backward", "LegendrePolynomial3Backward") in recorded
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * 1.5 * (5 * x.numpy() ** 2 - 1))


def test_bad_returns_are_clear_errors():
    class TwoGradients(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, grad_output

    class ArrayGradient(TwoGradients):
        @staticmethod
        def backward(ctx, grad_output):
            return grad_output.numpy()

    class NotATensor(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.numpy()

    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 2 gradient"):
        TwoGradients.apply(x).sum().backward()
    with pytest.raises(TypeError, match="must be a Tensor or None, got ndarray"):
        ArrayGradient.apply(x).sum().backward()
    with pytest.raises(TypeError, match="forward must return one Tensor"):
        NotATensor.apply(x)
