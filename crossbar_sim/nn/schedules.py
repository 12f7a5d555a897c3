"""Learning-rate schedules as pure functions of the epoch (nanoGPT style).

``lr_at(epoch, base_lr, schedule, step_size, gamma)`` gives the SGD learning rate used during epoch ``epoch``
(0-based). ``step`` is PyTorch's ``StepLR(step_size, gamma)`` stepped once per epoch: the paper uses
``StepLR(35, 0.1)`` (epochs 0-34 at lr, 35-69 at lr/10, 70-79 at lr/100).

With Tiki-Taka the schedule scales the SGD learning rate, i.e. the transfer learning rate (``scale_transfer_lr``);
``fast_lr`` is absolute and stays fixed, as in aihwkit.
"""
from __future__ import annotations

import math

SCHEDULES = ("constant", "step", "cosine")


def step_lr(epoch: int, base_lr: float, step_size: int = 35, gamma: float = 0.1) -> float:
    """PyTorch ``StepLR``: ``base_lr * gamma ** (epoch // step_size)``."""
    return base_lr * gamma ** (epoch // step_size)


def cosine_lr(epoch: int, base_lr: float, total_epochs: int, min_lr: float = 0.0) -> float:
    """Cosine annealing from ``base_lr`` to ``min_lr`` over ``total_epochs``."""
    t = min(epoch, total_epochs) / max(total_epochs, 1)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * t))


def lr_at(epoch: int, base_lr: float, schedule: str = "step", step_size: int = 35, gamma: float = 0.1,
          total_epochs: int = 1) -> float:
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return step_lr(epoch, base_lr, step_size, gamma)
    if schedule == "cosine":
        return cosine_lr(epoch, base_lr, total_epochs)
    raise ValueError(f"unknown schedule {schedule!r}; allowed: {SCHEDULES}")
