"""PiecewiseStep: a measured response table, linearly interpolated on equally spaced nodes.

aihwkit ``PiecewiseStepDevice``: the relative step sizes ``piecewise_up[k]`` / ``piecewise_down[k]`` are
given on ``n`` nodes equally spaced in each device's own ``[b_min, b_max]``; between nodes the step is
interpolated linearly, outside it is clamped to the end nodes. Used for response curves fitted to
measured data (``crossbar-sim fit-device --model piecewise``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossbar_sim.errors import ConfigError
from crossbar_sim.kernels import update as K

from .base import PulsedDevice


@dataclass(frozen=True, repr=False)
class PiecewiseStepDevice(PulsedDevice):
    """Piecewise-linear response.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    piecewise_up, piecewise_down : tuple of float
        Relative step sizes at equally spaced nodes from ``w_min`` to ``w_max`` (same length, >= 1,
        non-negative).
    """

    piecewise_up: tuple = (1.0,)
    piecewise_down: tuple = (1.0,)

    name = "PiecewiseStep"
    model_code = K.MODEL_PIECEWISE

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        up = tuple(self.piecewise_up)
        down = tuple(self.piecewise_down)
        object.__setattr__(self, "piecewise_up", tuple(float(v) for v in up))
        object.__setattr__(self, "piecewise_down", tuple(float(v) for v in down))
        if len(up) < 1 or len(up) != len(down):
            raise ConfigError(
                f"The 'piecewise_up' and 'piecewise_down' parameters of {owner} must be non-empty lists of "
                f"the same length. Got lengths {len(up)} and {len(down)} instead."
            )
        for name, vals in (("piecewise_up", up), ("piecewise_down", down)):
            for v in vals:
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0.0):
                    raise ConfigError(
                        f"The '{name}' parameter of {owner} must hold finite values >= 0. Got {v!r} in {vals!r}."
                    )

    def _interp(self, table, w):
        t = np.asarray(table, dtype=float)
        ns = t.size - 1
        w = np.asarray(w, dtype=float)
        if ns <= 0:
            return np.full_like(w, t[0])
        ws = np.maximum((w - self.w_min) / (self.w_max - self.w_min) * ns, 0.0)
        idx = np.minimum(np.floor(ws).astype(int), ns - 1)
        frac = np.minimum(ws - idx, 1.0)
        return (1.0 - frac) * t[idx] + frac * t[idx + 1]

    def q_plus(self, w):
        return self._interp(self.piecewise_up, w)

    def q_minus(self, w):
        return self._interp(self.piecewise_down, w)

    def granularity(self) -> float:
        n = len(self.piecewise_up)
        return self.dw_min * self.piecewise_up[n // 2]

    def tile_params(self) -> np.ndarray:
        n = len(self.piecewise_up)
        return np.array([float(n), *self.piecewise_up, *self.piecewise_down], np.float64)
