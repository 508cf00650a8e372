"""SyncBatchNorm on 2 ranks, each with half of a batch, computes what BatchNorm2d computes on all of it in one
process."""
import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import backend, distributed, nn
from common import assert_close, assert_same_on_every_rank, batch, my_slice, setup, small_net, tensor, twin

rank, size, device = setup()
assert size == 2, f"run this with mpiexec -n 2, got {size} process(es)"
x, y = batch()
part = my_slice(rank, size)
rng = np.random.default_rng(1)

# 1. The layer alone: output, the gradients of x, weight and bias, and the running statistics.
single = nn.BatchNorm2d(3, momentum=0.3).to(device, np.float64)
single.weight.array[...] = backend.to_device(rng.uniform(0.5, 2, 3), device)
single.bias.array[...] = backend.to_device(rng.standard_normal(3), device)
synchronised = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(single))[0]
assert type(synchronised) is nn.SyncBatchNorm and synchronised.weight is single.weight
reference = nn.BatchNorm2d(3, momentum=0.3).to(device, np.float64)
reference.load_state_dict(single.state_dict())
upstream = rng.standard_normal(x.shape)  # dL/dy for the whole batch

x_whole, x_mine = tensor(x, device), tensor(x[part], device)
x_whole.requires_grad = x_mine.requires_grad = True
for step in range(2):  # twice: the second update of the running statistics starts from the first one's
    y_whole, y_mine = reference(x_whole), synchronised(x_mine)
    assert_close(y_mine.array, y_whole.array[part], f"step {step}: output")
    reference.zero_grad(), synchronised.zero_grad()
    x_whole.grad = x_mine.grad = None
    y_whole.backward(tensor(upstream, device))
    y_mine.backward(tensor(upstream[part], device))
    assert_close(x_mine.grad, x_whole.grad[part], f"step {step}: gradient of x")
    for name in ("weight", "bias"):  # each rank has its own batch's share; together, the whole batch's
        total = distributed.all_reduce(getattr(synchronised, name).grad.array.copy())
        assert_close(total, getattr(reference, name).grad, f"step {step}: summed gradient of {name}")
    for name in ("running_mean", "running_var"):
        assert_close(getattr(synchronised, name).array, getattr(reference, name).array, f"step {step}: {name}")
        assert_same_on_every_rank(getattr(synchronised, name).numpy(), name)

# 2. In a network with a mean loss: after all_reduce_gradients, one process's gradients on the whole batch.
minicnn.manual_seed(7 + rank)
model = nn.SyncBatchNorm.convert_sync_batchnorm(small_net(norm=nn.BatchNorm2d)).to(device)
distributed.broadcast_parameters(model)
single_process = twin(model, device, nn.BatchNorm2d)
F.cross_entropy(model(tensor(x[part], device)), y[part]).backward()
distributed.all_reduce_gradients(model)
F.cross_entropy(single_process(tensor(x, device)), y).backward()
scale = max(float(np.abs(backend.as_numpy(q.grad)).max()) for q in single_process.parameters())
for (name, p), q in zip(model.named_parameters(), single_process.parameters()):
    assert_close(p.grad, q.grad, f"gradient of {name}", scale=scale)
for (name, b), c in zip(model.named_buffers(), single_process.buffers()):
    assert_close(b.array, c.array, name)

# 3. The default, BatchNorm2d, normalizes each rank's half with its own statistics: not what one process does.
per_rank = small_net(norm=nn.BatchNorm2d).to(device)
per_rank.load_state_dict(single_process.state_dict())
distributed.broadcast_parameters(per_rank)
F.cross_entropy(per_rank(tensor(x[part], device)), y[part]).backward()
distributed.all_reduce_gradients(per_rank)
differences = [float(np.abs(backend.as_numpy(p.grad - q.grad)).max())
               for p, q in zip(per_rank.parameters(), single_process.parameters())]
assert max(differences) > 1e-4, f"per-rank batch norm matched one process: {differences}"
print(f"rank {rank}: passed", flush=True)
