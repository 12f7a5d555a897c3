"""PowStepReference: the PowStep response evaluated at ``w + ref``, with an optional symmetric-point reference.

aihwkit ``PowStepReferenceDevice`` (``rpu_powstep_reference_device.cpp``): per device a reference
``ref = reference_mean + reference_std * xi``; a pulse moves ``u = w + ref`` as PowStep moves its weight
(``u += dw_up ((b_max - u)/(b_max - b_min))^gamma_up``, ``u -= dw_down ((u - b_min)/(b_max - b_min))^gamma_down``),
clips ``u`` to the device's bounds and stores ``w = u - ref``. With ``subtract_symmetry_point`` each device's
symmetric point ``s`` (where an up and a down pulse cancel) is found by aihwkit's iteration (``n_estimation_steps``
noise-free up + down pulses from 0; by default ``min(round(10 (b_max - b_min) / min(dw_up, dw_down)), 10000)``) and
added to the reference and to the reset value, so that ``w = 0`` is every device's symmetric point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar_sim.kernels import update as K
from crossbar_sim.validation import check_bool, check_float, check_int

from .pow_step import PowStepDevice


@dataclass(frozen=True, repr=False)
class PowStepReferenceDevice(PowStepDevice):
    """PowStep with a per-device reference offset (aihwkit ``PowStepReferenceDevice``).

    Parameters (besides :class:`~crossbar_sim.device_models.PowStepDevice`)
    ----------
    reference_mean, reference_std : float
        Mean and device-to-device spread of the reference offset.
    subtract_symmetry_point : bool
        Add each device's symmetric point (estimated by aihwkit's iteration) to its reference and reset value.
    n_estimation_steps : int
        Iterations of that estimate (<= 0: ``min(round(10 (b_max - b_min) / min(dw_up, dw_down)), 10000)``).
    """

    reference_mean: float = 0.0
    reference_std: float = 0.0
    subtract_symmetry_point: bool = False
    n_estimation_steps: int = -1

    name = "PowStepReference"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_float(self.reference_mean, "reference_mean", owner)
        check_float(self.reference_std, "reference_std", owner, 0.0)
        check_bool(self.subtract_symmetry_point, "subtract_symmetry_point", owner)
        check_int(self.n_estimation_steps, "n_estimation_steps", owner, -1, 10**7)
        if self.write_noise_std > 0:
            from crossbar_sim.errors import ConfigError

            raise ConfigError(f"The 'write_noise_std' parameter of {owner} must be 0 (aihwkit: 'Device does not "
                              f"support write noise'). Got {self.write_noise_std!r} instead.")

    def q_plus(self, w):
        return super().q_plus(np.asarray(w, dtype=float) + self.reference_mean)

    def q_minus(self, w):
        return super().q_minus(np.asarray(w, dtype=float) + self.reference_mean)

    def _shape_params(self, dp, xi, reset_bias) -> None:
        super()._shape_params(dp, xi, reset_bias)
        ref = self.reference_mean + self.reference_std * xi[2]
        if self.subtract_symmetry_point:
            sp = self._symmetry_points(dp)  # 0 where the bounds do not straddle 0
            ref = ref + sp
            reset_bias += sp
        dp[K.REF] = ref

    def symmetric_point(self) -> float:
        return 0.0 if self.subtract_symmetry_point else super().symmetric_point()

    @staticmethod
    def _sp_mask(dp):
        return (dp[K.HI] > 0.0) & (dp[K.LO] < 0.0)

    def _symmetry_points(self, dp) -> np.ndarray:
        """aihwkit's estimate of each device's symmetric point (float32 arithmetic, as its populate)."""
        f = np.float32
        su, sd = dp[K.SU].astype(f), dp[K.SD].astype(f)
        gu, gd = dp[K.LU].astype(f), dp[K.LD].astype(f)
        bu, bd = dp[K.HI].astype(f), dp[K.LO].astype(f)
        ok = self._sp_mask(dp)
        r = np.where(ok, bu - bd, f(1.0)).astype(f)
        if self.n_estimation_steps > 0:
            n = np.full(su.shape, self.n_estimation_steps, np.int64)
        else:
            m = np.minimum(np.abs(sd), np.abs(su))
            n = np.minimum(np.floor(f(10.0) * (r / np.where(m > 0, m, f(1.0))) + f(0.5)).astype(np.int64), 10000)
        n = np.where(ok, n, 0)
        sp = np.zeros(su.shape, f)
        for k in range(int(n.max()) if n.size else 0):
            step = (-sd * np.power(np.maximum((sp - bd) / r, f(0.0)), gd)
                    + su * np.power(np.maximum((bu - sp) / r, f(0.0)), gu)).astype(f)
            sp = np.where(k < n, sp + step, sp).astype(f)
        return sp.astype(np.float64)
