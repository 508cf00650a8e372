"""The defining property: 2 ranks, each with half of a batch, end with the gradients one process gets on all of it."""
import minicnn
import minicnn.functional as F
from minicnn import distributed, optim
from minicnn.distributed import world
from common import (assert_close, assert_same_on_every_rank, batch, my_slice, setup, small_net, stand_in_costs, tensor,
                    twin)

rank, size, device = setup()
assert size == 2, f"run this with mpiexec -n 2, got {size} process(es)"
x, y = batch()
part = my_slice(rank, size)

minicnn.manual_seed(100 + rank)  # a different initialisation on every rank ...
model = small_net().to(device)
distributed.broadcast_parameters(model)  # ... until rank 0's is everyone's
for name, p in model.named_parameters():
    assert_same_on_every_rank(p.numpy(), name)
reference = twin(model, device)  # one process, the whole batch


def reference_gradients():
    reference.zero_grad()
    F.cross_entropy(reference(tensor(x, device)), y).backward()
    return [p.grad for p in reference.parameters()]


calls = []
reduce_sum = world.current_world().all_reduce_sum
world.current_world().all_reduce_sum = lambda array: calls.append(array) or reduce_sum(array)

# 1. Gradients of their own (no optimizer yet): packed into one flat array, one call.
F.cross_entropy(model(tensor(x[part], device)), y[part]).backward()
distributed.all_reduce_gradients(model)
assert len(calls) == 1, f"{len(calls)} all-reduce calls, expected one for the one (device, dtype) group"
for (name, p), want in zip(model.named_parameters(), reference_gradients()):
    assert_close(p.grad, want, f"packed gradient of {name}")

# 2. With an optimizer, the gradients are views of its flat buffer: that buffer itself is reduced, no copy.
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
reference_optimizer = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
for step in range(2):
    calls.clear()
    optimizer.zero_grad()
    F.cross_entropy(model(tensor(x[part], device)), y[part]).backward()
    with stand_in_costs() as cost:
        distributed.all_reduce_gradients(model)
    assert len(calls) == 1 and calls[0] is optimizer.groups[0].grad, "expected one call, on the optimizer's buffer"
    if cost is not None and device != "cpu":  # NCCL's all-reduce and the division by 2; nothing through the host
        assert (cost.device_ops, cost.syncs, cost.uploads) == (2, 0, 0), cost.report()
    want = reference_gradients()
    for (name, p), wanted in zip(model.named_parameters(), want):
        assert p.grad.array is p._grad_buffer, f"{name}: its gradient left the optimizer's buffer"
        assert_close(p.grad, wanted, f"step {step}: gradient of {name}")
    optimizer.step()
    reference_optimizer.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert_same_on_every_rank(p.numpy(), f"step {step}: {name}")
        assert_close(p.array, q.array, f"step {step}: {name} after the update")
print(f"rank {rank}: passed", flush=True)
