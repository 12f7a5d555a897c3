"""LinearStep: step size changing linearly with the weight, with device-to-device slope spread.

aihwkit ``LinearStepDevice``. ``q_plus = 1 - gamma_up w / w_max``, ``q_minus = 1 - gamma_down w / w_min`` with
per-device ``gamma = |gamma + gamma_dtod xi|``; slopes refer to the *mean* bounds by default
(``mean_bound_reference``). gamma = 1 with per-device bounds is SoftBounds; gamma = 0 is ConstantStep.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar_sim.validation import check_bool, check_float
from crossbar_sim.kernels import update as K

from .base import PulsedDevice, linear_slopes


@dataclass(frozen=True, repr=False)
class LinearStepDevice(PulsedDevice):
    """Linear step device.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    gamma_up, gamma_down : float
        Relative decrease of the up (down) step at the upper (lower) bound.
    gamma_up_dtod, gamma_down_dtod : float
        Device-to-device spread of gamma (aihwkit default 0.05).
    allow_increasing : bool
        Allow negative gamma (steps growing towards the bound); otherwise ``|gamma|`` is used.
    mean_bound_reference : bool
        Slopes relative to the mean bounds ``w_max``/``w_min`` (True) or to each device's bounds.
    mult_noise : bool
        Multiplicative (True) or additive cycle-to-cycle noise.
    """

    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    allow_increasing: bool = False
    mean_bound_reference: bool = True
    mult_noise: bool = True

    name = "LinearStep"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_float(self.gamma_up, "gamma_up", owner)
        check_float(self.gamma_down, "gamma_down", owner)
        check_float(self.gamma_up_dtod, "gamma_up_dtod", owner, 0.0)
        check_float(self.gamma_down_dtod, "gamma_down_dtod", owner, 0.0)
        check_bool(self.allow_increasing, "allow_increasing", owner)
        check_bool(self.mean_bound_reference, "mean_bound_reference", owner)
        check_bool(self.mult_noise, "mult_noise", owner)

    def _gammas(self):
        gu, gd = self.gamma_up, self.gamma_down
        if not self.allow_increasing:
            gu, gd = abs(gu), abs(gd)
        return gu, gd

    def q_plus(self, w):
        gu, _ = self._gammas()
        return 1.0 - gu * np.asarray(w, dtype=float) / self.w_max if self.w_max != 0 else np.ones_like(w)

    def q_minus(self, w):
        _, gd = self._gammas()
        return 1.0 - gd * np.asarray(w, dtype=float) / self.w_min if self.w_min != 0 else np.ones_like(w)

    def noise_mode(self) -> int:
        return K.NOISE_MULT if self.mult_noise else K.NOISE_ADD

    def _shape_params(self, dp, xi, reset_bias) -> None:
        gu = self.gamma_up + self.gamma_up_dtod * xi[0]
        gd = self.gamma_down + self.gamma_down_dtod * xi[1]
        if not self.allow_increasing:
            gu, gd = np.abs(gu), np.abs(gd)
        ref_up = self.w_max if self.mean_bound_reference else dp[K.HI]
        ref_dn = self.w_min if self.mean_bound_reference else dp[K.LO]
        dp[K.LU] = linear_slopes(dp[K.SU], np.broadcast_to(ref_up, dp[K.SU].shape), gu)
        dp[K.LD] = linear_slopes(dp[K.SD], np.broadcast_to(ref_dn, dp[K.SD].shape), gd)
