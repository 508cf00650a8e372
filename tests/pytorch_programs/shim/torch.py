"""The import shim: with this folder first on PYTHONPATH, ``import torch`` imports minicnn.

It maps names and nothing else: each PyTorch module a tutorial imports is
minicnn's module of the same job. It defines no function, class or value of its
own (tests/test_pytorch_programs.py checks), so a program that runs through it
runs on minicnn alone.
"""
import sys

import minicnn
import minicnn.autograd
import minicnn.functional
import minicnn.nn
import minicnn.optim
import minicnn.utils
import minicnn.utils.data

sys.modules.update({
    "torch": minicnn,
    "torch.nn": minicnn.nn,
    "torch.nn.functional": minicnn.functional,
    "torch.optim": minicnn.optim,
    "torch.utils": minicnn.utils,
    "torch.utils.data": minicnn.utils.data,
    "torch.autograd": minicnn.autograd,
})
