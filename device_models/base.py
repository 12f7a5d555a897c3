"""Common base of the pulsed device models (SPEC section 1).

A device model is a frozen, validated parameter dataclass with aihwkit's parameter names and defaults. It
knows its mean response (``q_plus``, ``q_minus``), its symmetric point and number of states, and how to
draw the per-device parameters of a tile from a construction seed (:meth:`PulsedDevice.build`), in the
layout the update kernel reads (``crossbar_sim.kernels.update``: rows SU, SD, LU, LD, REF, LO, HI).

Suffix grammar (aihwkit): ``x`` the mean, ``x_dtod`` device-to-device spread (drawn once per device),
``x_std`` cycle-to-cycle spread (drawn per pulse).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from crossbar_sim.config import Config
from crossbar_sim.validation import check_bool, check_float
from crossbar_sim.errors import ConfigError
from crossbar_sim.kernels import update as K


@dataclass(frozen=True)
class DeviceArrays:
    """Per-device parameters of one tile, as the kernels read them.

    Attributes
    ----------
    dp : ndarray of shape (out_size, in_size, 12), float32 (device-major: one record per device)
        Rows SU, SD (up/down step sizes), LU, LD (model shape parameters: slopes of the linear family,
        exponents of PowStep), REF (reference offset), LO, HI (device bounds, in the ``w + ref`` frame),
        then, for the linear family only, quantities derived from them for the closed-form update: WSU,
        WSD (fixed points of up / down pulses) and RU, RD (relative cycle-to-cycle noise of one pulse).
    tp : ndarray of float64
        Tile-wide model constants (ExpStep shape, Piecewise tables, lookup tables).
    reset_bias : ndarray of shape (out_size, in_size), float32
        Value a device returns to on reset (``reset + reset_dtod * xi``).
    model, noise_mode : int
        Kernel codes (``kernels.update.MODEL_*``, ``NOISE_*``).
    dw_min_std : float
        Cycle-to-cycle spread.
    write_noise : float
        Standard deviation of the write (read-out) noise in weight units (``write_noise_std * dw_min``).
    granularity : float
        Weight granularity used by update management.
    decay_scale : ndarray of shape (out_size, in_size), float32, or None
        Per-device factor of one decay step, ``1 - 1/lifetime`` (0 where the drawn lifetime is <= 1); None
        without decay (``lifetime = 0``).
    diffusion_rate : ndarray of shape (out_size, in_size), float32, or None
        Per-device standard deviation of one diffusion step; None without diffusion.
    """

    dp: np.ndarray
    tp: np.ndarray
    reset_bias: np.ndarray
    model: int
    noise_mode: int
    dw_min_std: float
    write_noise: float
    granularity: float
    decay_scale: np.ndarray | None = None
    diffusion_rate: np.ndarray | None = None

    @property
    def shape(self):
        return self.dp.shape[:2]

    @functools.cached_property
    def dpr(self) -> np.ndarray:
        """Rows SU .. HI of ``dp`` in the row-planar layout of the vectorised update, (out, 7, in) float32
        (linear family; an empty array for the other models, which the update reads from ``dp``).
        Derived once, on first use."""
        if self.model != K.MODEL_LINEAR:
            return np.zeros((0, K.N_DPR, 0), np.float32)
        return K.row_planar(self.dp)

    @property
    def w_lo(self):
        """Lower bound of the hidden weight per device (``b_min - ref``)."""
        return self.dp[..., K.LO] - self.dp[..., K.REF]

    @property
    def w_hi(self):
        """Upper bound of the hidden weight per device (``b_max - ref``)."""
        return self.dp[..., K.HI] - self.dp[..., K.REF]

    def as_dict(self) -> dict:
        names = ["scale_up", "scale_down", "shape_up", "shape_down", "reference", "min_bound", "max_bound",
                 "fixed_point_up", "fixed_point_down", "rel_noise_up", "rel_noise_down"]
        out = {n: self.dp[..., k] for k, n in enumerate(names)}
        out["reset_bias"] = self.reset_bias
        if self.decay_scale is not None:
            out["decay_scale"] = self.decay_scale
        if self.diffusion_rate is not None:
            out["diffusion_rate"] = self.diffusion_rate
        return out


@dataclass(frozen=True, repr=False)
class PulsedDevice(Config):
    """Parameters shared by every pulsed device (aihwkit ``PulsedDevice``).

    Parameters
    ----------
    dw_min : float
        Mean weight change of one pulse at w = 0 (of the mean device), in weight units; > 0.
    dw_min_dtod : float
        Device-to-device spread of the step size, relative (``gain = 1 + dw_min_dtod * xi``).
    dw_min_dtod_log_normal : bool
        Draw the gain as ``exp(dw_min_dtod * xi)`` instead.
    dw_min_std : float
        Cycle-to-cycle spread of each pulse, relative to the step (multiplicative or additive, per model).
    up_down : float
        Systematic up/down asymmetry: ``dw_up = (min(up_down, 0) + gain + r) * dw_min``,
        ``dw_down = (-max(up_down, 0) + gain - r) * dw_min``.
    up_down_dtod : float
        Device-to-device spread ``r = up_down_dtod * xi`` of the up/down asymmetry.
    w_max, w_min : float
        Mean upper and lower bounds; the interval must contain 0.
    w_max_dtod, w_min_dtod : float
        Relative device-to-device spread of the bounds (``b_max = w_max * (1 + w_max_dtod * xi)``).
    reset, reset_dtod, reset_std : float
        Reset value, its device-to-device spread and its cycle-to-cycle spread.
    write_noise_std : float
        Write noise, in units of dw_min: the read weight is ``w + write_noise_std * dw_min * xi``, redrawn
        after every pulse a device receives; the hidden weight evolves without it.
    enforce_consistency : bool
        Take the absolute value of the steps and make ``b_min <= 0 <= b_max`` per device.
    lifetime, lifetime_dtod : float
        Decay (aihwkit): per device ``t = lifetime * (1 + lifetime_dtod * xi)``; each decay step (once per
        mini-batch, after the update: :meth:`~crossbar_sim.tiles.analog.AnalogTile.post_update_step`) moves the
        weight towards the reset value, ``w <- (w - b) (1 - 1/t) + b`` (``w <- b`` where ``t <= 1``), clipped.
        0 (default): no decay. In units of mini-batches.
    diffusion, diffusion_dtod : float
        Diffusion (aihwkit): per device ``rho = |diffusion * (1 + diffusion_dtod * xi)|``; each step adds
        ``rho * xi`` (fresh per device), clipped. 0: none. Diffusion runs before decay.
    """

    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_dtod_log_normal: bool = False
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_max_dtod: float = 0.3
    w_min: float = -0.6
    w_min_dtod: float = 0.3
    reset: float = 0.0
    reset_dtod: float = 0.0
    reset_std: float = 0.01
    write_noise_std: float = 0.0
    enforce_consistency: bool = True
    lifetime: float = 0.0
    lifetime_dtod: float = 0.0
    diffusion: float = 0.0
    diffusion_dtod: float = 0.0

    model_code: ClassVar[int] = K.MODEL_LINEAR
    #: short name in the registry
    name: ClassVar[str] = ""

    # ------------------------------------------------------------------ contract
    def validate(self) -> None:
        owner = type(self).__name__
        check_float(self.dw_min, "dw_min", owner, 0.0, None, closed_lo=False)
        for f in ("dw_min_dtod", "dw_min_std", "up_down_dtod", "w_max_dtod", "w_min_dtod", "reset_dtod",
                  "reset_std", "write_noise_std", "lifetime", "lifetime_dtod", "diffusion", "diffusion_dtod"):
            check_float(getattr(self, f), f, owner, 0.0)
        check_float(self.up_down, "up_down", owner)
        check_float(self.reset, "reset", owner)
        check_float(self.w_max, "w_max", owner, 0.0)
        check_float(self.w_min, "w_min", owner, None, 0.0)
        if not self.w_max > self.w_min:
            raise ConfigError(
                f"The 'w_max' parameter of {owner} must be larger than 'w_min' "
                f"(the interval [w_min, w_max] must contain 0 and not be empty). Got w_min={self.w_min!r}, "
                f"w_max={self.w_max!r}."
            )
        check_bool(self.dw_min_dtod_log_normal, "dw_min_dtod_log_normal", owner)
        check_bool(self.enforce_consistency, "enforce_consistency", owner)

    # ------------------------------------------------------------------ physics of the mean device
    def q_plus(self, w):
        """Relative size of an up pulse at weight ``w`` (mean device, no variation)."""
        raise NotImplementedError

    def q_minus(self, w):
        """Relative size of a down pulse at weight ``w`` (mean device, no variation)."""
        raise NotImplementedError

    def mean_steps(self) -> tuple[float, float]:
        """Up and down step sizes of the mean device (``up_down`` included, no variation)."""
        up = (min(self.up_down, 0.0) + 1.0) * self.dw_min
        down = (-max(self.up_down, 0.0) + 1.0) * self.dw_min
        return abs(up), abs(down)

    def F(self, w):
        """Symmetric component ``(q_minus + q_plus) / 2`` (Wu et al. 2024)."""
        return 0.5 * (np.asarray(self.q_minus(w)) + np.asarray(self.q_plus(w)))

    def G(self, w):
        """Asymmetric component ``(q_minus - q_plus) / 2``; zero at the symmetric point."""
        return 0.5 * (np.asarray(self.q_minus(w)) - np.asarray(self.q_plus(w)))

    def symmetric_point(self) -> float:
        """Weight where an up and a down pulse of the mean device cancel in expectation.

        Root of ``dw_up q_plus(w) - dw_down q_minus(w)`` in ``[w_min, w_max]``; ``nan`` if there is none
        (e.g. a constant-step device with ``up_down != 0``), and ``0.0`` for a perfectly symmetric device
        whose steps cancel everywhere.
        """
        up, down = self.mean_steps()
        lo, hi = self.w_min, self.w_max
        grid = np.linspace(lo, hi, 2001)
        h = up * np.asarray(self.q_plus(grid), float) - down * np.asarray(self.q_minus(grid), float)
        if np.all(np.abs(h) < 1e-15):
            return 0.0
        sgn = np.sign(h)
        idx = np.nonzero(sgn[:-1] * sgn[1:] <= 0)[0]
        if idx.size == 0:
            return float("nan")
        k = idx[0]
        a, b = grid[k], grid[k + 1]
        fa = h[k]
        for _ in range(80):
            m = 0.5 * (a + b)
            fm = up * float(self.q_plus(m)) - down * float(self.q_minus(m))
            if fm == 0.0:
                return m
            if (fm > 0) == (fa > 0):
                a, fa = m, fm
            else:
                b = m
        return 0.5 * (a + b)

    @property
    def n_states(self) -> float:
        """Number of states ``(w_max - w_min) / dw_min`` (aihwkit's definition; pulses from bound to bound
        of a constant-step device)."""
        return (self.w_max - self.w_min) / self.dw_min

    def granularity(self) -> float:
        """Weight granularity ``g`` used by update management (SPEC section 3)."""
        return self.dw_min

    # ------------------------------------------------------------------ per-device parameters
    def noise_mode(self) -> int:
        return K.NOISE_MULT

    def tile_params(self) -> np.ndarray:
        return np.zeros(1, np.float64)

    def _shape_params(self, dp, xi, reset_bias) -> None:
        """Fill the model-specific rows of ``dp`` (LU, LD, REF; may adjust LO/HI and ``reset_bias``).

        ``dp`` already holds SU, SD, LO (= b_min) and HI (= b_max); ``xi`` holds four fresh standard normal
        fields for model-specific device-to-device variation.
        """

    def build(self, shape, rng: np.random.Generator) -> DeviceArrays:
        """Draw the per-device parameters of a tile of ``shape = (out_size, in_size)``.

        Draws a fixed block of standard normals from ``rng`` (always the same number, so changing one
        spread does not change the draws of the others): bounds, gain, up/down asymmetry, reset, then up
        to four model-specific ones.
        """
        out_size, in_size = shape
        xi = rng.standard_normal((9, out_size, in_size))
        b_max = self.w_max * (1.0 + self.w_max_dtod * xi[0])
        b_min = self.w_min * (1.0 + self.w_min_dtod * xi[1])
        if self.dw_min_dtod_log_normal:
            gain = np.exp(self.dw_min_dtod * xi[2])
        else:
            gain = 1.0 + self.dw_min_dtod * xi[2]
        r = self.up_down_dtod * xi[3]
        up_bias = min(self.up_down, 0.0)
        down_bias = -max(self.up_down, 0.0)
        su = (up_bias + gain + r) * self.dw_min
        sd = (down_bias + gain - r) * self.dw_min
        if self.enforce_consistency:
            su = np.abs(su)
            sd = np.abs(sd)
            crossed = b_min > b_max
            b_max, b_min = np.where(crossed, b_min, b_max), np.where(crossed, b_max, b_min)
            b_max = np.abs(b_max)
            b_min = -np.abs(b_min)
        else:
            crossed = b_min > b_max
            mid = b_max + (b_min - b_max) / 2.0
            b_max = np.where(crossed, mid, b_max)
            b_min = np.where(crossed, mid, b_min)
        dp = np.zeros((K.N_DP, out_size, in_size), np.float64)
        dp[K.SU] = su
        dp[K.SD] = sd
        dp[K.LO] = b_min
        dp[K.HI] = b_max
        reset_bias = self.reset + self.reset_dtod * xi[4]
        self._shape_params(dp, xi[5:], reset_bias)
        if self.model_code == K.MODEL_LINEAR:
            K.linear_derived(dp, self.dw_min_std)
        # decay and diffusion draw after everything else, so devices without them keep the draws they always had
        decay = diffusion = None
        if self.lifetime > 0:
            t = self.lifetime * (1.0 + self.lifetime_dtod * rng.standard_normal((out_size, in_size)))
            decay = np.ascontiguousarray(np.where(t > 1.0, 1.0 - 1.0 / np.where(t > 1.0, t, 2.0), 0.0), np.float32)
        if self.diffusion > 0:
            rho = np.abs(self.diffusion * (1.0 + self.diffusion_dtod * rng.standard_normal((out_size, in_size))))
            diffusion = np.ascontiguousarray(rho, np.float32)
        return DeviceArrays(
            decay_scale=decay,
            diffusion_rate=diffusion,
            dp=np.ascontiguousarray(np.moveaxis(dp, 0, -1), dtype=np.float32),
            tp=np.ascontiguousarray(self.tile_params(), dtype=np.float64),
            reset_bias=np.ascontiguousarray(reset_bias, dtype=np.float32),
            model=int(self.model_code),
            noise_mode=int(self.noise_mode()),
            dw_min_std=float(self.dw_min_std),
            write_noise=float(self.write_noise_std * self.dw_min),
            granularity=float(self.granularity()),
        )

    # ------------------------------------------------------------------ printing
    def describe(self) -> dict:
        """Name, parameters and derived quantities (for ``crossbar-sim devices``)."""
        return {
            "model": type(self).__name__,
            "params": {f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "granularity": self.granularity(),
            "n_states": self.n_states,
            "symmetric_point": self.symmetric_point(),
        }


def linear_slopes(scale, ref_bound, gamma):
    """Slope ``-gamma * scale / ref_bound`` (0 where the reference bound is 0), as aihwkit's LinearStep."""
    ref_bound = np.asarray(ref_bound, dtype=np.float64)
    safe = np.where(ref_bound != 0.0, ref_bound, 1.0)
    return np.where(ref_bound != 0.0, -gamma * scale / safe, 0.0)
