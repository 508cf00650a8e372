"""minicnn.nn: layers as Modules, with PyTorch's names (``from minicnn import nn``)."""
from .. import functional  # noqa: F401 (torch.nn.functional: `import minicnn.nn.functional as F` finds it here)
from . import init, utils
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear,
                     LocalResponseNorm, LogSoftmax, MaxPool2d, ReLU, Sigmoid, SiLU, Softmax, SyncBatchNorm, Tanh)
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Buffer, Module, Parameter, count_parameters

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Buffer", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Flatten", "Identity", "Linear", "LocalResponseNorm", "LogSoftmax", "MSELoss", "MaxPool2d", "Module",
           "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "SiLU", "Softmax",
           "SyncBatchNorm", "Tanh", "count_parameters", "init", "utils"]
