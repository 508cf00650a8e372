"""Fine-tuning a GoogLeNet: load "pretrained" weights from a state_dict, freeze the features, replace the
classifier, and train only the new classifier (as the fine-tuning tutorial does with torchvision's
models; here a small GoogLeNet-style network with inception blocks, on synthetic 16x16 images).

Every weight comes from NumPy, so that both engines compute the same numbers.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class BasicConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        return F.relu(x)


class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outputs, 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes=10, dropout=0.2):
        super().__init__()
        self.conv1 = BasicConv2d(3, 16, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(16, 8, 8, 12, 4, 6, 6)
        self.inception3b = Inception(32, 12, 12, 16, 4, 8, 8)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(44, 16, 8, 16, 4, 8, 8)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.maxpool3(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def set_parameters_from_numpy(model, seed):
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bn.weight"):
                values = rng.uniform(0.8, 1.2, tuple(param.shape))
            else:
                fan_in = int(np.prod(param.shape[1:])) if param.dim() > 1 else 10
                values = rng.uniform(-1, 1, tuple(param.shape)) / np.sqrt(fan_in)
            param.copy_(torch.from_numpy(values.astype(np.float32)))


# The "pretrained" model: weights from NumPy, saved as a downloaded checkpoint would be.
pretrained = GoogLeNet(num_classes=10)
set_parameters_from_numpy(pretrained, seed=11)
torch.save(pretrained.state_dict(), "googlenet_pretrained.pth")

# Fine-tuning starts here, as in the tutorial: build the model, load the weights.
model_ft = GoogLeNet(num_classes=10, dropout=0.0)
result = model_ft.load_state_dict(torch.load("googlenet_pretrained.pth", weights_only=True))
print("missing and unexpected keys:", len(result.missing_keys), len(result.unexpected_keys))
print("parameter tensors:", len(list(model_ft.parameters())))

# Freeze every feature parameter, then reshape the network: a new classifier for 3 classes.
for param in model_ft.parameters():
    param.requires_grad_(False)
num_ftrs = model_ft.fc.in_features
model_ft.fc = nn.Linear(num_ftrs, 3)
with torch.no_grad():
    rng = np.random.RandomState(12)
    model_ft.fc.weight.copy_(torch.from_numpy(rng.uniform(-0.1, 0.1, (3, num_ftrs)).astype(np.float32)))
    model_ft.fc.bias.zero_()

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
model_ft = model_ft.to(device)

params_to_update = []
for name, param in model_ft.named_parameters():
    if param.requires_grad:
        params_to_update.append(param)
        print("\t", name)

# Synthetic data: 3 classes, each a colour tint over noise.
data_rng = np.random.RandomState(13)
labels = data_rng.randint(0, 3, 48)
tints = np.eye(3)[labels][:, :, None, None]
images = (tints + 0.5 * data_rng.randn(48, 3, 16, 16)).astype(np.float32)
inputs_all, labels_all = torch.from_numpy(images), torch.from_numpy(labels)

optimizer_ft = optim.SGD(params_to_update, lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
frozen_before = model_ft.inception4a.branch1.conv.weight.clone()

for epoch in range(4):
    model_ft.train()
    running_loss, running_corrects = 0.0, 0
    for start in range(0, 48, 12):
        inputs = inputs_all[start:start + 12].to(device)
        targets = labels_all[start:start + 12].to(device)
        optimizer_ft.zero_grad()
        with torch.set_grad_enabled(True):
            outputs = model_ft(inputs)
            loss = criterion(outputs, targets)
            _, preds = torch.max(outputs, 1)
            loss.backward()
            optimizer_ft.step()
        running_loss += loss.item() * inputs.size(0)
        running_corrects += torch.sum(preds == targets).item()
    print(f"epoch {epoch}: loss {running_loss / 48:.5f} acc {running_corrects / 48:.4f}")

model_ft.eval()
with torch.no_grad():
    logits = model_ft(inputs_all.to(device))
print("eval logits[0]:", [round(v, 4) for v in logits[0].tolist()])
print("eval accuracy:", (logits.argmax(1) == labels_all).float().mean().item())
print("features unchanged:", bool((frozen_before == model_ft.inception4a.branch1.conv.weight).all()))
print("running mean moved:", model_ft.conv1.bn.running_mean.abs().sum().item() > 0)
