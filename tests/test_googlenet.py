"""GoogLeNet (models/googlenet.py) and its layer table (models/summary.py).

Full-size models are built (float32, CPU) to count parameters and to run one
image through for the stage shapes; gradient checks and behaviour tests use a
small ``width``: the same topology with fewer channels.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import Tensor, backend, nn, optim
from models.googlenet import (INCEPTION_TABLE, NORMS, ConvBNReLU, ConvReLU, GoogLeNet, Inception, googlenet_loss,
                              scale_channels)
from models.summary import flatten_records, main as summary_main, record_outputs, summarize
from helpers import on_cupy_standin, tensor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = 1 / 16  # 3a becomes (4, 6, 8, 1, 2, 2): every branch still has channels


def images(rng, batch, side, dtype=np.float32):
    return tensor(rng.standard_normal((batch, 3, side, side)).astype(dtype))


def run_recorded(model, x):
    """Run model(x) without gradients.

    Returns:
        ({dotted name: output shape} of every module call, names of the top-level calls in order, output).
    """
    with minicnn.no_grad(), record_outputs(model) as records:
        output = model(x)
    shapes = {record.name: tuple(record.output.shape) for _, record in flatten_records(records)}
    return shapes, [record.name for record in records], output


def with_random_heads(model):
    """He-initialise the heads' last layers too (GoogLeNet starts them at zero). With zero heads
    every output is 0 and no gradient reaches the layers below: a test of outputs or gradients
    would compare zeros with zeros."""
    for layer in model.classifiers():
        nn.init.kaiming_normal_(layer.weight)
    return model


def randomize_biases(model, rng):
    """Small positive biases (the default is 0): no unit sits exactly on ReLU's kink at 0.

    With zero biases, a convolution fed only zeros (a dead channel before it)
    outputs exactly 0, where the one-sided differences of a gradient check disagree.
    """
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.array[...] = rng.uniform(0.05, 0.15, p.shape)


# -- Shapes at every stage ---------------------------------------------------------------------
# Table 1 of the paper: channels of each stage's output (at width 1) ...
STAGE_CHANNELS = {"stem": 192, "inception3a": 256, "inception3b": 480, "maxpool3": 480,
                  "inception4a": 512, "inception4b": 512, "inception4c": 512, "inception4d": 528,
                  "inception4e": 832, "maxpool4": 832, "inception5a": 832, "inception5b": 1024}
# ... and the side of the maps: stem/stage 3, stage 4, stage 5.
STAGE_SIDES = {"imagenet": (28, 14, 7), "cifar": (32, 16, 8)}
CALL_ORDER = ["stem", "inception3a", "inception3b", "maxpool3", "inception4a", "aux1", "inception4b",
              "inception4c", "inception4d", "aux2", "inception4e", "maxpool4", "inception5a", "inception5b",
              "avgpool", "flatten", "dropout", "fc"]
# Each layer of the stem: (type, output channels, output side).
STEM_LAYERS = {
    ("imagenet", "lrn"): [("ConvReLU", 64, 112), ("MaxPool2d", 64, 56), ("LocalResponseNorm", 64, 56),
                          ("ConvReLU", 64, 56), ("ConvReLU", 192, 56), ("LocalResponseNorm", 192, 56),
                          ("MaxPool2d", 192, 28)],
    ("imagenet", "bn"): [("ConvBNReLU", 64, 112), ("MaxPool2d", 64, 56), ("ConvBNReLU", 64, 56),
                         ("ConvBNReLU", 192, 56), ("MaxPool2d", 192, 28)],
    ("cifar", "lrn"): [("ConvReLU", 64, 32), ("LocalResponseNorm", 64, 32), ("ConvReLU", 64, 32),
                       ("ConvReLU", 192, 32), ("LocalResponseNorm", 192, 32)],
    ("cifar", "bn"): [("ConvBNReLU", 64, 32), ("ConvBNReLU", 64, 32), ("ConvBNReLU", 192, 32)],
}


def expected_stage_shapes(stem, batch, num_classes, channels=STAGE_CHANNELS):
    side3, side4, side5 = STAGE_SIDES[stem]
    side = {"stem": side3, "inception3a": side3, "inception3b": side3, "maxpool4": side5,
            "inception5a": side5, "inception5b": side5}
    shapes = {name: (batch, c, side.get(name, side4), side.get(name, side4)) for name, c in channels.items()}
    shapes.update({"avgpool": (batch, channels["inception5b"], 1, 1), "flatten": (batch, channels["inception5b"]),
                   "aux1.pool": (batch, channels["inception4a"], 4, 4),
                   "aux2.pool": (batch, channels["inception4d"], 4, 4),
                   "aux1": (batch, num_classes), "aux2": (batch, num_classes), "fc": (batch, num_classes)})
    return shapes


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
@pytest.mark.parametrize("norm", NORMS)
def test_every_stage_has_the_papers_output_shape(rng, stem, norm):
    model = GoogLeNet(num_classes=10, stem=stem, norm=norm)  # training mode: the aux heads run too
    side = model.input_size
    shapes, order, outputs = run_recorded(model, images(rng, 1, side))
    assert order == CALL_ORDER  # aux1 reads 4a's output and aux2 4d's
    for name, shape in expected_stage_shapes(stem, 1, 10).items():
        assert shapes[name] == shape, name
    stem_layers = [(type(model.stem[i]).__name__, shapes[f"stem.{i}"][1], shapes[f"stem.{i}"][2])
                   for i in range(len(model.stem))]
    assert stem_layers == STEM_LAYERS[stem, norm]
    assert [o.shape for o in outputs] == [(1, 10)] * 3


def test_width_scales_every_channel_count_but_not_the_classes(rng):
    width = 0.3  # rounds both ways: 64 * 0.3 = 19.2 -> 19, 96 * 0.3 = 28.8 -> 29
    model = GoogLeNet(num_classes=7, width=width)
    shapes, _, _ = run_recorded(model, images(rng, 2, 224))
    channels = {"stem": 58}  # 192 * 0.3 = 57.6
    channels.update({f"inception{name}": spec.scaled(width).out_channels
                     for name, spec in INCEPTION_TABLE.items()})
    channels["maxpool3"], channels["maxpool4"] = channels["inception3b"], channels["inception4e"]
    assert channels["inception3a"] == 19 + 38 + 10 + 10  # 64, 128, 32, 32 scaled
    for name, shape in expected_stage_shapes("imagenet", 2, 7, channels).items():
        assert shapes[name] == shape, name
    assert shapes["stem.0"] == (2, 19, 112, 112)
    assert shapes["inception3a.branch2.0"][1] == 29 and shapes["inception3a.branch3.0"][1] == 5
    assert shapes["aux1.conv"] == (2, 38, 4, 4) and shapes["aux2.fc1"] == (2, 307, )  # 128 and 1024 scaled


@pytest.mark.parametrize("channels,width,expected", [
    (64, 1.0, 64), (6, 0.25, 2), (10, 0.25, 3), (3, 0.5, 2), (10, 0.01, 1), (1024, 0.3, 307)])
def test_scale_channels_rounds_half_up_and_keeps_at_least_one(channels, width, expected):
    assert scale_channels(channels, width) == expected


# -- Parameter counts and the architecture's details -----------------------------------------
@pytest.mark.parametrize("kwargs,expected", [
    (dict(), 13_378_280),
    (dict(aux=False), 6_998_552),
    (dict(norm="bn"), 13_385_816),
    (dict(stem="cifar", num_classes=10), 10_326_350),
    (dict(stem="cifar", num_classes=10, norm="bn"), 10_333_886),
])
def test_parameter_counts_match_the_issue(kwargs, expected):
    assert nn.count_parameters(GoogLeNet(**kwargs)) == expected


def test_aux_parameters_are_named_aux_and_are_the_difference():
    model = GoogLeNet()
    aux = {name: p.numel() for name, p in model.named_parameters() if "aux" in name}
    assert all(name.startswith(("aux1.", "aux2.")) for name in aux)
    assert sum(aux.values()) == 13_378_280 - 6_998_552
    assert {name.split(".")[0] for name in aux} == {"aux1", "aux2"}


@pytest.mark.parametrize("norm", NORMS)
def test_layers_are_the_papers(norm):
    model = GoogLeNet(norm=norm, width=0.25)
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    units = [m for m in modules if isinstance(m, (ConvReLU, ConvBNReLU))]
    assert len(convs) == len(units) == 3 + 9 * 6 + 2  # every conv is followed by ReLU
    blocks = [m for m in modules if isinstance(m, Inception)]
    assert len(blocks) == 9
    for block in blocks:
        five = block.branch3[1].conv
        assert five.kernel_size == (5, 5) and five.padding == (2, 2)  # really 5x5, not torchvision's 3x3
        pool = block.branch4[0]
        assert (pool.kernel_size, pool.stride, pool.padding) == (3, 1, 1)
    lrns = [m for m in modules if isinstance(m, nn.LocalResponseNorm)]
    bns = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    if norm == "lrn":
        assert [(m.size, m.alpha, m.beta, m.k) for m in lrns] == [(5, 1e-4, 0.75, 1.0)] * 2
        assert not bns and all(conv.bias is not None for conv in convs)
    else:
        assert not lrns and len(bns) == len(convs) and all(bn.eps == 1e-3 for bn in bns)
        assert all(conv.bias is None for conv in convs)
    assert model.maxpool3.ceil_mode and model.maxpool4.ceil_mode  # Caffe's rounding: 28 -> 14 -> 7
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7


# -- Gradient checks ------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", [ConvReLU, ConvBNReLU])
def test_inception_block_gradcheck_at_real_channel_counts(rng, unit):
    minicnn.manual_seed(0)
    block = Inception(192, INCEPTION_TABLE["3a"], unit).to(dtype=np.float64)  # 192 -> 256 channels
    randomize_biases(block, rng)
    x = tensor(rng.standard_normal((2, 192, 4, 4)), requires_grad=True)
    names, params = zip(*block.named_parameters())
    result = minicnn.gradcheck(lambda *_: block(x), [x, *params], names=["x", *names], max_elements=4)
    assert result.checked == 4 * (1 + len(params))


# The input and every parameter of these layers (a sample of entries of each): all stages and both aux heads.
CHECKED_LAYERS = ("stem.0.", "inception3a.branch3.1.", "aux1.fc1.", "aux2.conv.", "inception5b.branch4.1.", "fc.")


@pytest.mark.parametrize("norm", NORMS)
def test_whole_network_gradcheck_through_main_and_aux_loss(rng, norm):
    minicnn.manual_seed(0)
    model = with_random_heads(GoogLeNet(num_classes=5, stem="cifar", norm=norm, width=TINY)).to(dtype=np.float64)
    randomize_biases(model, rng)
    x = tensor(rng.standard_normal((2, 3, 32, 32)), requires_grad=True)
    labels = np.array([1, 4])

    def loss(*_):
        minicnn.manual_seed(7)  # the same dropout masks in every evaluation
        outputs = model(x)
        assert len(outputs) == 3  # training mode: main and both aux classifiers
        return googlenet_loss(outputs, labels)

    named = [(name, p) for name, p in model.named_parameters() if name.startswith(CHECKED_LAYERS)]
    assert len(named) >= 2 * len(CHECKED_LAYERS)
    names, params = zip(*named)
    # A step of 1e-7 rather than 1e-6: with ~10^5 ReLUs downstream, a wider step is likely to carry
    # one across its kink. Rounding error (~1e-16 * loss / step ~ 1e-9) stays far below atol.
    result = minicnn.gradcheck(loss, [x, *params], names=["x", *names], eps=1e-7, max_elements=2)
    assert result.checked == 2 * (1 + len(params))


# -- Training and evaluation ----------------------------------------------------------------------
@pytest.fixture
def tiny_model():
    minicnn.manual_seed(0)
    return with_random_heads(GoogLeNet(num_classes=6, stem="cifar", norm="bn", width=TINY))


def test_training_returns_three_logits_and_eval_returns_one(rng, tiny_model):
    x = images(rng, 2, 32)
    outputs = tiny_model(x)
    assert isinstance(outputs, tuple) and [o.shape for o in outputs] == [(2, 6)] * 3
    logits = tiny_model.eval()(x)
    assert isinstance(logits, Tensor) and logits.shape == (2, 6)


def test_eval_is_deterministic_and_training_draws_new_dropout_masks(rng, tiny_model):
    x = images(rng, 2, 32)
    first, second = tiny_model(x), tiny_model(x)
    for a, b in zip(first, second):  # dropout in the main head and in both aux heads
        assert not np.allclose(a.numpy(), b.numpy())
    minicnn.manual_seed(3)
    again = tiny_model(x)
    minicnn.manual_seed(3)
    for a, b in zip(again, tiny_model(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    tiny_model.eval()
    np.testing.assert_array_equal(tiny_model(x).numpy(), tiny_model(x).numpy())


def test_eval_does_not_run_the_aux_heads(rng, tiny_model):
    x = images(rng, 2, 32)
    tiny_model.eval()
    expected = tiny_model(x).numpy()

    def refuse(module, args):
        raise RuntimeError("an aux head ran")

    tiny_model.aux1.register_forward_pre_hook(refuse)
    tiny_model.aux2.register_forward_pre_hook(refuse)
    np.testing.assert_array_equal(tiny_model(x).numpy(), expected)
    with pytest.raises(RuntimeError, match="an aux head ran"):
        tiny_model.train()(x)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval(rng, tiny_model):
    x = images(rng, 2, 32)
    bn = tiny_model.inception4a.branch1.bn
    before = bn.running_mean.array.copy()
    tiny_model(x)
    assert not np.array_equal(bn.running_mean.array, before)
    after_training = bn.running_mean.array.copy()
    tiny_model.eval()(x)
    np.testing.assert_array_equal(bn.running_mean.array, after_training)


def test_without_aux_heads_training_returns_logits_alone(rng):
    model = GoogLeNet(num_classes=6, stem="cifar", aux=False, width=TINY)
    assert model.aux1 is None and model.aux2 is None
    assert not [name for name, _ in model.named_parameters() if "aux" in name]
    logits = model(images(rng, 2, 32))
    assert isinstance(logits, Tensor) and logits.shape == (2, 6)


def test_state_dict_round_trip_gives_identical_outputs(rng, tiny_model):
    x = images(rng, 2, 32)
    tiny_model(x)  # moves the running statistics away from their initial values
    state = {name: value.array.copy() for name, value in tiny_model.state_dict().items()}
    assert "aux1.fc1.weight" in state and "inception3a.branch1.bn.running_mean" in state
    minicnn.manual_seed(1)
    fresh = GoogLeNet(num_classes=6, stem="cifar", norm="bn", width=TINY)
    tiny_model.eval(), fresh.eval()
    assert not np.allclose(fresh(x).numpy(), tiny_model(x).numpy())
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh(x).numpy(), tiny_model(x).numpy())
    tiny_model.train(), fresh.train()
    minicnn.manual_seed(5)
    expected = tiny_model(x)
    minicnn.manual_seed(5)
    for a, b in zip(fresh(x), expected):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# -- Initialisation --------------------------------------------------------------------------------
def test_default_initialisation_is_he_normal_with_zero_biases():
    model = GoogLeNet(num_classes=10, stem="cifar")
    conv = model.inception5b.branch2[1].conv.weight  # (384, 192, 3, 3): fan_in 1728
    assert conv.array.std() == pytest.approx(np.sqrt(2 / 1728), rel=0.02)
    assert abs(conv.array.mean()) < 1e-3
    fc1 = model.aux1.fc1.weight  # (1024, 2048)
    assert fc1.array.std() == pytest.approx(np.sqrt(2 / 2048), rel=0.02)
    assert all(not p.array.any() for name, p in model.named_parameters() if name.endswith("bias"))


def test_initialisation_can_be_overridden():
    model = nn.init.initialize(GoogLeNet(num_classes=10, stem="cifar", width=0.25), "xavier_uniform")
    weight = model.inception4e.branch3[1].conv.weight  # (32, 8, 5, 5)
    bound = np.sqrt(6 / (8 * 25 + 32 * 25))
    assert np.abs(weight.array).max() <= bound and np.abs(weight.array).max() > 0.9 * bound


def activation_scales(model, x):
    """{top-level module name: std of its output} in evaluation."""
    with minicnn.no_grad(), record_outputs(model.eval()) as records:
        model(x)
    return {record.name: float(record.output.array.std()) for record in records}


def test_he_initialisation_keeps_the_lrn_networks_activations_from_fading(rng):
    """Without batch norm nothing rescales the activations: He's std = sqrt(2 / fan_in) keeps them O(1)."""
    x = images(rng, 2, 32)
    minicnn.manual_seed(0)
    he = activation_scales(GoogLeNet(num_classes=10, stem="cifar", width=0.25), x)
    default_init = nn.init.initialize(GoogLeNet(num_classes=10, stem="cifar", width=0.25), "pytorch")
    pytorch = activation_scales(default_init, x)
    assert 0.3 < he["inception5b"] < 3 and 0.3 < he["avgpool"] < 10
    assert pytorch["inception5b"] < 0.1  # the layers' default shrinks them layer after layer


@pytest.mark.parametrize("norm", NORMS)
def test_every_head_starts_at_uniform_predictions(rng, norm):
    """The heads' last layers start at zero: the first loss is ln(num_classes) for each head."""
    model = GoogLeNet(num_classes=10, stem="cifar", norm=norm, width=0.25)
    heads = model.classifiers()
    assert len(heads) == 3 and heads[0] is model.fc and heads[1] is model.aux1.fc2 and heads[2] is model.aux2.fc2
    with minicnn.no_grad():
        outputs = model(images(rng, 4, 32))
    for logits in outputs:
        assert F.cross_entropy(logits, np.arange(4)).item() == pytest.approx(np.log(10), abs=1e-6)
    assert all(not layer.weight.array.any() for layer in model.classifiers())
    assert model.aux1.fc1.weight.array.std() == pytest.approx(np.sqrt(2 / model.aux1.fc1.in_features), rel=0.05)


def test_lrn_network_learns_a_small_batch(rng):
    minicnn.manual_seed(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=1 / 8, dropout=0.0, aux_dropout=0.0)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, labels = images(rng, 4, 32), np.arange(4)
    losses = []
    for _ in range(6):
        loss = googlenet_loss(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]  # (with the layers' default initialisation it barely moves)


# -- The loss helper --------------------------------------------------------------------------------
def reference_cross_entropy(logits, labels, smoothing=0.0):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = np.eye(logits.shape[1])[labels] * (1 - smoothing) + smoothing / logits.shape[1]
    return -(target * log_probs).sum(axis=1).mean()


@pytest.fixture
def three_logits(rng):
    return [rng.standard_normal((4, 5)) for _ in range(3)]


@pytest.mark.parametrize("aux_weight,smoothing", [(0.3, 0.0), (1.0, 0.0), (0.3, 0.1)])
def test_loss_is_main_plus_weighted_aux(three_logits, aux_weight, smoothing):
    labels = np.array([0, 3, 4, 1])
    main, aux1, aux2 = (reference_cross_entropy(z, labels, smoothing) for z in three_logits)
    loss = googlenet_loss(tuple(tensor(z) for z in three_logits), labels, aux_weight=aux_weight,
                          label_smoothing=smoothing)
    assert loss.item() == pytest.approx(main + aux_weight * (aux1 + aux2), rel=1e-12)
    plain = googlenet_loss(tensor(three_logits[0]), labels, label_smoothing=smoothing)
    assert plain.item() == pytest.approx(main, rel=1e-12)


def test_loss_gradient_reaches_the_aux_logits_scaled_by_the_weight(three_logits):
    labels = np.array([0, 3, 4, 1])
    logits = [tensor(z, requires_grad=True) for z in three_logits]
    googlenet_loss(tuple(logits), labels).backward()
    for z, weight in zip(logits, (1.0, 0.3, 0.3)):
        softmax = np.exp(z.array) / np.exp(z.array).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(z.grad, weight * (softmax - np.eye(5)[labels]) / 4, rtol=1e-10)


@pytest.mark.parametrize("outputs,kwargs,error,match", [
    (None, dict(aux_weight=-0.1), ValueError, "aux_weight must be a number >= 0"),
    (None, dict(aux_weight="0.3"), ValueError, "aux_weight must be a number >= 0"),
    ((), dict(), TypeError, "outputs must be a logits Tensor or a tuple"),
    ("logits", dict(), TypeError, "outputs must be a logits Tensor or a tuple"),
    (None, dict(label_smoothing=1.5), ValueError, "label_smoothing must be a probability"),
])
def test_loss_rejects_bad_arguments(three_logits, outputs, kwargs, error, match):
    outputs = tuple(tensor(z) for z in three_logits) if outputs is None else outputs
    with pytest.raises(error, match=match):
        googlenet_loss(outputs, np.zeros(4, np.int64), **kwargs)


# -- Bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(stem="resnet"), "stem must be one of 'imagenet', 'cifar', got 'resnet'"),
    (dict(norm="gn"), "norm must be one of 'lrn', 'bn', got 'gn'"),
    (dict(width=0), "width must be a finite number > 0, got 0"),
    (dict(width=-0.5), "width must be a finite number > 0"),
    (dict(width=float("nan")), "width must be a finite number > 0"),
    (dict(width="1"), "width must be a finite number > 0"),
    (dict(num_classes=0), "num_classes must be an int >= 1, got 0"),
    (dict(num_classes=2.5), "num_classes must be an int >= 1"),
    (dict(num_classes=True), "num_classes must be an int >= 1"),
    (dict(dropout=1.0), "GoogLeNet: dropout must be a dropout probability in \\[0, 1\\), got 1.0"),
    (dict(dropout=-0.1), "GoogLeNet: dropout must be"),
    (dict(aux_dropout=1.5), "GoogLeNet: aux_dropout must be a dropout probability"),
    (dict(aux="yes"), "aux must be True or False"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GoogLeNet(**kwargs)


# -- The summary ------------------------------------------------------------------------------------
def test_summary_cli_prints_the_layers_and_totals(capsys):
    assert summary_main(["googlenet", "--stem", "cifar", "--num-classes", "10"]) == 0
    text = capsys.readouterr().out
    assert "Total params: 10,326,350 (5,976,122 without the auxiliary heads)" in text
    assert "inception3a.branch3.1.conv (Conv2d)" in text
    row = next(line for line in text.splitlines() if line.lstrip().startswith("aux1.fc1 "))
    assert row.split()[2:] == ["(1,", "1024)", "2,098,176", "2,097,152"]  # shape, params, mult-adds


def test_summary_cli_without_arguments_summarises_the_papers_network(capsys):
    assert summary_main([]) == 0  # as the README has it: python -m models.summary
    text = capsys.readouterr().out
    assert text.startswith("GoogLeNet(num_classes=1000, stem='imagenet', aux=True, norm='lrn', width=1)")
    assert f"Total params: {nn.count_parameters(GoogLeNet()):,}" in text


def test_summary_cli_bn_width_and_depth(capsys):
    assert summary_main(["googlenet", "--stem", "cifar", "--norm", "bn", "--width", "0.25", "--depth", "0"]) == 0
    text = capsys.readouterr().out
    model = GoogLeNet(num_classes=10, stem="cifar", norm="bn", width=0.25)
    assert f"Total params: {nn.count_parameters(model):,}" in text
    assert "inception3a (Inception)" in text and "inception3a.branch1" not in text
    assert f"Buffers (saved, not trained): {sum(b.numel() for b in model.buffers()):,}" in text


def test_summary_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "models.summary", "googlenet", "--stem", "cifar", "--norm", "bn",
                             "--num-classes", "10"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Total params: 10,333,886" in result.stdout


@pytest.mark.parametrize("argv,match", [
    (["resnet"], "argument model: invalid choice"),
    (["googlenet", "--stem", "mnist"], "argument --stem: invalid choice"),
    (["googlenet", "--norm", "gn"], "argument --norm: invalid choice"),
    (["googlenet", "--width", "0"], "argument --width: must be a finite number > 0, got '0'"),
    (["googlenet", "--width", "wide"], "argument --width: must be a finite number > 0, got 'wide'"),
    (["googlenet", "--num-classes", "0"], "argument --num-classes: must be an integer >= 1, got '0'"),
    (["googlenet", "--depth", "-1"], "argument --depth: must be an integer >= 0"),
    (["googlenet", "--colour", "red"], "unrecognized arguments: --colour red"),
])
def test_summary_cli_rejects_bad_arguments_with_usage(capsys, argv, match):
    with pytest.raises(SystemExit) as exit_info:
        summary_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m models.summary") and match in err


def test_summary_counts_the_papers_multiply_adds():
    """Table 1's "ops" column (millions of multiply-adds, rounded by the paper), measured on the real layers."""
    rows = {row.name: row for row in summarize(GoogLeNet(num_classes=1000), (1, 3, 224, 224))}
    measured = {name: row.mult_adds / 1e6 for name, row in rows.items()}
    measured["stem 3x3 reduce + 3x3"] = measured["stem.3"] + measured["stem.4"]
    paper = {"stem.0.conv": 118, "stem 3x3 reduce + 3x3": 360, "inception3a": 128, "inception3b": 304,
             "inception4a": 73, "inception4b": 88, "inception4c": 100, "inception4d": 119, "inception4e": 170,
             "inception5b": 71, "fc": 1}  # not 5a: the paper's 54M does not follow from its own row (51M)
    for name, millions in paper.items():
        assert abs(measured[name] - millions) < 1, name
    leaves = [row for row in rows.values() if not any(other.startswith(row.name + ".") for other in rows)]
    assert sum(row.params for row in leaves) == 13_378_280


def test_summary_leaves_the_model_as_it_was(rng, tiny_model):
    tiny_model.eval()
    tiny_model.aux1.train()  # a mixed state, to be restored exactly
    modes = [m.training for m in tiny_model.modules()]
    state = {name: value.array.copy() for name, value in tiny_model.state_dict().items()}
    minicnn.manual_seed(11)
    rows = summarize(tiny_model, (1, 3, 32, 32))
    draw_after_summary = minicnn.random.cpu_generator().random()
    minicnn.manual_seed(11)
    assert draw_after_summary == minicnn.random.cpu_generator().random()  # dropout drew nothing
    assert "aux2.fc2" in [row.name for row in rows]  # the training-only path ran
    assert [m.training for m in tiny_model.modules()] == modes
    for name, array in tiny_model.state_dict().items():
        np.testing.assert_array_equal(array, state[name])  # batch norm's running statistics untouched
    assert not [m for m in tiny_model.modules() if m._hooks]  # every hook removed


# -- GPU ------------------------------------------------------------------------------------------
def twin_models_on_cpu_and_gpu(norm, dtype):
    """The same weights on NumPy and on CuPy, without dropout (the devices' random streams differ)."""
    minicnn.manual_seed(0)
    kwargs = dict(num_classes=10, stem="cifar", norm=norm, width=0.125, dropout=0.0, aux_dropout=0.0)
    cpu_model, gpu_model = with_random_heads(GoogLeNet(**kwargs)), GoogLeNet(**kwargs)
    gpu_model.load_state_dict(cpu_model.state_dict())
    return cpu_model.to(dtype=dtype), gpu_model.to("gpu", dtype=dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("norm", NORMS)
def test_gpu_forward_matches_cpu_in_float32(rng, norm):
    cpu_model, gpu_model = twin_models_on_cpu_and_gpu(norm, np.float32)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    cpu_out, gpu_out = cpu_model(tensor(x)), gpu_model(tensor(x, "gpu"))  # training: BN on batch statistics
    for a, b in zip(cpu_out, gpu_out):
        assert b.device.startswith("gpu") and b.dtype == np.float32
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4)
    cpu_model.eval(), gpu_model.eval()
    np.testing.assert_allclose(gpu_model(tensor(x, "gpu")).numpy(), cpu_model(tensor(x)).numpy(),
                               rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("norm", NORMS)
def test_gpu_gradients_match_cpu_in_float64(rng, norm):
    """In float64: float32 gradients of a deep net legitimately differ by ~1% of their largest value
    between any two summation orders (PyTorch's CPU float32 and float64 do too)."""
    cpu_model, gpu_model = twin_models_on_cpu_and_gpu(norm, np.float64)
    x, labels = rng.standard_normal((2, 3, 32, 32)), np.array([3, 9])
    googlenet_loss(cpu_model(tensor(x)), labels).backward()
    googlenet_loss(gpu_model(tensor(x, "gpu")), labels).backward()
    for (name, a), (_, b) in zip(cpu_model.named_parameters(), gpu_model.named_parameters()):
        scale = np.abs(a.grad).max()
        np.testing.assert_allclose(backend.as_numpy(b.grad), a.grad, rtol=1e-6, atol=1e-9 * scale, err_msg=name)


def test_the_test_session_pins_tf32_off():
    """CuPy reads CUPY_TF32 once per process, at its first float32 product, and a trainer run sets it
    (TF32 is its default on a GPU): pinned to 0 for the session (conftest.py), one test can no longer
    turn TF32 on for every float32 comparison after it."""
    assert os.environ.get("CUPY_TF32") == "0"


TF32_FORWARD = """
import sys
import numpy as np
from tests.standin.installer import install_unless_gpu
install_unless_gpu()
import minicnn
from minicnn import nn
from models.googlenet import GoogLeNet
minicnn.manual_seed(0)
kwargs = dict(num_classes=10, stem="cifar", norm=sys.argv[1], width=0.125, dropout=0.0, aux_dropout=0.0)
cpu_model, gpu_model = GoogLeNet(**kwargs), GoogLeNet(**kwargs)
for layer in cpu_model.classifiers():  # random heads, as with_random_heads: zero heads give zero logits
    nn.init.kaiming_normal_(layer.weight)
gpu_model.load_state_dict(cpu_model.state_dict())
gpu_model.to("gpu")
x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
a, b = cpu_model(minicnn.Tensor(x))[0].numpy(), gpu_model(minicnn.Tensor(x).to("gpu"))[0].numpy()
print(np.abs(a - b).max() / np.abs(a).max())
"""


@pytest.mark.gpu
@pytest.mark.parametrize("norm", NORMS)
def test_tf32_products_need_tf32_tolerances(norm):
    """With CUPY_TF32=1, the trainer's default, float32 products round their inputs to 10-bit mantissas:
    GoogLeNet's logits then differ from the CPU's by ~1e-3 of their size, beyond what float32 alone
    explains (the float32 test above) but within TF32's precision. Its own process: CuPy reads the
    variable once per process."""
    env = dict(os.environ, CUPY_TF32="1", PYTHONPATH=os.pathsep.join([REPO_ROOT]))
    result = subprocess.run([sys.executable, "-c", TF32_FORWARD, norm], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    relative_error = float(result.stdout.split()[-1])
    assert relative_error < 2e-2
    if on_cupy_standin():  # the stand-in emulates TF32 (a GPU before Ampere has none)
        assert relative_error > 1e-4
