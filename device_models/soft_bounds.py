"""SoftBounds: the step shrinks linearly to zero at the bound it approaches.

aihwkit ``SoftBoundsDevice`` (a LinearStep with slope 1 relative to each device's own bounds, multiplicative
cycle-to-cycle noise). Fowler et al. and Gokmen & Haensch (2020) use it as the generic saturating ReRAM/ECRAM
model. ``q_plus = 1 - w / b_max``, ``q_minus = 1 - w / b_min``; symmetric point where they meet (0 for
symmetric bounds and ``up_down = 0``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar_sim.validation import check_bool
from crossbar_sim.kernels import update as K

from .base import PulsedDevice, linear_slopes


@dataclass(frozen=True, repr=False)
class SoftBoundsDevice(PulsedDevice):
    """Soft bounds: ``dw_up (1 - w/b_max)`` up, ``dw_down (1 - w/b_min)`` down, per-device bounds.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    mult_noise : bool
        Cycle-to-cycle noise multiplies the whole step (True, aihwkit default) or is additive in units of
        the step at w = 0.
    """

    mult_noise: bool = True

    name = "SoftBounds"

    def validate(self) -> None:
        super().validate()
        check_bool(self.mult_noise, "mult_noise", type(self).__name__)

    def q_plus(self, w):
        return 1.0 - np.asarray(w, dtype=float) / self.w_max

    def q_minus(self, w):
        return 1.0 - np.asarray(w, dtype=float) / self.w_min

    def noise_mode(self) -> int:
        return K.NOISE_MULT if self.mult_noise else K.NOISE_ADD

    def _shape_params(self, dp, xi, reset_bias) -> None:
        dp[K.LU] = linear_slopes(dp[K.SU], dp[K.HI], 1.0)
        dp[K.LD] = linear_slopes(dp[K.SD], dp[K.LO], 1.0)
