"""In-place ops follow PyTorch: they change the tensor itself, and autograd refuses what it cannot follow.

Each case runs the same program on torch and on minicnn; the values, or the
fact that both refuse (with PyTorch's kind of message), must agree.
"""
import numpy as np
import pytest
import torch

import minicnn
from minicnn import Tensor, nn, optim


def both(program):
    """``program(lib)`` run with torch and with minicnn: (torch's result, minicnn's), or the exception
    each raised."""
    results = []
    for lib in (torch, minicnn):
        try:
            results.append(program(lib))
        except RuntimeError as error:
            results.append(error)
    return results


def dtype(lib, name):
    """The dtype called ``name`` in ``lib`` (torch's object, or NumPy's dtype for minicnn)."""
    return getattr(torch, name) if lib is torch else np.dtype(name)


def dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def values(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "add_", "sub_", "mul_", "div_", "add_alpha", "clamp_"])
def test_in_place_arithmetic_changes_the_tensor_itself(op):
    def program(lib):
        x = lib.tensor([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
        alias, view = x, x.data  # the same tensor, and another one over the same memory
        other = lib.tensor([0.5, 2.0, -1.0])
        if op == "+=":
            x += other
        elif op == "-=":
            x -= other
        elif op == "*=":
            x *= other
        elif op == "/=":
            x /= 2
        elif op == "add_alpha":
            assert x.add_(other, alpha=3) is x
        elif op == "clamp_":
            assert x.clamp_(-1.5, 2.5) is x
        else:
            assert getattr(x, op)(other) is x
        assert alias is x
        return values(x), values(view), dtype_name(x) == "float32"
    (want, want_view, want_dtype), (got, got_view, got_dtype) = both(program)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got_view, want_view, rtol=1e-6)
    assert got_dtype and want_dtype


def test_zero_fill_copy_and_setitem():
    def program(lib):
        x = lib.zeros(2, 3)
        x.fill_(2.5)
        x[0, 1] = 7.0
        x[1] = lib.tensor([1.0, 2.0, 3.0])
        x[x > 6] = -1.0
        y = lib.ones(2, 3)
        y.copy_(lib.tensor([4.0, 5.0, 6.0], dtype=dtype(lib, "float64")))  # broadcast, cast
        z = lib.ones(3)
        z.zero_()
        return values(x), values(y), values(z)
    want, got = both(program)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b, a)


def test_minus_equals_on_a_parameter_under_no_grad_updates_it_and_keeps_requires_grad():
    def program(lib):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (w * w).sum().backward()
        before = w
        with lib.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        return values(w), w is before, w.requires_grad, values(w.grad)
    (want_w, *want_rest), (got_w, *got_rest) = both(program)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-6)
    assert [bool(v) if not isinstance(v, np.ndarray) else v.tolist() for v in got_rest] == \
        [bool(v) if not isinstance(v, np.ndarray) else v.tolist() for v in want_rest]


def test_a_manual_sgd_loop_over_model_parameters_trains_the_model():
    torch_model = torch.nn.Linear(3, 1)
    model = nn.Linear(3, 1)
    model.load_state_dict({name: value.detach().numpy() for name, value in torch_model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    for m, lib in ((torch_model, torch), (model, minicnn)):
        for _ in range(3):
            loss = ((m(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()
            m.zero_grad()
            loss.backward()
            with lib.no_grad():
                for p in m.parameters():
                    p -= 0.1 * p.grad
    for name, value in torch_model.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)


def test_a_leaf_that_requires_grad_refuses_in_place_ops_under_grad_mode():
    for op in (lambda w: w.add_(1), lambda w: w.__isub__(1), lambda w: w.zero_(), lambda w: w.fill_(2),
               lambda w: w.__setitem__(0, 5.0), lambda w: w.copy_(w.detach() * 2)):
        want, got = both(lambda lib: op(lib.tensor([1.0, 2.0], requires_grad=True)))
        assert isinstance(want, RuntimeError) and isinstance(got, RuntimeError)
        assert "a leaf Variable that requires grad is being used in an in-place operation" in str(want)
        assert "a leaf Variable that requires grad is being used in an in-place operation" in str(got)


def test_modifying_a_tensor_that_backward_needs_is_detected():
    def program(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        w = lib.tensor([[0.5, -1.0], [2.0, 1.0]], requires_grad=True)
        y = x * w  # mul saves x for w's gradient
        x.add_(1)
        y.sum().backward()
        return values(w.grad)
    want, got = both(program)
    assert isinstance(want, RuntimeError) and isinstance(got, RuntimeError)
    for message in (str(want), str(got)):
        assert "one of the variables needed for gradient computation has been modified by an inplace operation" \
            in message and "is at version 1; expected version 0 instead" in message
    assert "[float32 (2, 2)]" in str(got)


def test_modifying_a_tensor_that_backward_does_not_read_is_fine():
    def program(lib):
        x = lib.tensor([1.0, 2.0])
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        y = x + w  # add saves nothing
        x.add_(1)
        z = (w * 3).exp()
        y.sum().backward()
        z.sum().backward()
        return values(w.grad)
    want, got = both(program)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_modifying_a_saved_output_through_a_detached_alias_is_detected_but_not_through_data():
    def program(lib, alias):
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        y = w.exp()  # exp saves its output
        getattr(y, alias)().mul_(2) if alias == "detach" else y.data.mul_(2)
        y.sum().backward()
        return values(w.grad)
    for alias in ("detach", "data"):
        want, got = both(lambda lib: program(lib, alias))
        if alias == "detach":
            assert isinstance(want, RuntimeError) and isinstance(got, RuntimeError)
            assert "modified by an inplace operation" in str(got)
        else:  # .data is not tracked, in PyTorch as here: the gradient uses the changed values
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_versions_count_in_place_ops_on_the_shared_counter():
    def program(lib):
        x = lib.ones(3)
        d = x.detach()
        x.add_(1)
        d.mul_(2)
        x[0] = 4.0
        return x._version, d._version, x.data._version
    want, got = both(program)
    assert got == want == (3, 3, 0)  # .data starts a counter of its own


def test_in_place_ops_follow_the_type_rules():
    def program(lib, op):
        x = lib.tensor([1, 2, 3])
        if op == "int /= 2":
            x /= 2
        elif op == "int += 0.5":
            x += 0.5
        elif op == "int *= 2":
            x *= 2
        elif op == "float32 += float64":
            x = lib.ones(3)
            x += lib.ones(3, dtype=dtype(lib, "float64"))
        elif op == "broadcast into a smaller shape":
            x = lib.ones(3)
            x += lib.ones(2, 3)
        return values(x), dtype_name(x)
    for op in ("int /= 2", "int += 0.5", "int *= 2", "float32 += float64", "broadcast into a smaller shape"):
        want, got = both(lambda lib: program(lib, op))
        assert isinstance(want, RuntimeError) == isinstance(got, RuntimeError), op
        if not isinstance(want, RuntimeError):
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1] == want[1], op


def in_graph_programs():
    """In-place ops on tensors in the graph, each returning the gradients it made (torch records them all)."""

    def chain(lib, w, v):
        y = w * 2
        y += 1
        y.mul_(3)
        y -= v
        y.clamp_(-4.0, 8.0)
        (y * y).sum().backward()

    def a_constant_takes_a_gradient_in(lib, w, v):
        x = lib.zeros(3, dtype=w.dtype)
        x += w
        x[1] = v[0] * 2
        (x * x).sum().backward()

    def earlier_users_keep_the_old_value(lib, w, v):
        y = w * 2
        total = y.sum() + y[0]  # sum and indexing save no values: the change below is allowed
        y.add_(v)
        (total + (y * y).sum()).backward()

    def overwrite(lib, w, v):
        y = w * 1.0
        y[0:2] = v[1]
        z = w * 3.0
        z.copy_(v * v)
        u = w + 0.0
        u.zero_()
        (y * y + z + (u + w) * w).sum().backward()

    def fill_then_use(lib, w, v):
        y = v * w
        y.fill_(2.5)
        (y * w).sum().backward()

    return [chain, a_constant_takes_a_gradient_in, earlier_users_keep_the_old_value, overwrite, fill_then_use]


@pytest.mark.parametrize("program", in_graph_programs(), ids=lambda p: p.__name__)
def test_in_place_ops_in_the_graph_are_recorded_as_in_torch(program):
    grads = []
    for lib in (torch, minicnn):
        w = lib.tensor([1.0, -2.0, 3.0], dtype=dtype(lib, "float64"), requires_grad=True)
        v = lib.tensor([0.5, 4.0, -1.0], dtype=dtype(lib, "float64"), requires_grad=True)
        program(lib, w, v)
        grads.append([None if t.grad is None else values(t.grad) for t in (w, v)])
    for want, got in zip(*grads):
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_recorded_in_place_op_on_a_saved_output_is_refused_as_in_torch():
    def program(lib):
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        h = w.exp()  # exp saves its output
        h.add_(1)
        h.sum().backward()
    want, got = both(program)
    assert isinstance(want, RuntimeError) and isinstance(got, RuntimeError)
    assert "modified by an inplace operation" in str(got)


def test_requires_grad_and_retain_grad_and_grad_fn():
    def program(lib):
        x = lib.tensor([1.0, 2.0]).requires_grad_()
        h = x * 3
        h.retain_grad()
        (h * h).sum().backward()
        return values(x.grad), values(h.grad), x.grad_fn is None, h.grad_fn is not None, h.is_leaf
    want, got = both(program)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2:] == want[2:]
    want, got = both(lambda lib: (lib.ones(2, requires_grad=True) * 2).requires_grad_(False))
    assert isinstance(want, RuntimeError) and isinstance(got, RuntimeError)


def test_grad_is_a_tensor_in_the_optimizers_buffer_and_can_be_zeroed_or_dropped():
    w = nn.Parameter(np.ones(3, np.float32))
    optimizer = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    assert isinstance(w.grad, Tensor) and w.grad is w.grad
    assert w.grad.array is w._grad_buffer  # the optimizer's flat buffer itself
    w.grad.zero_()
    np.testing.assert_array_equal(optimizer.groups[0].grad, [0.0, 0.0, 0.0])
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])
    w.grad = None
    assert w.grad is None
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None"):
        w.grad = np.ones(3, np.float32)
    with pytest.raises(RuntimeError, match="assigned grad has float32 of shape"):
        w.grad = Tensor(np.ones(2, np.float32))


def test_size_numel_dim_and_generators_are_pytorchs():
    def program(lib):
        x = lib.zeros(2, 3, 4)
        model = lib.nn.Linear(3, 2)
        first = next(model.parameters())
        return (tuple(x.size()), x.size(1), x.size(-1), x.numel(), x.dim(), tuple(first.size()),
                len(list(model.parameters())), [name for name, _ in model.named_parameters()],
                type(model.state_dict()["weight"]).__name__ in ("Tensor", "Parameter"))
    want, got = both(program)
    assert got == want


@pytest.mark.parametrize("key", [(slice(None), 1), (0, slice(1, 3)), ([2, 0], [1, 3]), Ellipsis],
                         ids=["column", "row part", "integer arrays", "all"])
def test_set_item_matches_a_plain_loop_and_passes_the_gradient_check(key):
    from minicnn.functional.indexing import set_item
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    picked_shape = np.empty((3, 4))[key].shape
    v = Tensor(rng.standard_normal(picked_shape[-1:] if picked_shape else ()), requires_grad=True)
    want = x.numpy().copy()  # the plain reference: every selected element, one at a time
    rows, columns = (positions[key] for positions in np.indices((3, 4)))
    broadcast = np.broadcast_to(v.numpy(), picked_shape)
    for index in np.ndindex(picked_shape):
        want[rows[index], columns[index]] = broadcast[index]
    np.testing.assert_array_equal(set_item(x, key, v).numpy(), want)
    minicnn.gradcheck(lambda a, b: set_item(a, key, b), [x, v])


def test_a_recorded_in_place_op_casts_the_result_back_and_the_gradient_with_it():
    results = []
    for lib in (torch, minicnn):
        w = lib.tensor([1.0, -2.0], requires_grad=True)  # float32
        v = lib.tensor([0.5, 4.0], dtype=dtype(lib, "float64"), requires_grad=True)
        y = w * 2
        y += v * v  # a float64 result written into float32
        (y * y).sum().backward()
        results.append((dtype_name(y), dtype_name(v.grad), values(w.grad), values(v.grad)))
    (want_y, want_g, want_w, want_v), (got_y, got_g, got_w, got_v) = results
    assert (got_y, got_g) == (want_y, want_g) == ("float32", "float64")
    np.testing.assert_allclose(got_w, want_w, rtol=1e-6)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-6)
