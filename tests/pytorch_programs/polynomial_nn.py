"""Learning PyTorch with Examples: the polynomial fit with the nn package (a Linear layer over x, x^2,
x^3), stepping by hand under no_grad, then again with torch.optim's RMSprop.

The Linear layers start from NumPy's generator, so that both engines take the same steps.
"""
import math

import numpy as np
import torch

# Create Tensors to hold input and outputs.
x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

# For this example, the output y is a linear function of (x, x^2, x^3), so
# we can consider it as a linear layer neural network. Let's prepare the
# tensor (x, x^2, x^3).
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)
print("xx:", tuple(xx.shape), str(xx.dtype).split(".")[-1])

rng = np.random.RandomState(3)


def make_model():
    # Use the nn package to define our model as a sequence of layers. nn.Sequential
    # is a Module which contains other Modules, and applies them in sequence to
    # produce its output. The Linear Module computes output from input using a
    # linear function, and holds internal Tensors for its weight and bias.
    # The Flatten layer flatens the output of the linear layer to a 1D tensor,
    # to match the shape of `y`.
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 1),
        torch.nn.Flatten(0, 1)
    )
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(param.shape)).astype(np.float32)))
    return model


def result(model):
    # You can access the first layer of `model` like accessing the first item of a list
    linear_layer = model[0]
    # For linear layer, its parameters are stored as `weight` and `bias`.
    return (f'Result: y = {linear_layer.bias.item():.6f} + {linear_layer.weight[:, 0].item():.6f} x + '
            f'{linear_layer.weight[:, 1].item():.6f} x^2 + {linear_layer.weight[:, 2].item():.6f} x^3')


model = make_model()
# The nn package also contains definitions of popular loss functions; in this
# case we will use Mean Squared Error (MSE) as our loss function.
loss_fn = torch.nn.MSELoss(reduction='sum')

learning_rate = 1e-6
for t in range(2000):
    # Forward pass: compute predicted y by passing x to the model.
    y_pred = model(xx)

    # Compute and print loss.
    loss = loss_fn(y_pred, y)
    if t % 100 == 99:
        print(t, f"{loss.item():.4f}")

    # Zero the gradients before running the backward pass.
    model.zero_grad()

    # Backward pass: compute gradient of the loss with respect to all the learnable
    # parameters of the model.
    loss.backward()

    # Update the weights using gradient descent. Each parameter is a Tensor, so
    # we can access its gradients like we did before.
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad

print(result(model))

# The same fit with an optimizer from torch.optim: RMSprop. 1000 steps, not the tutorial's 2000:
# once RMSprop's steps of nearly fixed size hover around the minimum, float32 rounding (each
# engine adds up the loss in its own order) decides where they land, in PyTorch run to run as well.
model = make_model()
loss_fn = torch.nn.MSELoss(reduction='sum')
learning_rate = 1e-3
optimizer = torch.optim.RMSprop(model.parameters(), lr=learning_rate)
for t in range(1000):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t % 100 == 99:
        print(t, f"{loss.item():.4f}")
    # Before the backward pass, use the optimizer object to zero all of the
    # gradients for the variables it will update (which are the learnable
    # weights of the model).
    optimizer.zero_grad()
    loss.backward()
    # Calling the step function on an Optimizer makes an update to its parameters
    optimizer.step()
    if t == 499:  # halve the learning rate half way, as a scheduler would
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] / 2

print(result(model))
