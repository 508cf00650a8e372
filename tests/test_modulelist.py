"""nn.ModuleList and nn.ModuleDict: parts that parameters(), state_dict(), to() and train() see."""
import numpy as np
import pytest

import minicnn
from minicnn import nn


class Block(nn.Module):
    def __init__(self, channels):
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class Tower(nn.Module):
    def __init__(self):
        self.blocks = nn.ModuleList([Block(2), Block(2)])
        self.heads = nn.ModuleDict({"main": nn.Linear(2, 3), "aux": nn.Linear(2, 1)})
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        features = x.mean(dim=(2, 3))
        return {name: head(features) for name, head in self.heads.items()}


def test_parts_in_a_module_list_and_dict_are_registered():
    tower = Tower()
    names = [name for name, _ in tower.named_parameters()]
    assert names == ["blocks.0.conv.weight", "blocks.0.conv.bias", "blocks.0.bn.weight", "blocks.0.bn.bias",
                     "blocks.1.conv.weight", "blocks.1.conv.bias", "blocks.1.bn.weight", "blocks.1.bn.bias",
                     "heads.main.weight", "heads.main.bias", "heads.aux.weight", "heads.aux.bias"]
    assert "blocks.1.bn.running_var" in tower.state_dict()
    assert nn.count_parameters(tower) == 2 * (2 * 2 * 9 + 2 + 2 + 2) + (2 * 3 + 3) + (2 + 1)


def test_to_and_train_reach_into_containers():
    tower = Tower().to(np.float64).eval()
    assert tower.blocks[1].conv.weight.dtype == np.float64 and tower.heads["aux"].bias.dtype == np.float64
    assert tower.blocks[0].bn.running_mean.dtype == np.float64
    assert not tower.blocks[1].bn.training and not tower.heads["main"].training
    tower.train()
    assert tower.blocks[0].training and tower.heads["aux"].training


def test_state_dict_round_trip_and_a_training_step_update_contained_parameters(rng):
    minicnn.manual_seed(0)
    tower, twin = Tower(), Tower()
    x = minicnn.tensor(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
    twin.load_state_dict({k: v.array.copy() for k, v in tower.state_dict().items()})
    outputs, twin_outputs = tower(x), twin(x)
    np.testing.assert_array_equal(outputs["main"].numpy(), twin_outputs["main"].numpy())
    optimizer = minicnn.optim.SGD(tower.parameters(), lr=0.1)
    ((outputs["main"] ** 2).sum() + outputs["aux"].sum()).backward()  # squared: BN makes a plain sum constant
    optimizer.step()
    assert not np.array_equal(tower.blocks[0].conv.weight.numpy(), twin.blocks[0].conv.weight.numpy())


def test_module_list_methods():
    a, b, c, d = nn.ReLU(), nn.Identity(), nn.Flatten(), nn.Dropout()
    blocks = nn.ModuleList([a])
    assert blocks.append(b) is blocks and blocks.extend([c]) is blocks
    assert list(blocks) == [a, b, c] and len(blocks) == 3 and blocks[-1] is c
    blocks.insert(1, d)
    assert list(blocks) == [a, d, b, c] and [name for name, _ in blocks.named_children()] == ["0", "1", "2", "3"]
    blocks[0] = c
    assert blocks[0] is c
    assert isinstance(blocks[1:3], nn.ModuleList) and list(blocks[1:3]) == [d, b]
    del blocks[1]
    assert list(blocks) == [c, b, c]
    assert blocks.pop() is c and len(blocks) == 2
    blocks += [a]
    assert list(blocks) == [c, b, a] and len(nn.ModuleList()) == 0


def test_module_dict_methods():
    a, b, c = nn.ReLU(), nn.Identity(), nn.Flatten()
    heads = nn.ModuleDict([("a", a), ("b", b)])
    assert heads.keys() == ["a", "b"] and heads.values() == [a, b] and heads.items() == [("a", a), ("b", b)]
    assert "a" in heads and "z" not in heads and 3 not in heads and len(heads) == 2 and list(heads) == ["a", "b"]
    heads["c"] = c
    heads["a"] = b
    assert heads["a"] is b and heads.keys() == ["a", "b", "c"]
    del heads["b"]
    assert heads.keys() == ["a", "c"] and heads.pop("c") is c
    heads.update({"d": a})
    assert heads.keys() == ["a", "d"]
    heads.clear()
    assert len(heads) == 0


@pytest.mark.parametrize("call,error,match", [
    (lambda: nn.ModuleList([nn.ReLU(), "relu"]), TypeError, "ModuleList.append: expected a Module, got str"),
    (lambda: nn.ModuleList([nn.ReLU()])[1], IndexError, "ModuleList: index 1 is out of range for 1 modules"),
    (lambda: nn.ModuleDict({"keys": nn.ReLU()}), KeyError, "the key 'keys' is already the name of a ModuleDict"),
    (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), KeyError, "a key must be a non-empty string without '.'"),
    (lambda: nn.ModuleDict({"a": 3}), TypeError, r"ModuleDict\['a'\]: expected a Module, got int"),
    (lambda: nn.ModuleDict()["missing"], KeyError, "ModuleDict has no key 'missing'"),
])
def test_containers_reject_bad_entries(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("value,container", [
    ([nn.ReLU(), nn.Linear(2, 2)], "nn.ModuleList"),
    ((nn.Linear(2, 2),), "nn.ModuleList"),
    ({"head": nn.Linear(2, 2)}, "nn.ModuleDict"),
])
def test_a_plain_list_or_dict_of_modules_is_refused_at_assignment(value, container):
    class Net(nn.Module):
        def __init__(self):
            self.layers = value

    kind = type(value).__name__
    with pytest.raises(TypeError, match=rf"Net.layers: a plain {kind} of Modules is not registered "
                                        rf".*use self.layers = {container}\(\.\.\.\)"):
        Net()


def test_plain_lists_without_modules_are_still_fine():
    class Net(nn.Module):
        def __init__(self):
            self.sizes, self.names, self.empty = [1, 2], {"a": "b"}, []

    assert Net().sizes == [1, 2]


def test_module_to_takes_pytorchs_positional_forms():
    layer = nn.Linear(2, 2)
    assert layer.to("float64").weight.dtype == np.float64
    assert layer.to("cpu", np.float32).weight.dtype == np.float32
    with pytest.raises(TypeError, match="Linear.to: parameters must stay floating-point, got dtype int64"):
        layer.to(np.int64)
