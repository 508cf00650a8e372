"""The 60-minute blitz, "A Gentle Introduction to torch.autograd".

The tutorial's resnet18 is a small model of our own here (no torchvision), its
weights and data drawn from NumPy so that both engines start from the same numbers.
"""
import numpy as np
import torch
from torch import nn, optim

rng = np.random.RandomState(0)


def from_numpy_init(model):
    """Set every parameter from NumPy's generator, in registration order."""
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.uniform(-0.2, 0.2, tuple(param.shape)).astype(np.float32)))


model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 10))
from_numpy_init(model)
data = torch.from_numpy(rng.rand(1, 3, 8, 8).astype(np.float32))
labels = torch.from_numpy(rng.rand(1, 10).astype(np.float32))

prediction = model(data)  # forward pass
loss = (prediction - labels).sum()
loss.backward()  # backward pass
print(f"loss: {loss.item():.6f}")
print("conv weight grad norm:", f"{model[0].weight.grad.norm().item():.6f}")

optim_ = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
optim_.step()  # gradient descent
print("after a step:", f"{model(data).sum().item():.6f}")

# Differentiation in autograd
a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3 * a ** 3 - b ** 2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
# check if collected gradients are correct
print((9 * a ** 2 == a.grad).tolist())
print((-2 * b == b.grad).tolist())
print("a.grad:", a.grad.tolist(), "b.grad:", b.grad.tolist())

# Exclusion from the DAG
x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

# Freeze the network and fine-tune only a new classifier
for param in model.parameters():
    param.requires_grad = False
model[4] = nn.Linear(4, 10)
from_numpy_init(model[4])
optimizer = optim.SGD(model[4].parameters(), lr=1e-2, momentum=0.9)
frozen = model[0].weight.clone()
for step in range(3):
    optimizer.zero_grad()
    loss = (model(data) - labels).pow(2).sum()
    loss.backward()
    optimizer.step()
    print(f"fine-tune step {step}: loss {loss.item():.6f}")
print("frozen weights unchanged:", bool((model[0].weight == frozen).all()), model[0].weight.grad is None)

# A tensor's gradient function, and retain_grad on a non-leaf
w = torch.tensor([1.0, 2.0], requires_grad=True)
h = w * 3
h.retain_grad()
out = (h * h).sum()
print("grad_fn is set:", out.grad_fn is not None, "leaf has none:", w.grad_fn is None)
out.backward()
print("h.grad:", h.grad.tolist(), "w.grad:", w.grad.tolist())
