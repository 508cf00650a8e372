"""The conv + batch-norm fold: minicnn.nn.utils.fusion (PyTorch's torch.nn.utils.fusion) and ConvBNReLU's
inference, which uses it (models/googlenet.py).

The fused weights against a per-channel loop in float64 and against PyTorch on the same numbers; the
folded unit against its unfolded path; the cases that must not fold (grad on, training, hooks); the
kept folded weights made again when what they come from changes; the device operations of an
inference on the CuPy stand-in.
"""
import copy

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim
from minicnn.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights
from models.googlenet import ConvBNReLU, GoogLeNet
from helpers import on_cupy_standin, tensor


def conv_bn_numbers(rng, out_channels=4, in_channels=3, kernel=(3, 2), dtype=np.float64):
    """conv_w, conv_b, running mean, running var, gamma, beta: arrays of a conv (O, I, kh, kw) and its batch norm."""
    normal = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    return (normal(out_channels, in_channels, *kernel), normal(out_channels), normal(out_channels),
            rng.uniform(0.2, 3.0, out_channels).astype(dtype), normal(out_channels), normal(out_channels))


def fold_by_loop(w, b, mean, var, eps, gamma, beta, transpose):
    """The fold one output channel at a time, as the formula reads (None: b 0, gamma 1, beta 0)."""
    channels = w.shape[1 if transpose else 0]
    b = np.zeros(channels) if b is None else b
    gamma = np.ones(channels) if gamma is None else gamma
    beta = np.zeros(channels) if beta is None else beta
    fused_w, fused_b = w.copy(), np.empty(channels)
    for o in range(channels):
        scale = gamma[o] / np.sqrt(var[o] + eps)
        if transpose:
            fused_w[:, o] = w[:, o] * scale
        else:
            fused_w[o] = w[o] * scale
        fused_b[o] = (b[o] - mean[o]) * scale + beta[o]
    return fused_w, fused_b


def optional(arrays, given):
    """``arrays`` (conv_w, conv_b, mean, var, gamma, beta), with conv_b, gamma and beta None unless ``given``."""
    w, b, mean, var, gamma, beta = arrays
    return w, (b if given else None), mean, var, (gamma if given else None), (beta if given else None)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("given", [True, False], ids=["all-given", "bias-gamma-beta-none"])
def test_fused_weights_match_a_per_channel_loop(rng, transpose, given):
    w, b, mean, var, gamma, beta = optional(conv_bn_numbers(rng, 4, 4), given)
    as_tensor = lambda a: None if a is None else tensor(a)  # noqa: E731
    fused_w, fused_b = fuse_conv_bn_weights(as_tensor(w), as_tensor(b), tensor(mean), tensor(var), 1e-3,
                                            as_tensor(gamma), as_tensor(beta), transpose=transpose)
    want_w, want_b = fold_by_loop(w, b, mean, var, 1e-3, gamma, beta, transpose)
    np.testing.assert_allclose(fused_w.array, want_w, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(fused_b.array, want_b, rtol=1e-14, atol=1e-15)
    assert isinstance(fused_w, nn.Parameter) and fused_w.dtype == np.float64 and fused_b.shape == (4,)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("given", [True, False], ids=["all-given", "bias-gamma-beta-none"])
@pytest.mark.parametrize("requires_grad", [True, False])
def test_fused_weights_match_pytorchs(rng, transpose, given, requires_grad):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import fusion as torch_fusion
    arrays = optional(conv_bn_numbers(rng, 4, 4, dtype=np.float32), given)

    def make(convert):
        w, b, *rest = [None if a is None else convert(a) for a in arrays]
        return [w, b] + rest

    ours = make(lambda a: tensor(a, requires_grad=requires_grad))
    theirs = make(lambda a: torch.tensor(a, requires_grad=requires_grad))
    ours_w, ours_b = fuse_conv_bn_weights(*ours[:4], 1e-3, *ours[4:], transpose=transpose)
    their_w, their_b = torch_fusion.fuse_conv_bn_weights(*theirs[:4], 1e-3, *theirs[4:], transpose=transpose)
    for mine, pytorchs in ((ours_w, their_w), (ours_b, their_b)):
        np.testing.assert_allclose(mine.array, pytorchs.detach().numpy(), rtol=1e-6, atol=1e-6)
        assert (mine.dtype, mine.requires_grad, mine.creator) == (np.float32, pytorchs.requires_grad, None)


def conv_and_batch_norm(rng, dtype=np.float64, bias=False):
    """A Conv2d (8 -> 4, 3x3, padding 1) and a BatchNorm2d with running statistics and affine parameters set."""
    conv = nn.Conv2d(8, 4, 3, padding=1, bias=bias).to(dtype=dtype)
    bn = nn.BatchNorm2d(4, eps=1e-3).to(dtype=dtype)
    _, _, mean, var, gamma, beta = conv_bn_numbers(rng, dtype=dtype)
    bn.load_state_dict({"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var})
    return conv, bn


@pytest.mark.parametrize("bias", [False, True])
def test_fuse_conv_bn_eval_matches_the_layers_it_replaces_and_pytorchs(rng, bias):
    conv, bn = conv_and_batch_norm(rng, np.float32, bias)
    conv.eval(), bn.eval()
    fused = fuse_conv_bn_eval(conv, bn)
    x = tensor(rng.standard_normal((2, 8, 5, 5)).astype(np.float32))
    np.testing.assert_allclose(fused(x).array, bn(conv(x)).array, rtol=1e-5, atol=1e-5)
    assert isinstance(fused, nn.Conv2d) and fused is not conv and fused.bias is not None
    assert fused.stride == conv.stride and fused.padding == conv.padding

    torch = pytest.importorskip("torch")
    from torch.nn.utils import fusion as torch_fusion
    their_conv, their_bn = torch.nn.Conv2d(8, 4, 3, padding=1, bias=bias), torch.nn.BatchNorm2d(4, eps=1e-3)
    their_conv.load_state_dict({name: torch.tensor(value.array) for name, value in conv.state_dict().items()})
    their_bn.load_state_dict({name: torch.tensor(value.array) for name, value in bn.state_dict().items()},
                             strict=False)  # PyTorch's num_batches_tracked is not ours
    their_fused = torch_fusion.fuse_conv_bn_eval(their_conv.eval(), their_bn.eval())
    np.testing.assert_allclose(fused.weight.array, their_fused.weight.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.bias.array, their_fused.bias.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_fuse_conv_bn_eval_leaves_its_arguments_alone(rng):
    conv, bn = conv_and_batch_norm(rng)
    conv.eval(), bn.eval()
    before = [value.array.copy() for value in list(conv.state_dict().values()) + list(bn.state_dict().values())]
    fused = fuse_conv_bn_eval(conv, bn)
    after = [value.array for value in list(conv.state_dict().values()) + list(bn.state_dict().values())]
    assert conv.bias is None and fused.weight is not conv.weight
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("change,error,match", [
    ("train conv", AssertionError, r"fuse_conv_bn_eval: fusion only for eval.*conv.training is True"),
    ("train bn", AssertionError, r"fuse_conv_bn_eval: fusion only for eval.*bn.training is True"),
    ("no running statistics", AssertionError, r"bn.running_mean and bn.running_var must not be None"),
    ("transpose", ValueError, r"transpose must be False \(minicnn has no transposed convolution\), got True"),
    ("not a conv", TypeError, r"conv must be an nn.Conv2d, got Linear"),
])
def test_fuse_conv_bn_eval_refuses_what_it_cannot_fold(rng, change, error, match):
    conv, bn = conv_and_batch_norm(rng)
    conv.eval(), bn.eval()
    kwargs = {}
    if change == "train conv":
        conv.train()
    elif change == "train bn":
        bn.train()
    elif change == "no running statistics":
        bn.running_mean = None
    elif change == "transpose":
        kwargs["transpose"] = True
    elif change == "not a conv":
        conv = nn.Linear(3, 4)
    with pytest.raises(error, match=match):
        fuse_conv_bn_eval(conv, bn, **kwargs)


@pytest.mark.parametrize("argument,make,error,match", [
    ("conv_w", lambda: np.ones((4, 3, 3, 3)), TypeError,
     r"conv_w must be a floating-point minicnn.Tensor .*got ndarray"),
    ("conv_w", lambda: tensor(np.ones((4, 3))), TypeError,
     r"conv_w must be .*\(out_channels, in_channels, \*kernel_size\), got shape \(4, 3\)"),
    ("bn_rm", lambda: None, TypeError, r"bn_rm must be a minicnn.Tensor of shape \(4,\), got NoneType"),
    ("bn_rv", lambda: tensor(np.ones(5)), ValueError,
     r"bn_rv must be a floating-point tensor of shape \(4,\).*got shape \(5,\)"),
    ("conv_b", lambda: tensor(np.ones(5)), ValueError,
     r"conv_b must be a floating-point tensor of shape \(4,\).*got shape \(5,\)"),
    ("bn_eps", lambda: -1.0, ValueError, r"bn_eps must be a number >= 0, got -1.0"),
    ("transpose", lambda: "yes", TypeError, r"transpose must be True or False, got 'yes'"),
])
def test_fuse_conv_bn_weights_names_a_bad_argument(rng, argument, make, error, match):
    w, b, mean, var, gamma, beta = (tensor(a) for a in conv_bn_numbers(rng))
    arguments = dict(conv_w=w, conv_b=b, bn_rm=mean, bn_rv=var, bn_eps=1e-3, bn_w=gamma, bn_b=beta, transpose=False)
    arguments[argument] = make()
    with pytest.raises(error, match=match):
        fuse_conv_bn_weights(**arguments)


# -- ConvBNReLU's inference ----------------------------------------------------------------------------
def trained_unit(rng, dtype=np.float64, device="cpu"):
    """A ConvBNReLU (8 -> 4, 3x3, padding 1) whose batch norm has statistics and affine parameters of its own."""
    unit = ConvBNReLU(8, 4, 3, padding=1).to(dtype=dtype)
    _, _, mean, var, gamma, beta = conv_bn_numbers(rng, dtype=dtype)
    unit.bn.load_state_dict({"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var})
    return unit.to(device)


def unfolded(unit, x):
    """The unit's output by its unfolded path: the convolution, then the batch norm and the ReLU."""
    with minicnn.no_grad():
        return unit.bn(unit.conv(x), relu=True)


@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_inference_folds_and_gives_the_unfolded_output(rng, dtype, tolerance):
    unit = trained_unit(rng, dtype).eval()
    x = tensor(rng.standard_normal((2, 8, 6, 6)).astype(dtype))
    with_grad = unit(x)  # grad on: the unfolded path, recorded
    assert unit._fold is None and with_grad.creator is not None
    with minicnn.no_grad():
        folded = unit(x)
    assert unit._fold is not None  # it folded
    scale = np.abs(with_grad.array).max()
    np.testing.assert_allclose(folded.array, with_grad.array, rtol=tolerance, atol=tolerance * scale)
    np.testing.assert_allclose(folded.array, unfolded(unit, x).array, rtol=tolerance, atol=tolerance * scale)
    assert folded.array.min() == 0  # the ReLU ran (the numbers give negative pre-activations)


@pytest.mark.parametrize("hooked", ["bn", "conv"])
def test_a_hook_on_the_conv_or_the_batch_norm_is_still_called(rng, hooked):
    unit = trained_unit(rng).eval()
    calls = []
    getattr(unit, hooked).register_forward_hook(lambda module, args, output: calls.append(output.shape))
    x = tensor(rng.standard_normal((2, 8, 6, 6)))
    with minicnn.no_grad():
        output = unit(x)
    assert calls == [(2, 4, 6, 6)] and unit._fold is None
    np.testing.assert_array_equal(output.array, unfolded(unit, x).array)


def test_training_mode_is_unchanged_by_the_fold(rng):
    """In training the batch norm uses the batch's statistics and updates the running ones, with grad on or off."""
    unit = trained_unit(rng)
    twin, statistics = copy.deepcopy(unit), unit.bn.running_mean.array.copy()
    x = tensor(rng.standard_normal((2, 8, 6, 6)))
    with minicnn.no_grad():
        output = unit(x)
        expected = twin.bn(twin.conv(x), relu=True)
    assert unit._fold is None
    np.testing.assert_array_equal(output.array, expected.array)
    np.testing.assert_array_equal(unit.bn.running_mean.array, twin.bn.running_mean.array)
    assert not np.allclose(unit.bn.running_mean.array, statistics)


def changes():
    """Ways the tensors the fold reads change after a fold: each must make the next inference fold again."""
    def optimizer_step(unit, rng):
        opt = optim.SGD(unit.parameters(), lr=0.5)
        unit.train()
        unit(tensor(rng.standard_normal((2, 8, 6, 6)))).sum().backward()
        opt.step()  # also the running statistics: training mode updated them
        unit.eval()

    def optimizer_step_in_eval(unit, rng):
        opt = optim.SGD(unit.parameters(), lr=0.5)
        unit(tensor(rng.standard_normal((2, 8, 6, 6)))).sum().backward()  # grad on: unfolded, statistics fixed
        opt.step()

    def load_state_dict(unit, rng):
        unit.load_state_dict(trained_unit(rng).state_dict())

    def training_statistics(unit, rng):
        unit.train()
        with minicnn.no_grad():
            unit(tensor(rng.standard_normal((2, 8, 6, 6))))
        unit.eval()

    def in_place(unit, rng):
        with minicnn.no_grad():
            unit.bn.running_var.mul_(4.0)

    def replaced(unit, rng):
        unit.bn.weight = nn.Parameter(rng.standard_normal(4))

    def array_replaced(unit, rng):  # as .to(device) does: the same Parameter, a new array
        unit.conv.weight.array = unit.conv.weight.array * 2

    def initialised(unit, rng):
        nn.init.normal_(unit.conv.weight)

    def eps(unit, rng):
        unit.bn.eps = 0.5

    return [optimizer_step, optimizer_step_in_eval, load_state_dict, training_statistics, in_place, replaced,
            array_replaced, initialised, eps]


@pytest.mark.parametrize("change", changes(), ids=lambda change: change.__name__)
def test_the_kept_folded_weights_follow_every_change(rng, change):
    unit = trained_unit(rng).eval()
    x = tensor(rng.standard_normal((2, 8, 6, 6)))
    with minicnn.no_grad():
        before = unit(x).array.copy()
    change(unit, rng)
    with minicnn.no_grad():
        after = unit(x).array
    expected = unfolded(unit, x).array
    assert not np.allclose(expected, before)  # the change changed the output
    np.testing.assert_allclose(after, expected, rtol=1e-12, atol=1e-12)


def test_a_repeated_inference_reuses_the_folded_weights(rng):
    unit = trained_unit(rng).eval()
    x = tensor(rng.standard_normal((2, 8, 6, 6)))
    with minicnn.no_grad():
        unit(x)
        kept = unit._fold[2]
        unit(x)
    assert unit._fold[2] is kept


def test_an_optimizer_step_and_load_state_dict_count_as_in_place_changes(rng):
    """PyTorch's ``_version``: its optimizers and load_state_dict change parameters in place (add_, copy_)."""
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    layer(tensor(np.ones((1, 3), np.float32))).sum().backward()
    versions = [p._version for p in layer.parameters()]
    opt.step()
    assert [p._version for p in layer.parameters()] == [v + 1 for v in versions]
    layer.load_state_dict(layer.state_dict())
    assert [p._version for p in layer.parameters()] == [v + 2 for v in versions]


# -- on the GPU code path -------------------------------------------------------------------------------
@pytest.mark.gpu
def test_the_fold_runs_on_the_gpu_path(rng):
    unit = trained_unit(rng, np.float32, "gpu").eval()
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    with minicnn.no_grad():
        folded = unit(tensor(x, "gpu"))
    assert unit._fold is not None and minicnn.backend.is_gpu_array(folded.array)
    expected = unfolded(unit.to("cpu"), tensor(x)).array
    np.testing.assert_allclose(minicnn.backend.as_numpy(folded.array), expected, rtol=2e-6, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not on_cupy_standin(), reason="counts need the CuPy stand-in (real CuPy counts nothing)")
def test_a_folded_googlenet_inference_costs_no_more_device_operations():
    """A repeated inference of the BN GoogLeNet reuses the folded weights: the conv's bias and ReLU replace
    the batch norm's kernels, no more operations than the unfolded inference makes, and nothing read back."""
    from minicnn import backend
    minicnn.manual_seed(0)
    model = GoogLeNet(10, stem="cifar", norm="bn", width=1 / 8).to("gpu").eval()
    x = tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32), "gpu")

    def inference_counts():
        with minicnn.no_grad():
            model(x)  # the first one folds (and uploads constants)
            before = backend.device_counts()
            model(x)
        return {kind: count - before[kind] for kind, count in backend.device_counts().items()}

    folded = inference_counts()
    units = [module for name, module in model.named_modules()
             if isinstance(module, ConvBNReLU) and not name.startswith("aux")]  # the aux heads run only in training
    assert len(units) == 57 and all(unit._fold is not None for unit in units)  # 3 in the stem, 6 in each of 9 blocks
    for unit in units:  # a hook that changes nothing makes each unit take the unfolded path
        unit.bn.register_forward_hook(lambda module, args, output: None)
    unfolded_counts = inference_counts()
    assert folded["device_ops"] <= unfolded_counts["device_ops"]
    assert folded["syncs"] == folded["uploads"] == 0
