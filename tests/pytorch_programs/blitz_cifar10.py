"""The 60-minute blitz, "Training a Classifier" (CIFAR-10), on a tiny synthetic CIFAR-like dataset.

Each class is an image pattern plus noise, made by NumPy here (no download). Each
engine initialises the network its own way (torch.manual_seed), so the numbers
compared are loose: the loss falls and the accuracy is well above chance.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(0)
classes = ('plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')


class SyntheticCIFAR(Dataset):
    """CIFAR-10's shapes: (3, 32, 32) images normalized to about [-1, 1], labels 0-9."""

    def __init__(self, count, seed):
        rng = np.random.RandomState(seed)
        patterns = np.random.RandomState(100).uniform(-1, 1, (10, 3, 8, 8))
        self.labels = rng.randint(0, 10, count)
        images = patterns[self.labels].repeat(4, axis=2).repeat(4, axis=3)
        self.images = (0.6 * images + 0.4 * rng.randn(count, 3, 32, 32)).astype(np.float32)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return torch.from_numpy(self.images[index]), int(self.labels[index])


batch_size = 4
trainset = SyntheticCIFAR(240, seed=1)
trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True, num_workers=2)
testset = SyntheticCIFAR(100, seed=2)
testloader = DataLoader(testset, batch_size=batch_size, shuffle=False, num_workers=2)

images, labels = next(iter(trainloader))
print("batch:", tuple(images.shape), tuple(labels.shape))
print(' '.join(f'{classes[labels[j]]:5s}' for j in range(batch_size)) != "")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

epoch_losses = []
for epoch in range(3):  # loop over the dataset multiple times
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        # get the inputs; data is a list of [inputs, labels]
        inputs, labels = data
        # zero the parameter gradients
        optimizer.zero_grad()
        # forward + backward + optimize
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    epoch_losses.append(running_loss / len(trainloader))
    print(f"~ epoch {epoch + 1} loss: {epoch_losses[-1]:.3f}")
print('Finished Training')
print("loss fell:", epoch_losses[-1] < 0.5 * epoch_losses[0])

PATH = './cifar_net.pth'
torch.save(net.state_dict(), PATH)
net = Net()
net.load_state_dict(torch.load(PATH, weights_only=True))

correct = 0
total = 0
# since we're not training, we don't need to calculate the gradients for our outputs
with torch.no_grad():
    for data in testloader:
        images, labels = data
        # calculate outputs by running images through the network
        outputs = net(images)
        # the class with the highest energy is what we choose as prediction
        _, predicted = torch.max(outputs, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
print(f'~ Accuracy of the network on the {total} test images: {100 * correct // total} %')
print("accuracy above chance:", correct / total > 0.5)

# prepare to count predictions for each class
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = net(images)
        _, predictions = torch.max(outputs, 1)
        # collect the correct predictions for each class
        for label, prediction in zip(labels, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1
print("per-class counts add up:", sum(total_pred.values()) == total, sum(correct_pred.values()) == correct)

device = torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')
net.to(device)
inputs, labels = inputs.to(device), labels.to(device)
print("runs on the chosen device:", net(inputs).shape[0] == batch_size)
