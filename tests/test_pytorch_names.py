"""The names PyTorch programs reach for (issue 17): each against a plain reference and, where PyTorch
defines the number, against PyTorch itself (it is installed for the tests, never a dependency)."""
import io
import math
import os
import zipfile

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend, nn, optim
from minicnn.utils.data import DataLoader, Dataset, TensorDataset

torch = pytest.importorskip("torch")


def _grad(t):
    return np.asarray(t.grad)


# -- devices ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,type_,index,text", [
    ("cuda:0", "cuda", 0, "cuda:0"), ("cuda", "cuda", None, "cuda"), ("cpu", "cpu", None, "cpu"),
    ("gpu:1", "cuda", 1, "cuda:1"), ("cuda:3", "cuda", 3, "cuda:3")])
def test_device_has_pytorchs_type_index_and_text(spec, type_, index, text):
    d = minicnn.device(spec)
    assert (d.type, d.index, str(d)) == (type_, index, text)
    if not spec.startswith("gpu"):
        theirs = torch.device(spec)
        assert (theirs.type, theirs.index, str(theirs), repr(theirs)) == (d.type, d.index, str(d), repr(d))


def test_device_equality_and_index_argument_follow_pytorch():
    assert minicnn.device("cuda", 1) == minicnn.device("cuda:1")
    assert minicnn.device("cuda") != minicnn.device("cuda:0")  # as torch.device: no index is not index 0
    assert (torch.device("cuda") == torch.device("cuda:0")) is False
    assert len({minicnn.device("cpu"), minicnn.device("cpu")}) == 1
    assert minicnn.device(minicnn.device("cuda:2")) == minicnn.device("cuda:2")


@pytest.mark.parametrize("spec,kind,index", [("cuda", "gpu", 0), ("cuda:2", "gpu", 2), ("gpu:2", "gpu", 2),
                                              ("CUDA:1", "gpu", 1), ("cpu", "cpu", 0)])
def test_cuda_names_parse_as_minicnns_gpu_names(spec, kind, index):
    assert backend.parse_device(spec) == backend.Device(kind, index)
    assert backend.parse_device(minicnn.device(spec)) == backend.Device(kind, index)


@pytest.mark.parametrize("args,error,match", [
    (("tpu",), ValueError, r"device must be 'cpu', 'gpu' or 'gpu:N'.*'cuda' and 'cuda:N'\), got 'tpu'"),
    (("cuda:0", 1), ValueError, r"device: type 'cuda:0' already names an index; got index=1"),
    (("cuda", -1), ValueError, r"device: index must be a non-negative int, got -1"),
    ((3,), TypeError, r"device must be a string such as 'cpu', 'cuda'"),
])
def test_bad_devices_are_named(args, error, match):
    with pytest.raises(error, match=match):
        minicnn.device(*args)


def test_a_device_object_is_taken_wherever_a_name_is():
    x = minicnn.tensor([1.0, 2.0])
    cpu = minicnn.device("cpu")
    assert x.to(cpu) is x and x.cpu() is x
    assert minicnn.zeros(2, device=cpu).device == "cpu"
    model = nn.Linear(2, 1)
    assert model.to(cpu) is model and model.cpu() is model


def test_cuda_questions_without_a_gpu(without_cupy):
    assert minicnn.cuda.is_available() is False and minicnn.cuda.device_count() == 0
    with pytest.raises(minicnn.DeviceUnavailableError, match="needs CuPy"):
        minicnn.tensor([1.0]).cuda()
    with pytest.raises(minicnn.DeviceUnavailableError, match="needs CuPy"):
        nn.Linear(2, 1).cuda()


@pytest.mark.gpu
def test_cuda_moves_a_tensor_and_a_module():
    assert minicnn.cuda.is_available() and minicnn.cuda.device_count() >= 1
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "gpu:0" and x.to(minicnn.device("cuda:0")).device == "gpu:0"
    (y * 2).sum().backward()
    np.testing.assert_array_equal(_grad(x), [2.0, 2.0])
    model = nn.Linear(2, 1).cuda(0)
    assert model.weight.device == "gpu:0" and model.cpu().weight.device == "cpu"


# -- dtypes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["float", "float32", "float64", "double", "half", "float16", "long", "int64",
                                  "int32", "int", "int16", "short", "int8", "uint8", "bool"])
def test_dtype_names_mean_what_pytorchs_mean(name):
    ours, theirs = getattr(minicnn, name), getattr(torch, name)
    assert ours == np.dtype(str(theirs).removeprefix("torch."))
    assert minicnn.zeros(2, dtype=ours).dtype == ours
    assert minicnn.tensor([1, 0]).to(ours).dtype == ours


def test_tensor_dtype_conversions_match_pytorch():
    values = [[1.5, -2.25], [0.0, 3.0]]
    x, t = minicnn.tensor(values), torch.tensor(values)
    for method in ("float", "double", "long", "int", "bool", "half"):
        ours, theirs = getattr(x, method)(), getattr(t, method)()
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert x.float() is x and x.type(minicnn.float32) is x
    assert x.type() == "minicnn.FloatTensor" and x.long().type() == "minicnn.LongTensor"
    assert x.type(minicnn.float64).dtype == np.float64


def test_an_integer_copy_of_a_trained_tensor_leaves_the_graph():
    x = minicnn.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and x.double().requires_grad
    x.double().sum().backward()
    assert _grad(x).dtype == np.float32


# -- making tensors ----------------------------------------------------------------------------------------
def _same(ours, theirs, exact=True):
    assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
    assert ours.shape == tuple(theirs.shape)
    if exact:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("make", [
    lambda m: m.linspace(-math.pi, math.pi, 7),
    lambda m: m.linspace(0, 1, 5, dtype=m.float64),
    lambda m: m.linspace(3, 3, 1),
    lambda m: m.full((2, 3), 1.5),
    lambda m: m.full((2,), 7),
    lambda m: m.full((2,), True),
    lambda m: m.full((2, 2), 2, dtype=m.float64),
    lambda m: m.eye(3),
    lambda m: m.eye(2, 4, dtype=m.long),
    lambda m: m.as_tensor([1, 2]),
    lambda m: m.as_tensor([1.0, 2.0], dtype=m.float64),
    lambda m: m.tensor([[1, 2], [3, 4]], dtype=m.float32),
])
def test_creation_matches_pytorch(make):
    _same(make(minicnn), make(torch))


def test_linspace_values_match_a_plain_formula():
    ours = minicnn.linspace(-2.0, 3.0, 11, dtype=minicnn.float64).numpy()
    np.testing.assert_allclose(ours, [-2.0 + 5.0 * i / 10 for i in range(11)], rtol=0, atol=1e-15)


def test_random_creation_has_pytorchs_shapes_and_dtypes_and_repeats_with_the_seed():
    x = minicnn.tensor([[1.0, 2.0]], dtype=minicnn.float64)
    for make, low, high in [(lambda: minicnn.rand(3, 4), 0, 1), (lambda: minicnn.rand_like(x), 0, 1),
                            (lambda: minicnn.randn_like(x), -10, 10), (lambda: minicnn.empty(2, 3), None, None)]:
        minicnn.manual_seed(3)
        first = make()
        minicnn.manual_seed(3)
        second = make()
        if low is not None:
            np.testing.assert_array_equal(first.numpy(), second.numpy())
            assert low <= first.numpy().min() and first.numpy().max() < high
    assert minicnn.rand(3, 4).shape == (3, 4) and minicnn.rand(3, 4).dtype == np.float32
    assert minicnn.rand_like(x).dtype == np.float64 and minicnn.randn_like(x).shape == (1, 2)
    assert minicnn.empty((2, 3), dtype=minicnn.long).dtype == np.int64
    samples = minicnn.rand(20000).numpy()  # uniform on [0, 1): mean 1/2, variance 1/12
    assert abs(samples.mean() - 0.5) < 0.01 and abs(samples.var() - 1 / 12) < 0.005


def test_from_numpy_shares_memory_both_ways():
    array = np.arange(4.0)
    t = minicnn.from_numpy(array)
    assert t.dtype == np.float64  # as torch.from_numpy: the array's own dtype
    array[0] = 10.0
    t.array[1] = 20.0
    assert t.tolist() == [10.0, 20.0, 2.0, 3.0] and array[1] == 20.0
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        minicnn.from_numpy([1.0])


def test_as_tensor_shares_where_it_can_and_copies_where_it_must():
    array = np.ones(3, np.float32)
    assert minicnn.as_tensor(array).array is array
    assert minicnn.as_tensor(array, dtype=minicnn.float64).array is not array
    t = minicnn.tensor([1.0])
    assert minicnn.as_tensor(t) is t


@pytest.mark.parametrize("make,error,match", [
    (lambda: minicnn.full(3, 1.0), TypeError, r"full: size must be a tuple such as \(2, 3\), got 3"),
    (lambda: minicnn.full((2,), "a"), TypeError, r"full: fill_value must be a number, got str"),
    (lambda: minicnn.eye(-1), ValueError, r"eye: n must be a non-negative int, got -1"),
    (lambda: minicnn.linspace(0, 1, 2.5), ValueError, r"linspace: steps must be a non-negative int, got 2.5"),
    (lambda: minicnn.linspace("a", 1, 2), TypeError, r"linspace: start must be a number, got 'a'"),
    (lambda: minicnn.rand(2, dtype=minicnn.long), TypeError, r"rand: dtype must be floating-point, got int64"),
    (lambda: minicnn.rand_like(np.ones(2)), TypeError, r"rand_like: input must be a minicnn.Tensor, got ndarray"),
])
def test_bad_creation_arguments_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


# -- new ops: forward against plain loops, forward and backward against PyTorch ---------------------------
def _against_torch(ours, theirs, *arrays, rng):
    mine = [minicnn.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, y_ref = ours(*mine), theirs(*ref)
    g = rng.standard_normal(tuple(y_ref.shape))
    y.backward(minicnn.tensor(g))
    y_ref.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), y_ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(_grad(m), r.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,plain", [("sin", math.sin), ("cos", math.cos), ("tanh", math.tanh),
                                        ("sigmoid", lambda v: 1 / (1 + math.exp(-v)))])
def test_pointwise_functions_match_a_plain_loop_and_pytorch(rng, name, plain):
    x = rng.standard_normal((3, 4)) * 3
    x[0, :3] = [-40.0, 40.0, 0.0]  # sigmoid far out: no overflow
    ours = getattr(minicnn, name)(minicnn.tensor(x)).numpy()
    np.testing.assert_allclose(ours, [[plain(v) for v in row] for row in x], rtol=1e-14, atol=1e-300)
    assert getattr(minicnn.tensor(x, dtype=minicnn.float32), name)().dtype == np.float32
    _against_torch(getattr(F, name), getattr(torch, name), x, rng=rng)


def test_where_matches_a_plain_loop_and_pytorch(rng):
    a, b = rng.standard_normal((3, 1)), rng.standard_normal(4)
    y = minicnn.where(minicnn.tensor(a) > 0, minicnn.tensor(a), minicnn.tensor(b)).numpy()
    np.testing.assert_array_equal(y, [[a[i, 0] if a[i, 0] > 0 else b[j] for j in range(4)] for i in range(3)])
    _against_torch(lambda p, q: F.where(p > 0, p, q), lambda p, q: torch.where(p > 0, p, q), a, b, rng=rng)
    _against_torch(lambda p: F.where(p > 0, p, 0.5), lambda p: torch.where(p > 0, p, 0.5), a, rng=rng)


def test_where_rejects_a_condition_that_is_not_bool():
    x = minicnn.tensor([1.0, -1.0])
    with pytest.raises(TypeError, match="where: condition must be a bool Tensor .*got dtype float32"):
        minicnn.where(x, x, 0.0)
    with pytest.raises(ValueError, match=r"where: condition \(3,\), input \(2,\) and other \(2,\) do not broadcast"):
        minicnn.where(minicnn.tensor([True, False, True]), x, x)


def test_stack_and_cat_match_pytorch(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for dim in (0, 1, 2, -1):
        _against_torch(lambda p, q: minicnn.stack([p, q], dim), lambda p, q: torch.stack([p, q], dim), a, b, rng=rng)
    _against_torch(lambda p, q: minicnn.cat((p, q), 1), lambda p, q: torch.cat((p, q), 1), a, b, rng=rng)
    np.testing.assert_array_equal(minicnn.stack([minicnn.tensor(a), minicnn.tensor(b)]).numpy(), np.stack([a, b]))
    with pytest.raises(ValueError, match=r"stack: every tensor must have one shape; tensors\[1\] has \(3,\)"):
        minicnn.stack([minicnn.zeros(2), minicnn.zeros(3)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_a_plain_loop_and_pytorch(rng, reduction):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    squares = [(a[i, j] - b[i, j]) ** 2 for i in range(3) for j in range(4)]
    plain = {"mean": sum(squares) / 12, "sum": sum(squares), "none": np.reshape(squares, (3, 4))}[reduction]
    np.testing.assert_allclose(F.mse_loss(minicnn.tensor(a), minicnn.tensor(b), reduction).numpy(), plain, rtol=1e-13)
    _against_torch(lambda p, q: nn.MSELoss(reduction=reduction)(p, q),
                   lambda p, q: torch.nn.MSELoss(reduction=reduction)(p, q), a, b, rng=rng)
    z, y = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    picked = [-z[i, y[i]] for i in range(5)]
    plain = {"mean": sum(picked) / 5, "sum": sum(picked), "none": picked}[reduction]
    np.testing.assert_allclose(F.nll_loss(minicnn.tensor(z), y, reduction).numpy(), plain, rtol=1e-13)
    _against_torch(lambda p: nn.NLLLoss(reduction=reduction)(p, y),
                   lambda p: torch.nn.NLLLoss(reduction=reduction)(p, torch.tensor(y)), z, rng=rng)
    _against_torch(lambda p: nn.CrossEntropyLoss(reduction=reduction)(p, y),
                   lambda p: torch.nn.CrossEntropyLoss(reduction=reduction)(p, torch.tensor(y)), z, rng=rng)


def test_nll_of_log_softmax_is_cross_entropy(rng):
    z, y = minicnn.tensor(rng.standard_normal((6, 3))), rng.integers(0, 3, 6)
    np.testing.assert_allclose(F.nll_loss(nn.LogSoftmax(dim=1)(z), y).item(), F.cross_entropy(z, y).item(), rtol=1e-12)


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.mse_loss(minicnn.zeros(2), minicnn.zeros(3)), ValueError, r"mse_loss: target must have input's shape"),
    (lambda: F.mse_loss(minicnn.zeros(2), minicnn.zeros(2, dtype=minicnn.float64)), TypeError,
     r"mse_loss: target has dtype float64 but input has float32"),
    (lambda: F.nll_loss(minicnn.zeros(2, 3), [0, 3]), ValueError, r"nll_loss: target labels must lie in \[0, 3\)"),
    (lambda: F.nll_loss(minicnn.zeros(2, 3), [0.5, 1]), TypeError, r"nll_loss: target must hold integer class labels"),
    (lambda: F.mse_loss(minicnn.zeros(2), minicnn.zeros(2), "average"), ValueError,
     r"mse_loss: reduction must be 'mean', 'sum' or 'none', got 'average'"),
    (lambda: nn.CrossEntropyLoss(weight=minicnn.ones(3)), NotImplementedError, r"CrossEntropyLoss: weight"),
])
def test_bad_loss_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_softmax_modules_and_methods_match_pytorch(rng):
    x = rng.standard_normal((3, 5))
    for dim in (0, 1):
        _against_torch(lambda p: nn.Softmax(dim=dim)(p), lambda p: torch.nn.Softmax(dim=dim)(p), x, rng=rng)
        _against_torch(lambda p: nn.LogSoftmax(dim=dim)(p), lambda p: torch.nn.LogSoftmax(dim=dim)(p), x, rng=rng)
        _against_torch(lambda p: p.softmax(dim), lambda p: p.softmax(dim), x, rng=rng)
        _against_torch(lambda p: p.log_softmax(dim), lambda p: p.log_softmax(dim), x, rng=rng)
    _against_torch(lambda p: nn.Tanh()(p) + nn.Sigmoid()(p) + p.relu(), lambda p: p.tanh() + p.sigmoid() + p.relu(),
                   x, rng=rng)


# -- Tensor conveniences -------------------------------------------------------------------------------------
def test_tensor_methods_match_pytorch(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    _against_torch(lambda p, q: p.mm(q) + p.matmul(q) * 2, lambda p, q: p.mm(q) + p.matmul(q) * 2, a, b, rng=rng)
    _against_torch(lambda p: p.t(), lambda p: p.t(), a, rng=rng)
    _against_torch(lambda p: p.clone() * p, lambda p: p.clone() * p, a, rng=rng)
    c = rng.standard_normal((3, 4))
    _against_torch(lambda p, q: p.add(q, alpha=2).mul(p).sub(q, alpha=0.5).div(q.abs() + 1) + p.sin() * p.cos(),
                   lambda p, q: p.add(q, alpha=2).mul(p).sub(q, alpha=0.5).div(q.abs() + 1) + p.sin() * p.cos(),
                   a, c, rng=rng)
    for args in [(), (1,), (float("inf"),), ("fro",), (2, 1), (1, 0, True), (3,)]:
        _against_torch(lambda p: p.norm(*args), lambda p: p.norm(*args), a, rng=rng)
    np.testing.assert_allclose(minicnn.tensor(a).norm().item(), math.sqrt(sum(v * v for v in a.ravel())), rtol=1e-14)


def test_clone_is_a_copy_recorded_in_the_graph():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.array is not x.array and not y.is_leaf and y.requires_grad
    y.array[0] = 5.0
    assert x.tolist() == [1.0, 2.0]


def test_eq_ne_and_index():
    x = minicnn.tensor([1, 2, 3])
    assert x.eq(2).tolist() == [False, True, False] and x.ne(minicnn.tensor([1, 0, 3])).tolist() == [False, True, False]
    assert list(range(minicnn.tensor(3))) == [0, 1, 2] and [10, 20, 30][minicnn.tensor(1)] == 20
    with pytest.raises(TypeError, match="only integer tensors of one element can be used as an index, got dtype float32"):
        [1, 2][minicnn.tensor(1.0)]
    with pytest.raises(ValueError, match=r"__index__\(\) needs a one-element tensor, got shape \(2,\)"):
        range(minicnn.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"t\(\) needs a tensor of at most 2 dimensions, got shape \(1, 2, 3\)"):
        minicnn.zeros(1, 2, 3).t()


def test_functions_at_the_top_level_match_pytorch(rng):
    a = rng.standard_normal((3, 4))
    for name in ("sum", "mean", "exp", "sin", "cos", "tanh", "sigmoid", "flatten"):
        _against_torch(getattr(minicnn, name), getattr(torch, name), a, rng=rng)
    _against_torch(lambda p: minicnn.log(p.abs()) + minicnn.sqrt(p.abs()), lambda p: torch.log(p.abs()) + torch.sqrt(p.abs()),
                   a, rng=rng)
    _against_torch(lambda p: minicnn.max(p) + minicnn.min(p, 1).values.sum(), lambda p: torch.max(p) + torch.min(p, 1).values.sum(),
                   a, rng=rng)
    _against_torch(lambda p: minicnn.matmul(p, p.t()), lambda p: torch.matmul(p, p.t()), a, rng=rng)
    assert minicnn.argmax(minicnn.tensor(a), 1).tolist() == torch.argmax(torch.tensor(a), 1).tolist()


# -- grad mode ---------------------------------------------------------------------------------------------
def test_set_grad_enabled_and_enable_grad_follow_pytorch():
    x = minicnn.tensor([1.0], requires_grad=True)
    with minicnn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with minicnn.enable_grad():
            assert (x * 2).requires_grad
        assert not minicnn.is_grad_enabled()
    assert minicnn.is_grad_enabled()
    minicnn.set_grad_enabled(False)  # as a call: switches at once, until switched back
    try:
        assert not minicnn.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        minicnn.set_grad_enabled(True)
    assert (x * 2).requires_grad

    @minicnn.enable_grad()
    def doubled(v):
        return v * 2
    with minicnn.no_grad():
        assert doubled(x).requires_grad
    with pytest.raises(TypeError, match="set_grad_enabled: mode must be True or False, got 'no'"):
        minicnn.set_grad_enabled("no")


# -- save and load -------------------------------------------------------------------------------------------
def test_save_and_load_round_trip_nested_structures(tmp_path):
    model = nn.Linear(3, 2)
    obj = {"model": model.state_dict(), "epoch": 3, "lr": 0.5, "name": "run", "none": None, "flag": True,
           "history": [1.5, float("inf"), float("nan")], "pair": (minicnn.tensor([1, 2]), np.arange(3.0)),
           7: "int key", "w": minicnn.tensor([1.0], requires_grad=True)}
    path = tmp_path / "checkpoint.pt"
    minicnn.save(obj, path)
    loaded = minicnn.load(path)
    assert list(loaded) == list(obj) and list(loaded["model"]) == ["weight", "bias"]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(loaded["model"][name]), np.asarray(value))
        assert type(loaded["model"][name]) is (Tensor if isinstance(value, Tensor) else np.ndarray)
    assert (loaded["epoch"], loaded["lr"], loaded["name"], loaded["none"], loaded["flag"], loaded[7]) == \
        (3, 0.5, "run", None, True, "int key")
    assert loaded["history"][:2] == [1.5, float("inf")] and math.isnan(loaded["history"][2])
    assert isinstance(loaded["pair"], tuple) and loaded["pair"][0].tolist() == [1, 2]
    assert loaded["pair"][0].dtype == np.int64 and isinstance(loaded["pair"][1], np.ndarray)
    assert loaded["w"].requires_grad and not loaded["pair"][0].requires_grad


def test_a_saved_state_dict_loads_into_a_new_model(tmp_path):
    model, other = nn.Linear(4, 3), nn.Linear(4, 3)
    minicnn.save(model.state_dict(), tmp_path / "model.pth")
    other.load_state_dict(minicnn.load(tmp_path / "model.pth"))
    x = minicnn.randn(2, 4)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


def test_save_writes_atomically_and_keeps_the_old_file_when_it_fails(tmp_path):
    path = tmp_path / "model.pt"
    minicnn.save({"a": 1}, path)
    with pytest.raises(TypeError, match=r"save: obj\['model'\] is a Linear, which minicnn.save cannot store.*"
                                        r"save its state_dict\(\) instead"):
        minicnn.save({"a": 2, "model": nn.Linear(1, 1)}, path)
    assert minicnn.load(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary file left behind


def test_save_and_load_work_on_file_objects_and_map_location():
    buffer = io.BytesIO()
    minicnn.save([minicnn.tensor([1.0, 2.0])], buffer)
    buffer.seek(0)
    (t,) = minicnn.load(buffer, map_location=minicnn.device("cpu"))
    assert t.tolist() == [1.0, 2.0] and t.device == "cpu"


def test_load_runs_no_code_and_refuses_other_files(tmp_path):
    pickled = tmp_path / "torch.pt"
    torch.save({"w": torch.ones(2)}, pickled)  # a zip holding a pickle
    with pytest.raises(ValueError, match="is a zip file, but not one written by minicnn.save"):
        minicnn.load(pickled)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a file written by minicnn.save"):
        minicnn.load(plain)
    # an array stored as an object array (a pickle) inside our own format is refused by NumPy's allow_pickle=False
    crafted = tmp_path / "crafted.pt"
    minicnn.save({"w": np.zeros(1)}, crafted)
    with zipfile.ZipFile(crafted) as archive:
        structure = archive.read("structure.json")
    with zipfile.ZipFile(crafted, "w") as archive:
        archive.writestr("structure.json", structure)
        payload = io.BytesIO()
        np.save(payload, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        archive.writestr("arrays/0.npy", payload.getvalue())
    with pytest.raises(ValueError, match="allow_pickle"):
        minicnn.load(crafted)
    with pytest.raises(ValueError, match="device must be"):
        minicnn.load(crafted, map_location="tpu")


# -- optimizers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, {"lr": 0.05, "alpha": 0.9}, {"momentum": 0.8, "weight_decay": 0.1},
                                     {"centered": True, "eps": 1e-6}, {"centered": True, "momentum": 0.5}])
def test_rmsprop_matches_pytorch(rng, options):
    w0, b0 = rng.standard_normal((3, 4)), rng.standard_normal(3)
    ours = [minicnn.tensor(w0, requires_grad=True), minicnn.tensor(b0, requires_grad=True)]
    theirs = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    opt, opt_ref = optim.RMSprop(ours, **options), torch.optim.RMSprop(theirs, **options)
    for step in range(4):
        x = rng.standard_normal((5, 4))
        for (w, b), tensor, o in [(ours, minicnn.tensor, opt), (theirs, torch.tensor, opt_ref)]:
            o.zero_grad()
            ((tensor(x) @ w.t() + b) ** 2).sum().backward()
            o.step()
        for m, r in zip(ours, theirs):
            np.testing.assert_allclose(m.numpy(), r.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_param_groups_hold_the_options_and_changing_lr_changes_the_step():
    w = minicnn.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.0)
    group = opt.param_groups[0]
    assert group["params"] == [w] and group["lr"] == 0.1 and group["momentum"] == 0.0
    group["lr"] = 0.5  # as a PyTorch scheduler does
    (w * 2).sum().backward()
    opt.step()
    assert w.item() == pytest.approx(1.0 - 0.5 * 2)
    opt.lr = 0.25
    assert opt.param_groups[0]["lr"] == 0.25
    adam = optim.Adam([minicnn.tensor([1.0], requires_grad=True)], betas=(0.8, 0.9))
    assert adam.param_groups[0]["betas"] == (0.8, 0.9) and adam.param_groups[0]["lr"] == 1e-3
    with pytest.raises(TypeError, match="SGD: params must be tensors; minicnn has one parameter group"):
        optim.SGD([{"params": [w]}], lr=0.1)


def test_a_scheduler_sees_a_learning_rate_set_through_param_groups():
    w = minicnn.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    opt.param_groups[0]["lr"] = 0.5
    scheduler = optim.StepLR(opt, step_size=1, gamma=0.1)
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


# -- datasets and loaders ------------------------------------------------------------------------------------
def test_tensor_dataset_and_data_loader_batch_in_order():
    x, y = minicnn.arange(20, dtype=minicnn.float32).reshape(10, 2), minicnn.arange(10)
    dataset = TensorDataset(x, y)
    assert len(dataset) == 10 and dataset[3][0].tolist() == [6.0, 7.0] and dataset[3][1].item() == 3
    loader = DataLoader(dataset, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 2) and batches[0][1].dtype == np.int64
    assert len(DataLoader(dataset, batch_size=4, drop_last=True)) == 2
    assert [b[1].tolist() for b in DataLoader(dataset, batch_size=4, drop_last=True)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffling_covers_every_sample_once_and_repeats_with_the_seed():
    dataset = TensorDataset(minicnn.arange(50))
    loader = DataLoader(dataset, batch_size=8, shuffle=True)
    minicnn.manual_seed(0)
    first = [v for (b,) in loader for v in b.tolist()]
    second = [v for (b,) in loader for v in b.tolist()]
    minicnn.manual_seed(0)
    again = [v for (b,) in loader for v in b.tolist()]
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert first == again and first != second  # a new order each epoch, the same with the same seed


def test_collating_a_custom_dataset_as_pytorch_does():
    class Pairs(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"image": np.full((2, 2), i, np.float32), "label": i, "weight": 0.5 * i, "name": f"s{i}"}

    batch = next(iter(DataLoader(Pairs(), batch_size=3)))
    assert batch["image"].shape == (3, 2, 2) and batch["label"].dtype == np.int64
    assert batch["weight"].dtype == np.float64 and batch["name"] == ["s0", "s1", "s2"]
    theirs = torch.utils.data.default_collate([Pairs()[i] for i in range(3)])
    assert str(theirs["weight"].dtype) == "torch.float64" and str(theirs["label"].dtype) == "torch.int64"


@pytest.mark.parametrize("make,error,match", [
    (lambda: TensorDataset(minicnn.zeros(3), minicnn.zeros(4)), ValueError, r"tensors\[1\] has 4, tensors\[0\] has 3"),
    (lambda: TensorDataset(np.zeros(3)), TypeError, r"TensorDataset: tensors\[0\] must be a Tensor"),
    (lambda: DataLoader(TensorDataset(minicnn.zeros(3)), batch_size=0), ValueError, r"batch_size must be a positive int"),
    (lambda: DataLoader(5), TypeError, r"DataLoader: dataset must have __getitem__ and __len__, got int"),
])
def test_bad_data_arguments_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_masks_combine_with_and_or_xor_not_as_in_pytorch():
    values = [[-1.0, 0.5, 2.0], [3.0, -0.2, 0.0]]
    x, t = minicnn.tensor(values), torch.tensor(values)
    for combine in (lambda v: (v > 0) & (v < 2.5), lambda v: (v > 0) | (v == 0), lambda v: (v > 0) ^ (v > 1),
                    lambda v: ~(v > 0), lambda v: (v > 0) & True, lambda v: v.long() & 1, lambda v: ~v.long()):
        ours, theirs = combine(x), combine(t)
        assert ours.tolist() == theirs.tolist() and ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch."))
    with pytest.raises(TypeError, match="unsupported operand"):
        x & x
    with pytest.raises(TypeError, match="~ needs a bool or integer tensor, got dtype float32"):
        ~x


def test_a_parameter_made_from_a_tensor_shares_its_values():
    t = minicnn.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.array is t.array and p.requires_grad and not nn.Parameter(t, requires_grad=False).requires_grad


def test_load_takes_pytorchs_weights_only_and_refuses_to_unpickle(tmp_path):
    minicnn.save({"a": 1}, tmp_path / "f.pt")
    assert minicnn.load(tmp_path / "f.pt", weights_only=True) == {"a": 1}
    with pytest.raises(ValueError, match="load: weights_only must be True"):
        minicnn.load(tmp_path / "f.pt", weights_only=False)


def test_the_2_norm_of_a_zero_vector_has_pytorchs_zero_gradient(rng):
    values = np.zeros((2, 3))
    values[1] = rng.standard_normal(3)
    _against_torch(lambda p: p.norm(dim=1), lambda p: p.norm(dim=1), values, rng=rng)
    _against_torch(lambda p: p.norm(dim=(0, 1), keepdim=True), lambda p: p.norm(dim=(0, 1), keepdim=True), values,
                   rng=rng)
    _against_torch(lambda p: p.norm(), lambda p: p.norm(), np.zeros(4), rng=rng)


def test_requires_grad_false_freezes_a_parameter_as_in_pytorch():
    layer = nn.Linear(2, 1)
    for param in layer.parameters():
        assert param.requires_grad_(False) is param
    assert [p.requires_grad for p in layer.parameters()] == [False, False]
    assert not layer(minicnn.ones(1, 2)).requires_grad


def test_a_tensors_device_name_compares_with_a_device_as_in_pytorch():
    x = minicnn.zeros(2)
    assert x.device == minicnn.device("cpu") and minicnn.device("cpu") == x.device
    assert torch.zeros(2).device == torch.device("cpu")
    assert minicnn.device("cuda:0") == "gpu:0" and minicnn.device("cuda:1") != "gpu:0"
    assert minicnn.device("cuda") != "gpu:0"  # as torch.device("cuda") != a tensor's torch.device("cuda:0")
    assert minicnn.device("cpu") != "not a device" and minicnn.device("cpu") != 3


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_takes_pytorchs_set_to_none(rng, set_to_none):
    w0 = rng.standard_normal(3)
    ours, theirs = minicnn.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    after_zero_grad = []
    for w, o, module in [(ours, optim.SGD([ours], lr=0.1), nn.Linear(3, 1)),
                         (theirs, torch.optim.SGD([theirs], lr=0.1), torch.nn.Linear(3, 1))]:
        (w * w).sum().backward()
        module(w.float().reshape(1, 3)).sum().backward()
        o.zero_grad(set_to_none=set_to_none)
        module.zero_grad(set_to_none=set_to_none)
        after_zero_grad.append([None if t.grad is None else np.asarray(t.grad).tolist()
                                for t in (w, module.weight, module.bias)])
        (w * 3).sum().backward()
        o.step()
    assert after_zero_grad[0] == after_zero_grad[1]
    assert (after_zero_grad[0][0] is None) == set_to_none
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
