"""PowStep: power-law dependence of the step on the distance to the bound.

aihwkit ``PowStepDevice``: ``q_plus = ((b_max - w)/(b_max - b_min))^gamma_up``,
``q_minus = ((w - b_min)/(b_max - b_min))^gamma_down`` with per-device exponents
``gamma_up = |(min(beta, 0) + g + r) pow_gamma|``, ``gamma_down = |(-max(beta, 0) + g - r) pow_gamma|``,
``g = 1 + pow_gamma_dtod xi``, ``r = pow_up_down_dtod xi``, ``beta = pow_up_down``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar_sim.validation import check_float
from crossbar_sim.kernels import update as K

from .base import PulsedDevice


@dataclass(frozen=True, repr=False)
class PowStepDevice(PulsedDevice):
    """Power-step device.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    pow_gamma : float
        Exponent of the response (> 0).
    pow_gamma_dtod : float
        Device-to-device spread of the exponent (aihwkit default 0.1).
    pow_up_down : float
        Up/down asymmetry of the exponent.
    pow_up_down_dtod : float
        Device-to-device spread of that asymmetry.
    """

    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0

    name = "PowStep"
    model_code = K.MODEL_POW

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_float(self.pow_gamma, "pow_gamma", owner, 0.0, closed_lo=False)
        check_float(self.pow_gamma_dtod, "pow_gamma_dtod", owner, 0.0)
        check_float(self.pow_up_down, "pow_up_down", owner)
        check_float(self.pow_up_down_dtod, "pow_up_down_dtod", owner, 0.0)

    def _gammas(self):
        beta = self.pow_up_down
        gu = abs((min(beta, 0.0) + 1.0) * self.pow_gamma)
        gd = abs((-max(beta, 0.0) + 1.0) * self.pow_gamma)
        return gu, gd

    def q_plus(self, w):
        gu, _ = self._gammas()
        x = np.clip((self.w_max - np.asarray(w, dtype=float)) / (self.w_max - self.w_min), 0.0, None)
        return x**gu

    def q_minus(self, w):
        _, gd = self._gammas()
        x = np.clip((np.asarray(w, dtype=float) - self.w_min) / (self.w_max - self.w_min), 0.0, None)
        return x**gd

    def granularity(self) -> float:
        return self.dw_min * 0.5**self.pow_gamma

    def _shape_params(self, dp, xi, reset_bias) -> None:
        beta = self.pow_up_down
        g = 1.0 + self.pow_gamma_dtod * xi[0]
        r = self.pow_up_down_dtod * xi[1]
        gu = (min(beta, 0.0) + g + r) * self.pow_gamma
        gd = (-max(beta, 0.0) + g - r) * self.pow_gamma
        if self.enforce_consistency:
            gu, gd = np.abs(gu), np.abs(gd)
        dp[K.LU] = gu
        dp[K.LD] = gd
