"""The engine refuses an Op.backward whose gradients do not fit the Op's inputs."""
import numpy as np
import pytest

from minicnn import Tensor, backend
from minicnn.engine import Op
from helpers import tensor


class ScaleFunction(Op):
    """y = a * b for a vector a and a scalar b; ``backward`` returns what the test tells it to."""

    def __init__(self, make_grads):
        self.make_grads = make_grads

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return self.make_grads(self, gy)


def run(make_grads, device="cpu"):
    a = tensor(np.array([1.0, 2.0, 3.0]), device, requires_grad=True)
    b = tensor(np.array(2.0), device, requires_grad=True)
    ScaleFunction(make_grads)(a, b).sum().backward()
    return a, b


def test_a_correct_backward_passes():
    a, b = run(lambda f, gy: (gy * f.b, (gy * f.a).sum()))
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])
    assert float(b.grad) == 6.0


def test_too_few_gradients_names_the_function():
    with pytest.raises(RuntimeError, match=r"ScaleFunction.backward returned 1 gradient\(s\) for 2 input\(s\)"):
        run(lambda f, gy: gy * f.b)


def test_too_many_gradients():
    with pytest.raises(RuntimeError, match=r"returned 3 gradient\(s\) for 2 input\(s\)"):
        run(lambda f, gy: (gy * f.b, (gy * f.a).sum(), None))


def test_a_gradient_of_the_wrong_shape_names_the_input():
    # forgetting to sum a broadcast operand's gradient back down is the classic mistake
    with pytest.raises(RuntimeError, match=r"ScaleFunction.backward: the gradient for input 1 has shape \(3,\), "
                                           r"but that input is float64 of shape \(\) on cpu"):
        run(lambda f, gy: (gy * f.b, gy * f.a))


def test_a_gradient_of_the_wrong_dtype():
    with pytest.raises(RuntimeError, match=r"gradient for input 0 has dtype float32, but that input is float64"):
        run(lambda f, gy: ((gy * f.b).astype(np.float32), (gy * f.a).sum()))


def test_a_gradient_that_is_not_an_array():
    with pytest.raises(RuntimeError, match=r"gradient for input 0 is a list, not an array"):
        run(lambda f, gy: ([2.0, 2.0, 2.0], (gy * f.a).sum()))


def test_a_gradient_for_an_input_without_requires_grad_is_ignored():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array(3.0))  # a constant: whatever backward returns for it is never used
    ScaleFunction(lambda f, gy: (gy * f.b, "anything"))(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])


@pytest.mark.gpu
def test_a_gradient_on_the_wrong_device():
    with pytest.raises(RuntimeError, match=r"gradient for input 0 is on cpu, but that input is float64 of shape "
                                           r"\(3,\) on gpu:0"):
        run(lambda f, gy: (backend.as_numpy(gy * f.b), (gy * f.a).sum()), device="gpu")
