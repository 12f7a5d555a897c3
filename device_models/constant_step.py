"""ConstantStep: every pulse moves the weight by the same step until a hard bound (the "ideal" device).

aihwkit ``ConstantStepDevice``; Gokmen & Vlasov, Front. Neurosci. 10:333 (2016) used it to derive the RPU
specifications. Valid for any dw_min > 0; the response does not depend on the weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import PulsedDevice


@dataclass(frozen=True, repr=False)
class ConstantStepDevice(PulsedDevice):
    """Constant step ``dw_up`` / ``dw_down`` per pulse, clipped to the device's bounds.

    ``q_plus = q_minus = 1``; cycle-to-cycle noise is multiplicative (``dw * (1 + dw_min_std * xi)``).
    """

    name = "ConstantStep"

    def q_plus(self, w):
        return np.ones_like(np.asarray(w, dtype=float))

    def q_minus(self, w):
        return np.ones_like(np.asarray(w, dtype=float))

    def _shape_params(self, dp, xi, reset_bias) -> None:
        pass  # LU = LD = REF = 0: constant steps
