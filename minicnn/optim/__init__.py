"""minicnn.optim: optimizers and learning-rate schedules (PyTorch's names and update rules)."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adam", "AdamW", "CosineAnnealingLR", "OneCycleLR", "Optimizer", "RMSprop", "SGD", "StepLR", "lr_scheduler"]
