"""Hooks (minicnn.hooks): Tensor.register_hook and the Module forward, forward-pre and full backward
hooks, with PyTorch's signatures and semantics. Expected gradients are worked out by hand."""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend, nn, engine
from helpers import tensor


def host(array):
    return None if array is None else backend.as_numpy(array)


# -- Tensor.register_hook -------------------------------------------------------------------------
def test_a_leaf_hook_sees_the_summed_gradient_once_and_replaces_what_is_added(device):
    x = tensor([1.0, 2.0], device, requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(host(grad)) or grad * 10)
    (x * 2.0 + x * 3.0).sum().backward()  # two uses of x: PyTorch calls the hook once, on 2 + 3
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [5.0, 5.0])
    np.testing.assert_array_equal(host(x.grad), [50.0, 50.0])


def test_a_hook_on_an_intermediate_tensor_changes_what_flows_back(device):
    x = tensor([1.0, -2.0], device, requires_grad=True)
    y = x * 3.0
    seen = []
    y.register_hook(lambda grad: seen.append(host(grad)) or grad * 0.5)
    (y * y).sum().backward()  # dL/dy = 2y = [6, -12]; then dL/dx = 3 * 0.5 * dL/dy
    np.testing.assert_array_equal(seen[0], [6.0, -12.0])
    np.testing.assert_array_equal(host(x.grad), [9.0, -18.0])


def test_a_hook_on_the_tensor_backward_starts_from_sees_the_seed():
    x = Tensor(np.array([2.0]), requires_grad=True)
    loss = (x * x).sum()
    seen = []
    loss.register_hook(lambda grad: seen.append(grad.copy()))
    loss.backward()
    np.testing.assert_array_equal(seen[0], 1.0)
    leaf = Tensor(np.array([1.0, 1.0]), requires_grad=True)
    leaf.register_hook(lambda grad: grad + 1)
    leaf.backward(np.array([3.0, 4.0]))  # backward on a leaf itself still runs its hooks
    np.testing.assert_array_equal(leaf.grad, [4.0, 5.0])


def test_hooks_run_in_order_and_removed_ones_do_not_run():
    x = Tensor(np.array([1.0]), requires_grad=True)
    calls = []
    first = x.register_hook(lambda grad: calls.append("first") or grad * 2)
    x.register_hook(lambda grad: calls.append(("second", grad.item())))
    (x * 1.0).sum().backward()
    assert calls == ["first", ("second", 2.0)]
    first.remove()
    first.remove()  # removing twice is harmless
    calls.clear()
    with x.register_hook(lambda grad: calls.append("scoped")):
        (x * 1.0).sum().backward()
    (x * 1.0).sum().backward()
    assert calls == [("second", 1.0), "scoped", ("second", 1.0)]


def test_register_hook_errors_are_clear():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        Tensor(np.ones(2)).register_hook(lambda grad: None)
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="register_hook: hook must be callable, got int"):
        x.register_hook(3)
    x.register_hook(lambda grad: grad[:1])
    with pytest.raises(RuntimeError, match=r"returned a gradient of shape \(1,\), dtype float64; expected an "
                                           r"array of shape \(2,\) and dtype float64, or None"):
        (x * 2.0).sum().backward()


# -- forward hooks ----------------------------------------------------------------------------------
def test_forward_pre_hook_and_forward_hook_can_replace_args_and_output():
    layer = nn.ReLU()
    x = Tensor(np.array([-1.0, 2.0]))
    calls = []
    pre = layer.register_forward_pre_hook(lambda module, args: calls.append(("pre", module, len(args))) or -args[0])
    post = layer.register_forward_hook(lambda module, args, output: calls.append(("post", args[0].array.tolist()))
                                       or output * 10.0)
    np.testing.assert_array_equal(layer(x).array, [10.0, 0.0])  # relu(-x) * 10
    assert calls == [("pre", layer, 1), ("post", [1.0, -2.0])]  # the hook sees the replaced args
    pre.remove()
    post.remove()
    assert not layer._hooks  # back on the path without hooks
    np.testing.assert_array_equal(layer(x).array, [0.0, 2.0])


def test_forward_hooks_see_every_layer_of_a_network_in_call_order():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    shapes = []
    handles = [layer.register_forward_hook(lambda m, args, out, i=i: shapes.append((i, out.shape)))
               for i, layer in enumerate(net)]
    net(Tensor(np.ones((5, 3), np.float32)))
    assert shapes == [(0, (5, 4)), (1, (5, 4)), (2, (5, 2))]
    for handle in handles:
        handle.remove()
    with pytest.raises(TypeError, match="ReLU.register_forward_hook: hook must be callable"):
        net[1].register_forward_hook("print")


# -- full backward hooks -------------------------------------------------------------------------------
def test_full_backward_hook_gets_the_gradients_of_inputs_and_outputs(device):
    linear = nn.Linear(2, 1).to(device)
    linear.weight.array[...] = backend.to_device(np.array([[2.0, -3.0]], np.float32), device)
    x = tensor(np.array([[1.0, 1.0], [0.5, 2.0]], np.float32), device, requires_grad=True)
    seen = []

    def hook(module, grad_input, grad_output):
        seen.append((module, [host(g) for g in grad_input], [host(g) for g in grad_output]))
        return (grad_input[0] * 2,)

    linear.register_full_backward_hook(hook)
    (linear(x) * Tensor(backend.to_device(np.array([[1.0], [3.0]], np.float32), device))).sum().backward()
    module, grad_input, grad_output = seen[0]
    assert module is linear and len(seen) == 1
    np.testing.assert_array_equal(grad_output[0], [[1.0], [3.0]])             # dL/dy
    np.testing.assert_array_equal(grad_input[0], [[2.0, -3.0], [6.0, -9.0]])   # dL/dx = dL/dy @ W
    np.testing.assert_array_equal(host(x.grad), [[4.0, -6.0], [12.0, -18.0]])  # what the hook returned
    np.testing.assert_array_equal(host(linear.weight.grad), [[2.5, 7.0]])       # parameters are not inputs


class Mix(nn.Module):
    """Two tensor inputs on separate paths, and a plain number: y = a * scale, z = relu(b)."""

    def forward(self, a, scale, b):
        return a * scale, F.relu(b)


def test_a_module_with_several_inputs_and_outputs_calls_its_hook_once_with_all_of_them():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([-1.0, 3.0]), requires_grad=True)
    before_a, before_b = a * 1.0, b * 1.0  # producers outside the module: they must get the hook's gradients
    mix = Mix()
    seen = []

    def hook(module, grad_input, grad_output):
        seen.append((tuple(None if g is None else g.tolist() for g in grad_input),
                     tuple(None if g is None else g.tolist() for g in grad_output)))
        return grad_input[0] * -1.0, None, grad_input[2]

    mix.register_full_backward_hook(hook)
    y, z = mix(before_a, 5.0, before_b)
    (y * 2.0 + z.sum() * 0.0 + z * 4.0).sum().backward()
    assert seen == [(([10.0, 10.0], None, [0.0, 4.0]), ([2.0, 2.0], [4.0, 4.0]))]
    np.testing.assert_array_equal(a.grad, [-10.0, -10.0])
    np.testing.assert_array_equal(b.grad, [0.0, 4.0])


def test_an_output_that_gets_no_gradient_is_none_in_grad_output():
    a = Tensor(np.array([1.0]), requires_grad=True)
    mix, seen = Mix(), []
    mix.register_full_backward_hook(lambda m, gi, go: seen.append(go))
    y, _ = mix(a, 2.0, a)
    y.sum().backward()
    assert seen[0][0].tolist() == [1.0] and seen[0][1] is None


def test_when_no_input_needs_a_gradient_the_hook_gets_nones_and_may_not_return_gradients():
    conv = nn.Conv2d(1, 1, 1)  # the first layer: the images need no gradient
    seen = []
    handle = conv.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    conv(Tensor(np.ones((1, 1, 2, 2), np.float32))).sum().backward()
    assert seen == [((None,), (1, 1, 2, 2))] and conv.weight.grad is not None
    handle.remove()
    conv.register_full_backward_hook(lambda m, gi, go: (np.ones((1, 1, 2, 2), np.float32),))
    with pytest.raises(RuntimeError, match="no input of this call needs a gradient, so the hook must return None"):
        conv(Tensor(np.ones((1, 1, 2, 2), np.float32))).sum().backward()


def test_a_module_called_twice_calls_its_hook_twice_and_nested_hooks_all_run():
    inner = nn.Linear(2, 2)
    outer = nn.Sequential(inner, nn.ReLU(), inner)
    calls = []
    inner.register_full_backward_hook(lambda m, gi, go: calls.append("inner"))
    outer.register_full_backward_hook(lambda m, gi, go: calls.append("outer"))
    x = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    outer(x).sum().backward()
    assert calls == ["inner", "inner", "outer"]  # backward order: the last call of inner first


def test_backward_hooks_do_not_change_any_gradient_when_they_return_none(rng):
    from models.googlenet import Inception, InceptionSpec
    minicnn.manual_seed(0)
    block = Inception(4, InceptionSpec(2, 2, 3, 1, 2, 2))
    x = rng.standard_normal((2, 4, 5, 5))
    block.to(dtype=np.float64)

    def gradients():
        block.zero_grad()
        inputs = Tensor(x.copy(), requires_grad=True)
        block(inputs).sum().backward()
        return [inputs.grad] + [p.grad for p in block.parameters()]

    plain = gradients()
    counts = []
    for module in block.modules():
        module.register_full_backward_hook(lambda m, gi, go: counts.append(m))
    hooked = gradients()
    assert len(counts) == len(list(block.modules()))  # every module's hook ran once
    for a, b in zip(plain, hooked):
        np.testing.assert_array_equal(a, b)


def test_backward_hook_returns_are_checked():
    linear = nn.Linear(2, 2)
    x = Tensor(np.ones((1, 2), np.float32), requires_grad=True)
    handle = linear.register_full_backward_hook(lambda m, gi, go: gi[0])
    with pytest.raises(RuntimeError, match="must return None or a tuple of 1 gradients"):
        linear(x).sum().backward()
    handle.remove()
    linear.register_full_backward_hook(lambda m, gi, go: (np.ones((2, 2), np.float32),))
    with pytest.raises(RuntimeError, match=r"grad_input\[0\] returned a gradient of shape \(2, 2\)"):
        linear(x).sum().backward()


def test_under_no_grad_backward_hooks_add_no_ops():
    linear = nn.Linear(2, 2)
    linear.register_full_backward_hook(lambda m, gi, go: None)
    with minicnn.no_grad():
        y = linear(Tensor(np.ones((1, 2), np.float32)))
    assert y.creator is None and not engine._watchers
