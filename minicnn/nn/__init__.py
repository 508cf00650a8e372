"""minicnn.nn: layers as Modules, with PyTorch's names (``from minicnn import nn``)."""
from . import init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear,
                     LocalResponseNorm, MaxPool2d, ReLU, SiLU, SyncBatchNorm)
from .module import Buffer, Module, Parameter, count_parameters

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Buffer", "Conv2d", "Dropout", "Flatten",
           "Identity", "Linear", "LocalResponseNorm", "MaxPool2d", "Module", "ModuleDict", "ModuleList",
           "Parameter", "ReLU", "Sequential", "SiLU", "SyncBatchNorm", "count_parameters", "init"]
