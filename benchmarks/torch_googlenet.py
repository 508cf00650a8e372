"""The same GoogLeNet in PyTorch, for side-by-side timing only (PyTorch is never a minicnn dependency).

Built from minicnn's own :data:`models.googlenet.INCEPTION_TABLE`, layer for
layer as :class:`models.googlenet.GoogLeNet` with the CIFAR stem: the same
convolutions, pools, LRN or batch norm, auxiliary heads and dropout. Importing
this module needs torch.
"""
import torch
from torch import nn

from models.googlenet import INCEPTION_TABLE, scale_channels


def _unit(norm, cin, cout, kernel, padding=0):
    if norm == "bn":
        return [nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), nn.BatchNorm2d(cout, eps=1e-3),
                nn.ReLU(inplace=True)]
    return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.ReLU(inplace=True)]


class Inception(nn.Module):
    def __init__(self, norm, cin, spec):
        super().__init__()
        self.b1 = nn.Sequential(*_unit(norm, cin, spec.n1x1, 1))
        self.b2 = nn.Sequential(*_unit(norm, cin, spec.n3x3_reduce, 1), *_unit(norm, spec.n3x3_reduce, spec.n3x3, 3, 1))
        self.b3 = nn.Sequential(*_unit(norm, cin, spec.n5x5_reduce, 1), *_unit(norm, spec.n5x5_reduce, spec.n5x5, 5, 2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), *_unit(norm, cin, spec.pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class AuxHead(nn.Module):
    def __init__(self, norm, cin, num_classes, width):
        super().__init__()
        conv, hidden = scale_channels(128, width), scale_channels(1024, width)
        self.body = nn.Sequential(nn.AvgPool2d(5, 3), *_unit(norm, cin, conv, 1), nn.Flatten(),
                                  nn.Linear(conv * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(0.7),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.body(x)


class TorchGoogLeNet(nn.Module):
    """CIFAR-stem GoogLeNet; training mode returns (logits, aux1, aux2)."""

    def __init__(self, num_classes=10, norm="lrn", width=1.0):
        super().__init__()
        c = lambda n: scale_channels(n, width)  # noqa: E731
        lrn = [nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)] if norm == "lrn" else []
        self.stem = nn.Sequential(*_unit(norm, 3, c(64), 3, 1), *lrn, *_unit(norm, c(64), c(64), 1),
                                  *_unit(norm, c(64), c(192), 3, 1), *lrn)
        blocks, cin = {}, c(192)
        for name, spec in INCEPTION_TABLE.items():
            spec = spec.scaled(width)
            blocks[name] = Inception(norm, cin, spec)
            cin = spec.out_channels
        self.blocks = nn.ModuleDict(blocks)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.aux1 = AuxHead(norm, INCEPTION_TABLE["4a"].scaled(width).out_channels, num_classes, width)
        self.aux2 = AuxHead(norm, INCEPTION_TABLE["4d"].scaled(width).out_channels, num_classes, width)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        b = self.blocks
        x = b["3b"](b["3a"](self.stem(x)))
        x = b["4a"](self.pool(x))
        aux1 = self.aux1(x) if self.training else None
        x = b["4d"](b["4c"](b["4b"](x)))
        aux2 = self.aux2(x) if self.training else None
        x = self.pool(b["4e"](x))
        logits = self.head(b["5b"](b["5a"](x)))
        return (logits, aux1, aux2) if self.training else logits
