"""The learning-rate schedules behind ``--schedule``.

Every schedule here is stepped once per training batch, and each is a closed-form
function of the number of batches done (``scheduler.last_epoch``), so a
checkpoint that stores that count resumes the schedule exactly:

    onecycle  warm up from lr/25 to lr over the first 30% of the batches, then anneal
              (cosine) to lr/25/1e4 at the end (Smith & Topin; PyTorch's OneCycleLR)
    cosine    lr * (1 + cos(pi * t / T)) / 2 over all T batches of the run
    step      lr, then lr/10 from 50% of the epochs and lr/100 from 75% (whole epochs)
    paper     GoogLeNet's: lr falls 4% every 8 epochs (lr * 0.96 ** (epoch // 8))
"""
import math

from minicnn import optim
from minicnn.optim.lr_scheduler import LRScheduler

SCHEDULES = ("onecycle", "cosine", "step", "paper")


class EpochStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones passed), with milestones in epochs and
    t counted in batches: epoch = t // steps_per_epoch (PyTorch's MultiStepLR, stepped per batch)."""

    def __init__(self, optimizer, steps_per_epoch, milestones, gamma):
        self.steps_per_epoch, self.milestones, self.gamma = steps_per_epoch, sorted(milestones), gamma
        super().__init__(optimizer)

    def lr_at(self, t):
        epoch = t // self.steps_per_epoch
        return self.base_lr * self.gamma ** sum(epoch >= milestone for milestone in self.milestones)


def make_scheduler(name, optimizer, epochs, steps_per_epoch):
    """The scheduler for ``--schedule name``; it takes the optimizer's lr as its peak/base rate."""
    total_steps = epochs * steps_per_epoch
    if name == "onecycle":
        return optim.OneCycleLR(optimizer, max_lr=optimizer.lr, total_steps=total_steps)
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "step":
        milestones = sorted({max(1, math.ceil(epochs * 0.5)), max(1, math.ceil(epochs * 0.75))})
        return EpochStepLR(optimizer, steps_per_epoch, milestones, gamma=0.1)
    if name == "paper":
        return optim.StepLR(optimizer, step_size=8 * steps_per_epoch, gamma=0.96)
    raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
