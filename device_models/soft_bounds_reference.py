"""SoftBoundsReference: soft bounds measured from a per-device reference (the paper's device).

aihwkit ``SoftBoundsReferenceDevice``. With ``w_max = -w_min = tau`` and no variation this is the
*asymmetric linear device* of Wu, Gokmen, Rasch & Chen, "Towards Exact Gradient-based Training on Analog
In-memory Computing" (arXiv 2406.12774): ``q_plus = 1 - w/tau``, ``q_minus = 1 + w/tau``, so ``F(w) = 1``
and ``G(w) = w/tau``. Cycle-to-cycle noise is additive by default (``mult_noise=False``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossbar_sim.validation import check_bool, check_float
from crossbar_sim.kernels import update as K

from .base import PulsedDevice


@dataclass(frozen=True, repr=False)
class SoftBoundsReferenceDevice(PulsedDevice):
    """Soft bounds evaluated at ``w + ref``; ``ref = reference_mean + reference_std * xi`` per device.

    Parameters (besides :class:`PulsedDevice`)
    ----------
    mult_noise : bool
        Multiplicative (True) or additive (False, default) cycle-to-cycle noise.
    slope_up_dtod, slope_down_dtod : float
        Extra device-to-device spread of the slopes (the bounds become ``b / |1 + slope_dtod * xi|``).
    reference_mean, reference_std : float
        Mean and device-to-device spread of the reference offset.
    subtract_symmetry_point : bool
        Add each device's symmetric point to its reference (and reset value), so that ``w = 0`` is the
        symmetric point of every device.
    """

    mult_noise: bool = False
    slope_up_dtod: float = 0.0
    slope_down_dtod: float = 0.0
    reference_mean: float = 0.0
    reference_std: float = 0.0
    subtract_symmetry_point: bool = False

    name = "SoftBoundsReference"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_bool(self.mult_noise, "mult_noise", owner)
        check_float(self.slope_up_dtod, "slope_up_dtod", owner, 0.0)
        check_float(self.slope_down_dtod, "slope_down_dtod", owner, 0.0)
        check_float(self.reference_mean, "reference_mean", owner)
        check_float(self.reference_std, "reference_std", owner, 0.0)
        check_bool(self.subtract_symmetry_point, "subtract_symmetry_point", owner)

    def q_plus(self, w):
        return 1.0 - (np.asarray(w, dtype=float) + self.reference_mean) / self.w_max

    def q_minus(self, w):
        return 1.0 - (np.asarray(w, dtype=float) + self.reference_mean) / self.w_min

    def noise_mode(self) -> int:
        return K.NOISE_MULT if self.mult_noise else K.NOISE_ADD

    def _shape_params(self, dp, xi, reset_bias) -> None:
        su, sd, b_max, b_min = dp[K.SU], dp[K.SD], dp[K.HI].copy(), dp[K.LO].copy()
        ok = (b_max > 0.0) & (b_min < 0.0)
        f_up = np.abs(1.0 + self.slope_up_dtod * xi[0])
        f_dn = np.abs(1.0 + self.slope_down_dtod * xi[1])
        b_max = np.where(ok, b_max / np.where(f_up > 0, f_up, 1.0), b_max)
        b_min = np.where(ok, b_min / np.where(f_dn > 0, f_dn, 1.0), b_min)
        dp[K.HI] = b_max
        dp[K.LO] = b_min
        ref = self.reference_mean + self.reference_std * xi[2]
        if self.subtract_symmetry_point:
            denom = np.where(ok, su / np.where(ok, b_max, 1.0) - sd / np.where(ok, b_min, -1.0), 1.0)
            sp = np.where(ok & (denom != 0.0), (su - sd) / denom, 0.0)
            ref = ref + sp
            reset_bias += sp
        dp[K.REF] = ref
        dp[K.LU] = np.where(b_max > 0.0, -su / np.where(b_max > 0.0, b_max, 1.0), 0.0)
        dp[K.LD] = np.where(b_min < 0.0, -sd / np.where(b_min < 0.0, b_min, -1.0), 0.0)


def asymmetric_linear_device(tau: float, dw_min: float = 1e-3, variations: bool = False,
                             **overrides) -> SoftBoundsReferenceDevice:
    """The paper's asymmetric linear device: ``w_max = -w_min = tau``.

    ``variations=False`` switches every device-to-device and cycle-to-cycle variation off (the setting of
    the paper's analysis); ``variations=True`` keeps aihwkit's defaults (the setting of its experiments).
    """
    params = dict(w_max=float(tau), w_min=-float(tau), dw_min=float(dw_min))
    if not variations:
        params.update(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    params.update(overrides)
    return SoftBoundsReferenceDevice(**params)
