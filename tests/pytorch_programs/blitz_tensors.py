"""The 60-minute blitz, "Tensors": making tensors, their attributes, operations, and the NumPy bridge."""
import numpy as np
import torch

data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
np_array = np.array(data)
x_np = torch.from_numpy(np_array)
print("x_data:", x_data.tolist(), "x_np:", x_np.tolist())

x_ones = torch.ones_like(x_data)  # retains the properties of x_data
print("Ones Tensor:", x_ones.tolist(), str(x_ones.dtype).split(".")[-1])
x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the datatype of x_data
print("Random Tensor:", tuple(x_rand.shape), str(x_rand.dtype).split(".")[-1],
      bool(((x_rand >= 0) & (x_rand < 1)).all()))

shape = (2, 3,)
rand_tensor = torch.rand(shape)
ones_tensor = torch.ones(shape)
zeros_tensor = torch.zeros(shape)
print("Shapes:", tuple(rand_tensor.shape), ones_tensor.tolist(), zeros_tensor.tolist())

tensor = torch.rand(3, 4)
print(f"Shape of tensor: {tuple(tensor.shape)}")
print(f"Datatype of tensor: {str(tensor.dtype).split('.')[-1]}")
print(f"Device tensor is stored on: {tensor.device}")

# we move our tensor to the GPU if available
if torch.cuda.is_available():
    tensor = tensor.to("cuda")

tensor = torch.ones(4, 4)
print(f"First row: {tensor[0].tolist()}")
print(f"First column: {tensor[:, 0].tolist()}")
print(f"Last column: {tensor[..., -1].tolist()}")
tensor[:, 1] = 0
print("tensor:", tensor.tolist())

t1 = torch.cat([tensor, tensor, tensor], dim=1)
print("cat:", tuple(t1.shape), t1[1].tolist())

# matrix multiplication: y1, y2 and y3 have the same value
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.matmul(tensor, tensor.T)
print("matmul:", y1.tolist(), bool((y1 == y2).all()), bool((y1 == y3).all()))

# element-wise product: z1, z2 and z3 have the same value
z1 = tensor * tensor
z2 = tensor.mul(tensor)
print("mul:", z1.tolist(), bool((z1 == z2).all()))

agg = tensor.sum()
agg_item = agg.item()
print("sum:", agg_item, type(agg_item).__name__)

print("before add_:", tensor.tolist())
tensor.add_(5)
print("after add_:", tensor.tolist())

# the NumPy bridge: a tensor on the CPU and its NumPy array share memory
t = torch.ones(5)
n = t.numpy()
t.add_(1)
print(f"t: {t.tolist()}  n: {n.tolist()}")
n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(f"t: {t.tolist()}  n: {n.tolist()}")

# more of the API the tutorials use
print("linspace:", [round(v, 6) for v in torch.linspace(-1, 1, 5).tolist()])
print("full:", torch.full((2, 2), 7).tolist(), "eye:", torch.eye(3).tolist())
print("stack:", torch.stack([torch.ones(2), torch.zeros(2)]).tolist())
print("where:", torch.where(torch.tensor([1.0, -2.0, 3.0]) > 0, torch.tensor([1.0, -2.0, 3.0]), 0.0).tolist())
print("max/min/mean:", torch.max(torch.tensor([1.0, 5.0, 2.0])).item(), torch.min(torch.tensor([4.0, 0.5])).item(),
      torch.mean(torch.tensor([1.0, 2.0, 3.0, 4.0])).item())
print("argmax:", torch.argmax(torch.tensor([[1.0, 9.0], [8.0, 2.0]]), dim=1).tolist())
print("size/numel/dim:", tuple(tensor.size()), tensor.size(0), tensor.numel(), tensor.dim())
x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
print("norm:", round(x.norm().item(), 5), "t:", x.t().tolist(), "eq:", x.eq(2.0).tolist())
print("float/long/double:", x.long().tolist(), str(x.double().dtype).split(".")[-1],
      str(x.long().float().dtype).split(".")[-1])
print("sin/cos/exp/log/sqrt:", [round(v, 5) for v in
                               (torch.sin(x).sum().item(), torch.cos(x).sum().item(), torch.exp(x).sum().item(),
                                torch.log(x).sum().item(), torch.sqrt(x).sum().item())])
