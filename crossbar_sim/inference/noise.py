"""Inference noise models: programming noise, conductance drift and accumulated 1/f read noise of one device.

Every model is a frozen config with the same interface, on conductances in microsiemens (uS) and times in
seconds (``t`` is the time since the end of programming, aihwkit's ``t_inference``):

* :meth:`InferenceNoiseModel.prog_std` -- standard deviation of the programming noise at a target conductance;
* :meth:`InferenceNoiseModel.nu_params` -- mean and spread of the drift exponent ``nu`` at a target conductance;
* :meth:`InferenceNoiseModel.read_q` -- the relative 1/f read-noise coefficient at a programmed conductance.

and the shared steps (aihwkit 1.1.0 ``BaseNoiseModel`` / ``PCMLikeNoiseModel``, ``inference/noise/pcm.py``):

    programming     g_prog = max(0, g_T + prog_noise_scale * prog_std(g_T) * xi)              (once)
    drift exponent  nu     = drift_scale * | mu_nu(g_T) + sig_nu(g_T) * xi |                  (once, from g_T)
    drift           g_d    = g_prog * ((t + t_0) / t_0) ** -nu          if t > 0, else g_prog
    1/f read noise  g      = max(0, g_d + |g_d| * read_noise_scale * Q(g_prog)
                                        * sqrt(ln((t + t_0 + t_read) / (2 t_read))) * xi)     (each drift_to)

Models:

* :class:`PCMLikeNoiseModel` -- aihwkit's ``PCMLikeNoiseModel`` (its formulas and defaults; fitted to PCM by
  Nandakumar et al., ICECS 2019, and calibrated on a 1-million-device PCM array, Joshi et al., Nat. Commun. 11,
  2473, 2020). ``prog_std = (c0 + c1 x + c2 x^2) g_max / g_ref`` with ``x = g_T / g_max``;
  ``mu_nu = clip(-0.0155 ln x + 0.0244, 0.049, 0.1)``, ``sig_nu = clip(-0.0125 ln x - 0.0059, 0.008, 0.045)``
  with ``x = max(g_T / g_max, 1e-7)``; ``Q = min(0.0088 / max(x^0.65, 1e-3), 0.2)`` with ``x = g_prog / g_max``.
* :class:`GenericNoiseModel` -- our own, with parameters for any device (e.g. ReRAM): programming noise a constant
  plus a proportional part, a conductance-independent ``nu ~ |N(nu_mean, nu_std)|``, a constant relative
  read-noise coefficient.
* :class:`DriftOnlyNoiseModel` -- no programming and no read noise; ``nu`` fixed (or ``|N(nu, nu_std)|``, or
  PCM's conductance-dependent law): the closed form ``g_prog (t / t_0 + 1)^-nu`` exactly.

Where we differ from aihwkit 1.1.0 (also listed in ``docs/inference.md``):

* ``prog_coeff_g_max_reference`` (default 25 uS) always applies: ``prog_std`` is the polynomial times
  ``g_max / g_ref``. aihwkit uses 25 uS only with its default coefficients; with coefficients given and no
  reference it uses ``g_max`` (no rescaling), and with both given it never sets the attribute (the first
  programming call fails). With the default coefficients the two agree.
* ``t < 0`` is refused (aihwkit accepts it and then skips the drift but not the read noise).
* ``program_off_devices`` (default True, aihwkit's behaviour) can switch off the programming noise of the
  device of a pair that targets ``g_min`` (the "off" device; with aihwkit's rule it ends at a half-normal
  conductance of mean ~0.105 uS at g_max = 25 uS).
* Random numbers come from NumPy generators in a fixed order (see :class:`~crossbar_sim.inference.tile.InferenceTile`),
  so a draw is reproducible from its seed; aihwkit's torch draws are matched in distribution only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..config import Config
from ..errors import ConfigError
from ..validation import check_bool, check_float

#: aihwkit's ``_ZERO_CLIP``: relative conductances below this count as this (the log of the nu law)
ZERO_CLIP = 1e-7


@dataclass(frozen=True, repr=False)
class InferenceNoiseModel(Config):
    """Base of the inference noise models (fields shared by all of them).

    Parameters
    ----------
    g_max, g_min : float
        Conductance range of one device in uS (aihwkit's ``SinglePairConductanceConverter``: 25 and 0). The abs-max
        weight of a tile maps to ``g_max`` on one device of its pair, the other device to ``g_min``.
    t_0 : float
        First read after programming (s): drift is ``((t + t_0) / t_0)^-nu`` (aihwkit ``t_0``, 20 s).
    t_read : float
        Read pulse width of the 1/f fit (s) (aihwkit ``t_read``, 250 ns).
    prog_noise_scale, read_noise_scale, drift_scale : float
        Multipliers of the programming-noise std, the read-noise std and every drawn ``nu`` (aihwkit, 1.0).
    program_off_devices : bool
        Programming noise also on the device that targets ``g_min`` (aihwkit: yes).
    drift_per_device : bool
        True (ours): both devices of a pair keep their programmed conductance and drift with their own ``nu``.
        False (aihwkit 1.1.0 ``BaseNoiseModel.apply_drift_noise``): before each drift the programmed *net* weight
        is re-split onto one device (the other at ``g_min``) with the scale ``g_max / max|W_prog|``, and the
        positive (negative) weights drift with the ``nu`` drawn for the plus (minus) device.
    """

    g_max: float = 25.0
    g_min: float = 0.0
    t_0: float = 20.0
    t_read: float = 250.0e-9
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    program_off_devices: bool = True
    drift_per_device: bool = True

    #: short name used in result-file group names and on the command line
    short_name: ClassVar[str] = "noise"

    def validate(self) -> None:
        owner = type(self).__name__
        check_float(self.g_max, "g_max", owner, 0.0, 1e9, closed_lo=False)
        check_float(self.g_min, "g_min", owner, 0.0, 1e9)
        if self.g_min >= self.g_max:
            raise ConfigError(f"The 'g_min' parameter of {owner} must be below g_max ({self.g_max:g}). "
                              f"Got {self.g_min!r} instead.")
        check_float(self.t_0, "t_0", owner, 0.0, 1e12, closed_lo=False)
        check_float(self.t_read, "t_read", owner, 0.0, 1e3, closed_lo=False)
        for name in ("prog_noise_scale", "read_noise_scale", "drift_scale"):
            check_float(getattr(self, name), name, owner, 0.0, 1e6)
        check_bool(self.program_off_devices, "program_off_devices", owner)
        check_bool(self.drift_per_device, "drift_per_device", owner)

    # ------------------------------------------------------------------ device laws (overridden)
    def prog_std(self, g_target: np.ndarray) -> np.ndarray:
        """Programming-noise std (uS) at target conductances ``g_target`` (uS), before ``prog_noise_scale``."""
        return np.zeros_like(g_target, dtype=np.float64)

    def nu_params(self, g_target: np.ndarray):
        """``(mu_nu, sig_nu)`` of the drift exponent at ``g_target`` (uS), before ``drift_scale``."""
        z = np.zeros_like(g_target, dtype=np.float64)
        return z, z

    def read_q(self, g_prog: np.ndarray) -> np.ndarray:
        """Relative read-noise coefficient ``Q`` at programmed conductances ``g_prog`` (uS)."""
        return np.zeros_like(g_prog, dtype=np.float64)

    # ------------------------------------------------------------------ shared steps
    def program(self, g_target: np.ndarray, z_prog: np.ndarray, z_nu: np.ndarray):
        """Programmed conductances and drift exponents of the devices ``g_target`` (uS, any shape).

        ``z_prog``, ``z_nu``: standard normal deviates of that shape (the caller draws them, in a fixed order).
        Returns ``(g_prog, nu)``, float64.
        """
        g_target = np.asarray(g_target, np.float64)
        sig = self.prog_noise_scale * self.prog_std(g_target)
        noisy = g_target + sig * z_prog
        if not self.program_off_devices:
            noisy = np.where(g_target <= self.g_min, g_target, noisy)
        g_prog = np.maximum(noisy, 0.0)
        mu, sg = self.nu_params(g_target)
        nu = self.drift_scale * np.abs(mu + sg * z_nu)
        return g_prog, nu

    def drift_factor(self, nu: np.ndarray, t: float) -> np.ndarray:
        """``((t + t_0) / t_0)^-nu`` for ``t > 0``, 1 at ``t = 0``."""
        if t <= 0.0:
            return np.ones_like(nu, dtype=np.float64)
        return np.power((t + self.t_0) / self.t_0, -np.asarray(nu, np.float64))

    def read_log_factor(self, t: float) -> float:
        """``sqrt(ln((t + t_0 + t_read) / (2 t_read)))``: the growth of the accumulated 1/f noise with time."""
        tt = t + self.t_0
        return math.sqrt(math.log((tt + self.t_read) / (2.0 * self.t_read)))

    def read_std(self, g_prog: np.ndarray, g_drift: np.ndarray, t: float) -> np.ndarray:
        """Std (uS) of the read noise added at time ``t`` to the drifted conductances ``g_drift``."""
        return np.abs(g_drift) * (self.read_noise_scale * self.read_log_factor(t)) * self.read_q(g_prog)

    def drift(self, g_prog: np.ndarray, nu: np.ndarray, t: float, z_read: np.ndarray) -> np.ndarray:
        """Conductances read at time ``t`` (s) after programming: drift, then one sample of 1/f noise, clamped at 0."""
        g_prog = np.asarray(g_prog, np.float64)
        g_drift = g_prog * self.drift_factor(nu, t)
        return np.maximum(g_drift + self.read_std(g_prog, g_drift, t) * z_read, 0.0)


def _check_coeffs(coeffs, name, owner):
    if not isinstance(coeffs, (tuple, list)) or not coeffs or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coeffs):
        raise ConfigError(f"The '{name}' parameter of {owner} must be a non-empty list of finite numbers. "
                          f"Got {coeffs!r} instead.")


@dataclass(frozen=True, repr=False)
class PCMLikeNoiseModel(InferenceNoiseModel):
    """aihwkit 1.1.0's ``PCMLikeNoiseModel`` (PCM fit of Nandakumar et al., ICECS 2019; Joshi et al. 2020).

    Parameters
    ----------
    prog_coeff : tuple of float
        Polynomial ``c0 + c1 x + c2 x^2 + ...`` (uS at ``g_ref``) of the programming-noise std, ``x = g_T / g_max``
        (aihwkit: 0.26348, 1.9650, -1.1731).
    prog_coeff_g_max_reference : float
        ``g_ref``: the g_max (uS) at which ``prog_coeff`` were fitted; the std is rescaled by ``g_max / g_ref``
        (aihwkit: 25 uS for its default coefficients).
    (and the fields of :class:`InferenceNoiseModel`)
    """

    prog_coeff: tuple = (0.26348, 1.9650, -1.1731)
    prog_coeff_g_max_reference: float = 25.0

    short_name: ClassVar[str] = "pcm"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        _check_coeffs(self.prog_coeff, "prog_coeff", owner)
        check_float(self.prog_coeff_g_max_reference, "prog_coeff_g_max_reference", owner, 0.0, 1e9,
                    closed_lo=False)

    def prog_std(self, g_target):
        x = np.asarray(g_target, np.float64) / self.g_max
        sig = np.zeros_like(x)
        for k, c in enumerate(self.prog_coeff):  # the polynomial is not clamped at 0 (aihwkit's code)
            sig += c * x ** k
        return sig * (self.g_max / self.prog_coeff_g_max_reference)

    def nu_params(self, g_target):
        x = np.maximum(np.abs(np.asarray(g_target, np.float64)) / self.g_max, ZERO_CLIP)
        lx = np.log(x)
        mu = np.clip(-0.0155 * lx + 0.0244, 0.049, 0.1)
        sg = np.clip(-0.0125 * lx - 0.0059, 0.008, 0.045)
        return mu, sg

    def read_q(self, g_prog):
        x = np.abs(np.asarray(g_prog, np.float64)) / self.g_max
        return np.minimum(0.0088 / np.maximum(x ** 0.65, 1e-3), 0.2)


@dataclass(frozen=True, repr=False)
class GenericNoiseModel(InferenceNoiseModel):
    """A device-agnostic model with parameters of our own (e.g. for ReRAM).

    Defaults are illustrative, not a fit: the programming spread at ``g_max`` (4 % of g_max) is near the 1 s
    spread of aihwkit's ``ReRamWan2022NoiseModel`` fit to Wan et al., Nature 608, 504 (2022) (1.10 uS of 25 uS),
    drift is weak and conductance-independent, the 1/f read noise relative (as PCM's, without its conductance
    dependence). Set them to your device.

    Parameters
    ----------
    prog_std_abs : float
        Conductance-independent part of the programming-noise std, as a fraction of ``g_max``.
    prog_std_rel : float
        Part proportional to the target conductance (std = ``prog_std_abs g_max + prog_std_rel g_T``).
    nu_mean, nu_std : float
        ``nu ~ |N(nu_mean, nu_std)|`` for every device (aihwkit ``StateIndependentNoiseModel`` style).
    read_q_coeff : float
        Relative read-noise coefficient: std = ``read_q_coeff |g_drift| sqrt(ln((t + t_0 + t_read) / (2 t_read)))``.
    (and the fields of :class:`InferenceNoiseModel`)
    """

    prog_std_abs: float = 0.02
    prog_std_rel: float = 0.02
    nu_mean: float = 0.005
    nu_std: float = 0.005
    read_q_coeff: float = 0.005

    short_name: ClassVar[str] = "generic"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        for name in ("prog_std_abs", "prog_std_rel", "nu_mean", "nu_std", "read_q_coeff"):
            check_float(getattr(self, name), name, owner, 0.0, 1e3)

    def prog_std(self, g_target):
        g = np.asarray(g_target, np.float64)
        return self.prog_std_abs * self.g_max + self.prog_std_rel * np.abs(g)

    def nu_params(self, g_target):
        shape = np.shape(g_target)
        return np.full(shape, self.nu_mean), np.full(shape, self.nu_std)

    def read_q(self, g_prog):
        return np.full(np.shape(g_prog), self.read_q_coeff)


@dataclass(frozen=True, repr=False)
class DriftOnlyNoiseModel(InferenceNoiseModel):
    """Drift without programming or read noise: ``g(t) = g_T ((t + t_0) / t_0)^-nu``.

    Parameters
    ----------
    nu : float
        Drift exponent of every device (with ``nu_std = 0`` and ``pcm_nu`` False: exactly this).
    nu_std : float
        ``nu ~ |N(nu, nu_std)|`` per device.
    pcm_nu : bool
        Draw ``nu`` from the PCM law of :class:`PCMLikeNoiseModel` instead (conductance-dependent mean and spread).
    (and the fields of :class:`InferenceNoiseModel`; ``program_off_devices`` has no effect: nothing is noisy)
    """

    nu: float = 0.05
    nu_std: float = 0.0
    pcm_nu: bool = False

    short_name: ClassVar[str] = "drift_only"

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_float(self.nu, "nu", owner, 0.0, 10.0)
        check_float(self.nu_std, "nu_std", owner, 0.0, 10.0)
        check_bool(self.pcm_nu, "pcm_nu", owner)

    def nu_params(self, g_target):
        if self.pcm_nu:
            return PCMLikeNoiseModel(g_max=self.g_max).nu_params(g_target)
        shape = np.shape(g_target)
        return np.full(shape, self.nu), np.full(shape, self.nu_std)


#: noise models by the name the command line and result files use
NOISE_MODELS = {cls.short_name: cls for cls in (PCMLikeNoiseModel, GenericNoiseModel, DriftOnlyNoiseModel)}


def get_noise_model(name_or_model) -> InferenceNoiseModel:
    """A noise model from its short name (``pcm``, ``generic``, ``drift_only``), its class name, or itself."""
    if isinstance(name_or_model, InferenceNoiseModel):
        return name_or_model
    if isinstance(name_or_model, dict):
        model = Config.from_dict(name_or_model)
        if isinstance(model, InferenceNoiseModel):
            return model
    if isinstance(name_or_model, str):
        if name_or_model in NOISE_MODELS:
            return NOISE_MODELS[name_or_model]()
        for cls in NOISE_MODELS.values():
            if name_or_model == cls.__name__:
                return cls()
    raise ConfigError(f"Unknown noise model {name_or_model!r}; known: {', '.join(NOISE_MODELS)} "
                      f"({', '.join(c.__name__ for c in NOISE_MODELS.values())}).")
