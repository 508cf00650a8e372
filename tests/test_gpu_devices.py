"""A network on the second GPU works while the first is CuPy's current device.

CuPy runs every kernel on its *current* device and refuses arrays from another
one (no peer access), so the library must run each op on its inputs' device
and create every array (gradients, optimizer state, weights, dropout masks) on
the device of the tensors it belongs to. The CuPy stand-in simulates two devices.
"""
import numpy as np
import pytest

import minicnn
import minicnn.functional as F
from minicnn import backend, nn, optim
from helpers import tensor

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(backend.gpu_count() < 2, reason="needs two GPUs (the CuPy stand-in simulates two)")]


def small_net():
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.LocalResponseNorm(3),
                         nn.MaxPool2d(2), nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(4 * 3 * 3, 5))


def train_two_steps(device, optimizer_class, **options):
    net = small_net().to(device, dtype=np.float64)
    optimizer = optimizer_class(net.parameters(), lr=0.1, **options)
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((4, 3, 8, 8)), device)
    labels = np.array([0, 3, 1, 4])
    for step in range(2):
        minicnn.manual_seed(step)
        loss = F.cross_entropy(net(x), labels, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net, optimizer


@pytest.mark.parametrize("optimizer_class,options", [(optim.SGD, dict(momentum=0.9, weight_decay=5e-4, nesterov=True)),
                                                     (optim.AdamW, dict(weight_decay=1e-2))],
                         ids=["sgd", "adamw"])
def test_training_on_gpu1_while_gpu0_is_current(optimizer_class, options):
    cp = backend.require_gpu(1)
    assert cp.cuda.runtime.getDevice() == 0
    net, optimizer = train_two_steps("gpu:1", optimizer_class, **options)
    for name, tensor_ in [*net.named_parameters(), *net.named_buffers()]:
        assert tensor_.device == "gpu:1", name
    assert all(backend.device_of(p.grad.array).index == 1 for p in net.parameters())
    assert all(backend.device_of(value).index == 1 for state in optimizer.state for value in state.values())
    assert cp.cuda.runtime.getDevice() == 0  # the library left CuPy's current device alone
    with cp.cuda.Device(1):  # the same run with gpu:1 current: the same numbers (and dropout masks)
        reference, _ = train_two_steps("gpu:1", optimizer_class, **options)
    for (name, a), (_, b) in zip(net.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_tensors_move_between_gpus_and_cast_there():
    x = tensor(np.arange(6.0).reshape(2, 3), "gpu:0", requires_grad=True)
    y = x.to("gpu:1", dtype=np.float32)
    assert y.device == "gpu:1" and y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.device == "gpu:0" and x.grad.dtype == np.float64
    np.testing.assert_array_equal(backend.as_numpy(x.grad), np.full((2, 3), 2.0))
    moved = nn.Linear(3, 2).to("gpu:1")
    moved.load_state_dict(nn.Linear(3, 2).state_dict())  # host values copied onto gpu:1
    assert moved.weight.device == "gpu:1"
    nn.init.kaiming_normal_(moved.weight)
    nn.init.zeros_(moved.bias)
    assert moved.weight.device == "gpu:1" and not moved.bias.numpy().any()


@pytest.mark.parametrize("layer", ["conv2d", "batch_norm", "dropout", "cross_entropy"])
def test_gradient_check_on_gpu1(layer):
    from minicnn.gradcheck.cases import CASES, Inputs
    case = next(c for c in CASES if c.layer == layer)
    fn, inputs = case.build(Inputs("gpu:1"))
    assert minicnn.gradcheck(fn, inputs, max_elements=5).checked == sum(min(5, t.numel()) for t in inputs)
