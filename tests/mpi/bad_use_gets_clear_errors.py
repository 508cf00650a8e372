"""Broadcast makes the ranks identical; a model that differs across ranks, or was never broadcast, is refused."""
import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import distributed, nn


def raises(error, words, call):
    try:
        call()
    except error as raised:
        assert all(word in str(raised) for word in words), f"{words} not all in: {raised}"
        return
    raise AssertionError(f"expected {error.__name__} mentioning {words}")


# Before init(), under a launcher: every query refuses, naming the launcher's variable.
raises(RuntimeError, ["init()", "PMI_RANK="], distributed.rank)
distributed.init()
rank, size = distributed.rank(), distributed.world_size()
assert size == 2 and distributed.local_rank() == rank  # one machine: node-local rank = rank

# Different seeds, then one broadcast: parameters AND buffers are rank 0's everywhere.
minicnn.manual_seed(rank)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))
model[1].running_mean.array[...] = rank + 1
before = [p.numpy().copy() for p in model.parameters()]
distributed.broadcast_parameters(model)
for (name, tensor), old in zip([*model.named_parameters(), *model.named_buffers()], before + [None, None]):
    gathered = distributed.all_reduce(tensor.numpy().copy())
    assert np.array_equal(gathered, 2 * tensor.numpy()), f"{name} differs across ranks after broadcast"
    assert old is None or rank != 0 or np.array_equal(old, tensor.numpy()), f"{name} changed on the root"
assert np.all(model[1].running_mean.array == 1)

# A model whose shapes differ across ranks: the same clear error on every rank, naming the parameter.
lopsided = nn.Sequential(nn.Linear(4, 3 + rank))
raises(ValueError, ["'0.weight'", "shape (3, 4)", "on rank 0", "(4, 4) float32 on cpu on rank 1"],
       lambda: distributed.broadcast_parameters(lopsided))
raises(RuntimeError, ["never passed to broadcast_parameters"], lambda: distributed.all_reduce_gradients(lopsided))

# A model changed after its broadcast is refused until broadcast again.
setattr(model, "3", nn.Linear(16, 2))  # a new last layer
raises(RuntimeError, ["changed since broadcast_parameters", "'3.weight'"],
       lambda: distributed.all_reduce_gradients(model))
distributed.broadcast_parameters(model)

# A parameter with no gradient on one rank counts as a zero there.
x = minicnn.Tensor(np.ones((2, 3, 4, 4), np.float32))
F.cross_entropy(model(x), np.array([0, 1])).backward()
mine = model[3].bias.grad.array.copy()
if rank == 1:
    model[3].bias.grad = None
distributed.all_reduce_gradients(model)
np.testing.assert_allclose(model[3].bias.grad, mine / 2, rtol=1e-6)
print(f"rank {rank}: passed", flush=True)
