import numpy as np
import pytest

import minicnn
from minicnn import Tensor, nn
from helpers import tensor


class Block(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))

    def forward(self, x):
        return self.head(self.bn(self.conv(x)))


def test_parameters_and_buffers_have_dotted_names_in_order():
    names = [name for name, _ in Block().named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.2.weight", "head.2.bias"]
    assert [name for name, _ in Block().named_buffers()] == ["bn.running_mean", "bn.running_var"]
    assert nn.count_parameters(Block()) == 4 * 3 * 9 + 4 + 4 + 4 + 100 * 2 + 2


def test_state_dict_round_trip_restores_outputs(rng):
    minicnn.manual_seed(0)
    a = Block()
    x = tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    a(x)  # updates running statistics, so buffers differ from a fresh block's
    a.eval()
    b = Block().eval()
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    state = {k: v.array.copy() for k, v in a.state_dict().items()}
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_reports_missing_unexpected_and_misshapen_keys():
    block = Block()
    state = dict(block.state_dict())
    del state["conv.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['conv.bias'\], unexpected keys \['extra'\]"):
        block.load_state_dict(state)
    result = block.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.bias"] and result.unexpected_keys == ["extra"]
    state = dict(block.state_dict(), **{"conv.weight": np.zeros((4, 3, 5, 5), np.float32)})
    with pytest.raises(ValueError, match=r"conv.weight has shape \(4, 3, 3, 3\) here but \(4, 3, 5, 5\)"):
        block.load_state_dict(state)


def test_train_and_eval_reach_every_submodule():
    block = Block().eval()
    assert all(not m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())


def test_to_changes_dtype_in_place_keeping_parameter_identity():
    block = Block()
    weight = block.conv.weight
    block.to(dtype=np.float64)
    assert block.conv.weight is weight and weight.dtype == np.float64
    assert block.bn.running_var.dtype == np.float64


def test_zero_grad_and_sequential_indexing():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    seq(tensor(np.ones((2, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in seq.parameters())
    seq.zero_grad()
    assert all(p.grad is None for p in seq.parameters())
    assert isinstance(seq[1], nn.ReLU) and len(seq) == 3 and isinstance(seq[1:], nn.Sequential)


def test_printing_shows_the_tree():
    text = repr(Block())
    assert "(conv): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "(2): Linear(in_features=100, out_features=2, bias=True)" in text


def test_dropout_module_follows_training_mode():
    drop = nn.Dropout(0.5)
    x = tensor(np.ones((10, 10), np.float32))
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    assert drop(x) is x


@pytest.mark.parametrize("scheme,expected_std", [
    ("kaiming_normal", np.sqrt(2 / (64 * 9))),
    ("xavier_normal", np.sqrt(2 / (64 * 9 + 128 * 9))),
    ("kaiming_uniform", np.sqrt(2 / (64 * 9))),
    ("xavier_uniform", np.sqrt(2 / (64 * 9 + 128 * 9))),
    ("pytorch", np.sqrt(1 / (3 * 64 * 9))),
])
def test_initialisation_schemes_have_their_variance(scheme, expected_std):
    minicnn.manual_seed(0)
    conv = nn.init.initialize(nn.Conv2d(64, 128, 3), scheme)
    assert conv.weight.numpy().std() == pytest.approx(expected_std, rel=0.02)
    if scheme != "pytorch":
        assert (conv.bias.numpy() == 0).all()


def test_initialisation_is_repeatable_with_manual_seed():
    minicnn.manual_seed(3)
    a = nn.Linear(5, 5).weight.numpy().copy()
    minicnn.manual_seed(3)
    np.testing.assert_array_equal(a, nn.Linear(5, 5).weight.numpy())


@pytest.mark.parametrize("make,match", [
    (lambda: nn.Conv2d(0, 4, 3), "in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "stride must be positive"),
    (lambda: nn.MaxPool2d(3, padding=2), "padding must be at most half the kernel size"),
    (lambda: nn.Dropout(-0.1), r"p must be a probability in \[0, 1\]"),
    (lambda: nn.Sequential(nn.ReLU(), lambda x: x), "argument 1 must be a Module"),
    (lambda: nn.init.initialize(nn.Linear(2, 2), "he"), "scheme must be one of"),
])
def test_layers_reject_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_batch_norm_module_rejects_2d_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d: x must be 4-D"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((4, 3), np.float32)))
