"""minicnn.nn: layers as Modules, with PyTorch's names (``from minicnn import nn``)."""
from . import init
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear,
                     LocalResponseNorm, MaxPool2d, ReLU, SyncBatchNorm)
from .module import Buffer, Module, Parameter, Sequential, count_parameters

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Buffer", "Conv2d", "Dropout", "Flatten",
           "Identity", "Linear", "LocalResponseNorm", "MaxPool2d", "Module", "Parameter", "ReLU",
           "Sequential", "SyncBatchNorm", "count_parameters", "init"]
