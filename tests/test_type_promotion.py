"""PyTorch's type promotion in every binary arithmetic op, checked against torch itself.

A grid of dtype pairs (tensors with dimensions, 0-d tensors) and Python
numbers of each kind: minicnn's ``result_type`` and the dtype each operator
actually returns must be torch's.
"""
import itertools
import operator

import numpy as np
import pytest
import torch

import minicnn
from minicnn.functional.arithmetic import result_type

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, 3, 2.5]


def as_torch(value):
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def as_minicnn(value):
    return minicnn.Tensor(value) if isinstance(value, np.ndarray) else value


def operand(kind, dtype):
    """An array of ``dtype``: with dimensions ("tensor"), or 0-d ("0-d")."""
    values = np.array([1, 2, 3]) if kind == "tensor" else np.array(2)
    return values.astype(dtype)


def torch_name(dtype):
    return str(dtype).replace("torch.", "")


CASES = ([(operand("tensor", a), operand("tensor", b)) for a, b in itertools.product(DTYPES, DTYPES)]
         + [(operand("tensor", a), operand("0-d", b)) for a, b in itertools.product(DTYPES, DTYPES)]
         + [(operand("tensor", a), s) for a, s in itertools.product(DTYPES, SCALARS)]
         + [(s, operand("tensor", a)) for a, s in itertools.product(DTYPES, SCALARS)])


def case_id(case):
    return " , ".join(f"{v.dtype}{'' if v.ndim else ' 0-d'}" if isinstance(v, np.ndarray) else repr(v)
                      for v in case)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_result_type_is_torchs(case):
    want = torch_name(torch.result_type(*map(as_torch, case)))
    assert str(result_type(*map(as_minicnn, case))) == want


OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
             "**": operator.pow}


@pytest.mark.parametrize("symbol", OPERATORS)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_each_operator_returns_torchs_dtype(symbol, case):
    op = OPERATORS[symbol]
    try:
        want = op(*map(as_torch, case))
    except RuntimeError:  # torch refuses some (bool - bool, a negative integer power): nothing to compare
        return
    got = op(*map(as_minicnn, case))
    assert str(got.dtype) == torch_name(want.dtype)
    np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64), rtol=1e-3)


def test_the_issues_examples():
    ints = minicnn.tensor([1, 2, 3])
    assert (ints / 2).dtype == np.float32 and (ints + 2.5).dtype == np.float32
    assert (ints + minicnn.tensor([1.0, 2.0, 3.0])).dtype == np.float32
    assert (minicnn.tensor([1.0, 2.0, 3.0]) ** ints).dtype == np.float32
    x64 = minicnn.tensor([1.0], dtype="float64")
    assert (minicnn.tensor([1.0]) + x64).dtype == np.float64


def test_a_mixed_dtype_op_sends_each_gradient_back_in_its_own_dtype():
    def program(lib, dtype):
        a = lib.tensor([1.0, 2.0], requires_grad=True)  # float32
        b = lib.tensor([3.0, 4.0], dtype=dtype, requires_grad=True)
        y = a * b + a / 2
        y.sum().backward()
        return y.dtype, a.grad, b.grad
    t_y, t_a, t_b = program(torch, torch.float64)
    m_y, m_a, m_b = program(minicnn, np.float64)
    assert str(m_y) == torch_name(t_y) and str(m_a.dtype) == torch_name(t_a.dtype)
    assert str(m_b.dtype) == torch_name(t_b.dtype)
    np.testing.assert_allclose(m_a.numpy(), t_a.numpy())
    np.testing.assert_allclose(m_b.numpy(), t_b.numpy())
