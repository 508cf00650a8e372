"""Learn the Basics, "Quickstart": data in a DataLoader, a model, train/test loops, saving and loading.

FashionMNIST is a synthetic dataset of the same kind here (8x8 "garments" made by
NumPy, in a TensorDataset), and the model's weights come from NumPy, so that both
engines compute the same numbers.
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def synthetic_fashion(count, seed):
    """Images (count, 1, 8, 8) in [0, 1]: each class a fixed pattern, plus noise; labels (count,)."""
    rng = np.random.RandomState(seed)
    patterns = np.random.RandomState(7).rand(10, 1, 8, 8)
    labels = rng.randint(0, 10, count)
    images = np.clip(0.7 * patterns[labels] + 0.3 * rng.rand(count, 1, 8, 8), 0, 1).astype(np.float32)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


training_data = synthetic_fashion(512, seed=1)
test_data = synthetic_fashion(128, seed=2)

batch_size = 32

# Create data loaders.
train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)

for X, y in test_dataloader:
    print(f"Shape of X [N, C, H, W]: {tuple(X.shape)}")
    print(f"Shape of y: {tuple(y.shape)} {str(y.dtype).split('.')[-1]}")
    break

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"Using {device.type} device")


# Define model
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(8 * 8, 64),
            nn.ReLU(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 10)
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def numpy_init(model, seed):
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            bound = 1 / np.sqrt(param.shape[-1]) if name.endswith("weight") else 0.05
            param.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(param.shape)).astype(np.float32)))


model = NeuralNetwork().to(device)
numpy_init(model, seed=3)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 5 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct


epochs = 5
for t in range(epochs):
    print(f"Epoch {t+1}\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    accuracy = test(test_dataloader, model, loss_fn)
print("Done!")

torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")

model = NeuralNetwork().to(device)
model.load_state_dict(torch.load("model.pth", weights_only=True))

model.eval()
x, y = test_data[0][0], test_data[0][1]
with torch.no_grad():
    x = x.to(device)
    pred = model(x.unsqueeze(0))
    predicted, actual = classes[pred[0].argmax(0)], classes[y]
    print(f'Predicted: "{predicted}", Actual: "{actual}"')
print("loaded model scores as trained:", round(test(test_dataloader, model, loss_fn), 6) == round(accuracy, 6))
