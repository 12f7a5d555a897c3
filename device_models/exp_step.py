"""ExpStep: exponential dependence of the step on the weight (ReRAM, Gong et al. 2018).

aihwkit ``ExpStepDevice``. With ``z = 2 a w / (b_max - b_min) + b``:
``q_plus = max(1 - A_up exp(gamma_up z), 0)``, ``q_minus = max(1 - A_down exp(-gamma_down z), 0)``.
The defaults are aihwkit's fit to the HfO2 ReRAM of Gong et al., Nat. Commun. 9, 2102 (2018).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossbar_sim.validation import check_float
from crossbar_sim.kernels import update as K

from .base import PulsedDevice


@dataclass(frozen=True, repr=False)
class ExpStepDevice(PulsedDevice):
    """Exponential step device (tile-wide shape parameters, per-device bounds and steps).

    Parameters (besides :class:`PulsedDevice`)
    ----------
    A_up, A_down, gamma_up, gamma_down, a, b : float
        Shape of the response (see module docstring).
    dw_min_std_add, dw_min_std_slope : float
        Extra cycle-to-cycle noise: the per-pulse spread becomes
        ``dw_min_std * (|dw| + dw_min_std_add + dw_min_std_slope |w|)`` (additive form).
    """

    A_up: float = 0.00081
    A_down: float = 0.36833
    gamma_up: float = 12.44625
    gamma_down: float = 12.78785
    a: float = 0.244
    b: float = 0.2425
    dw_min_std_add: float = 0.0
    dw_min_std_slope: float = 0.0

    name = "ExpStep"
    model_code = K.MODEL_EXP

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        # A_up / A_down may be negative (steps growing away from the bound): aihwkit's fitted ReRAM and PCM
        # presets use A < 0
        for f in ("A_up", "A_down"):
            check_float(getattr(self, f), f, owner)
        for f in ("dw_min_std_add", "dw_min_std_slope"):
            check_float(getattr(self, f), f, owner, 0.0)
        for f in ("gamma_up", "gamma_down", "a", "b"):
            check_float(getattr(self, f), f, owner)

    def _z(self, w):
        return 2.0 * self.a * np.asarray(w, dtype=float) / (self.w_max - self.w_min) + self.b

    def q_plus(self, w):
        return np.maximum(1.0 - self.A_up * np.exp(self.gamma_up * self._z(w)), 0.0)

    def q_minus(self, w):
        return np.maximum(1.0 - self.A_down * np.exp(-self.gamma_down * self._z(w)), 0.0)

    def granularity(self) -> float:
        # the down step at w = 0 (z = b), SPEC section 3
        return self.dw_min * max(1.0 - self.A_down * math.exp(-self.gamma_down * self.b), 0.0)

    def noise_mode(self) -> int:
        if self.dw_min_std_add > 0.0 or self.dw_min_std_slope > 0.0:
            return K.NOISE_COMPLEX
        return K.NOISE_MULT

    def tile_params(self) -> np.ndarray:
        return np.array([self.a, self.b, self.A_up, self.A_down, self.gamma_up, self.gamma_down,
                         self.dw_min_std_add, self.dw_min_std_slope], np.float64)
