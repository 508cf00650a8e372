"""Learning-rate schedules (PyTorch's names). Call ``scheduler.step()`` after each
``optimizer.step()`` (per batch for OneCycleLR, per epoch for the others, as you choose).

The schedule sets ``optimizer.lr`` from a closed-form function of the step
count ``last_epoch``, so saving that one number is enough to resume.
"""
import math


class LRScheduler:
    """Base class: subclasses define ``lr_at(t)`` for step t = 0, 1, ..."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t):
        raise NotImplementedError

    def step(self):
        """Advance one step and set the optimizer's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self):
        return self.optimizer.lr

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state_dict):
        self.last_epoch, self.base_lr = int(state_dict["last_epoch"]), float(state_dict["base_lr"])
        self.optimizer.lr = self.lr_at(self.last_epoch)


def _positive(name, value):
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return value


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (t // step_size). GoogLeNet's paper: step_size 8 epochs, gamma 0.96."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = _positive("step_size", step_size), gamma
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    Past T_max the cosine carries on (the rate rises again), as in PyTorch.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max, self.eta_min = _positive("T_max", T_max), eta_min
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class OneCycleLR(LRScheduler):
    """Warm up from max_lr/div_factor to max_lr over the first pct_start of total_steps,
    then anneal to max_lr/(div_factor*final_div_factor) (Smith & Topin, 2017; PyTorch's rule).

    anneal_strategy: "cos" or "linear".
    """

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4):
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start must lie in (0, 1), got {pct_start!r}")
        self.max_lr, self.total_steps = _positive("max_lr", max_lr), int(_positive("total_steps", total_steps))
        self.initial_lr = max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.warmup_end = float(pct_start * total_steps) - 1
        self.anneal_strategy = anneal_strategy
        super().__init__(optimizer)

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))
        return start + (end - start) * fraction

    def lr_at(self, t):
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, but total_steps is {self.total_steps}")
        if t <= self.warmup_end:
            return self._anneal(self.initial_lr, self.max_lr, t / self.warmup_end if self.warmup_end > 0 else 1.0)
        span = max(self.total_steps - 1 - self.warmup_end, 1e-12)
        return self._anneal(self.max_lr, self.min_lr, min((t - self.warmup_end) / span, 1.0))
