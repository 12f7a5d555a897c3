"""SoftBoundsPmax: SoftBounds parametrised by the number of pulses from one bound to the other.

aihwkit ``SoftBoundsPmaxDevice`` (``configs/devices.py``). Its fields are ``p_max`` (pulses), ``alpha`` (the
relative step) and the range ``[range_min, range_max]``; ``w_min``, ``w_max``, ``dw_min`` and ``up_down`` are not
free but computed from them when the device is built, exactly as aihwkit maps it onto its SoftBounds device:

    B = (range_max - range_min) / (1 - exp(-p_max * alpha))
    w_min = range_min,  w_max = range_min + B,  dw_min = alpha * B,  up_down = 1 + 2 range_min / B

What runs is that SoftBounds device (mean up step ``alpha B (1 - w / w_max)``, down step
``-2 alpha range_min (1 - w / w_min)``). The closed-form pulse curves in aihwkit's docstring are not exactly what its
mapping gives (the up steps differ by ``B / (B + range_min)``); like aihwkit, we run the mapping. The derived values
are fields of the config (shown by :meth:`describe` and ``crossbar-sim devices``); setting them yourself is an
error. ``range_min <= 0 <= range_min + B`` is required (aihwkit: "The closed interval [w_min,w_max] needs to
contain 0.").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from crossbar_sim.errors import ConfigError
from crossbar_sim.validation import check_float, check_int

from .soft_bounds import SoftBoundsDevice

#: the SoftBounds fields aihwkit derives from p_max, alpha and the range
DERIVED = ("w_min", "w_max", "dw_min", "up_down")


def pmax_mapping(p_max: int, alpha: float, range_min: float, range_max: float) -> dict:
    """aihwkit's mapping of the Pmax parameters onto SoftBounds: ``{w_min, w_max, dw_min, up_down}``."""
    b = (range_max - range_min) / (1.0 - math.exp(-p_max * alpha))
    return {"w_min": range_min, "w_max": range_min + b, "dw_min": alpha * b, "up_down": 1.0 + 2.0 * range_min / b}


@dataclass(frozen=True, repr=False)
class SoftBoundsPmaxDevice(SoftBoundsDevice):
    """SoftBounds with ``p_max`` pulses from bound to bound (aihwkit ``SoftBoundsPmaxDevice``).

    Parameters (besides :class:`~crossbar_sim.device_models.SoftBoundsDevice`; ``w_min``, ``w_max``, ``dw_min``
    and ``up_down`` are derived, see the module docstring)
    ----------
    p_max : int
        Pulses from ``range_min`` to ``range_max`` (aihwkit default 1000).
    alpha : float
        Relative step size (default 0.0005).
    range_min, range_max : float
        Weight range (default -1, 1).
    """

    w_min: float | None = None
    w_max: float | None = None
    dw_min: float | None = None
    up_down: float | None = None
    p_max: int = 1000
    alpha: float = 0.0005
    range_min: float = -1.0
    range_max: float = 1.0

    name = "SoftBoundsPmax"

    def __post_init__(self):
        owner = type(self).__name__
        check_int(self.p_max, "p_max", owner, 1, 10**9)
        check_float(self.alpha, "alpha", owner, 0.0, None, closed_lo=False)
        check_float(self.range_min, "range_min", owner)
        check_float(self.range_max, "range_max", owner)
        if not self.range_max > self.range_min:
            raise ConfigError(f"The 'range_max' parameter of {owner} must be larger than 'range_min'. Got "
                              f"range_min={self.range_min!r}, range_max={self.range_max!r}.")
        mapped = pmax_mapping(self.p_max, self.alpha, self.range_min, self.range_max)
        for k, v in mapped.items():
            given = getattr(self, k)
            if given is not None and not math.isclose(float(given), v, rel_tol=1e-9, abs_tol=1e-12):
                raise ConfigError(f"The '{k}' parameter of {owner} is derived from p_max, alpha, range_min and "
                                  f"range_max ({v!r} here); set those instead. Got {given!r}.")
            object.__setattr__(self, k, v)
        if not (mapped["w_min"] <= 0.0 <= mapped["w_max"]):
            raise ConfigError(f"The range of {owner} must contain 0 after the mapping ([w_min, w_max] = "
                              f"[{mapped['w_min']:g}, {mapped['w_max']:g}]; aihwkit: 'The closed interval "
                              f"[w_min,w_max] needs to contain 0.'). Change range_min / range_max.")
        super().__post_init__()

    def replace(self, **changes):
        """A copy with ``changes``; the derived fields are recomputed (and may not be changed)."""
        for k in DERIVED:
            changes.setdefault(k, None)
        return super().replace(**changes)

    def non_default(self) -> dict:
        return {k: v for k, v in super().non_default().items() if k not in DERIVED}

    def describe(self) -> dict:
        out = super().describe()
        out["derived"] = {k: getattr(self, k) for k in DERIVED}
        return out


__all__ = ["SoftBoundsPmaxDevice", "pmax_mapping", "DERIVED"]
