"""The 60-minute blitz, "Neural Networks": LeNet, a loss, backprop by hand, then with an optimizer.

The weights and the input come from NumPy so that both engines compute the same numbers.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        # Convolution layer C1: 1 input image channel, 6 output channels, 5x5 square convolution
        c1 = F.relu(self.conv1(input))
        # Subsampling layer S2: 2x2 grid, purely functional
        s2 = F.max_pool2d(c1, (2, 2))
        # Convolution layer C3: 6 input channels, 16 output channels, 5x5 square convolution
        c3 = F.relu(self.conv2(s2))
        # Subsampling layer S4: 2x2 grid, purely functional
        s4 = F.max_pool2d(c3, 2)
        # Flatten operation: purely functional, outputs a (N, 400) Tensor
        s4 = torch.flatten(s4, 1)
        # Fully connected layers F5, F6 and the output layer
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


rng = np.random.RandomState(1)
net = Net()
with torch.no_grad():
    for param in net.parameters():
        param.copy_(torch.from_numpy(rng.uniform(-0.15, 0.15, tuple(param.shape)).astype(np.float32)))

params = list(net.parameters())
print(len(params))
print(tuple(params[0].size()))  # conv1's .weight
print("parameters:", sum(p.numel() for p in net.parameters()))

input = torch.from_numpy(rng.randn(1, 1, 32, 32).astype(np.float32))
out = net(input)
print("out:", [round(v, 5) for v in out[0].tolist()])

net.zero_grad()
out.backward(torch.from_numpy(rng.randn(1, 10).astype(np.float32)))
print("conv1.bias.grad after a random backward:", [round(v, 5) for v in net.conv1.bias.grad.tolist()])

output = net(input)
target = torch.from_numpy(rng.randn(10).astype(np.float32))  # a dummy target, for example
target = target.view(1, -1)  # make it the same shape as output
criterion = nn.MSELoss()

loss = criterion(output, target)
print(f"loss: {loss.item():.6f}")

net.zero_grad()  # zeroes the gradient buffers of all parameters
print("conv1.bias.grad before backward")
print(net.conv1.bias.grad)
loss.backward()
print("conv1.bias.grad after backward")
print([round(v, 6) for v in net.conv1.bias.grad.tolist()])

learning_rate = 0.01
for f in net.parameters():
    f.data.sub_(f.grad.data * learning_rate)
print(f"loss after a step by hand: {criterion(net(input), target).item():.6f}")

# create your optimizer
optimizer = optim.SGD(net.parameters(), lr=0.01)
for step in range(5):
    # in your training loop:
    optimizer.zero_grad()  # zero the gradient buffers
    output = net(input)
    loss = criterion(output, target)
    loss.backward()
    optimizer.step()  # Does the update
    print(f"step {step}: loss {loss.item():.6f}")
