"""Inference tiles: trained weights programmed onto conductance pairs, drifted, read through the periphery.

Mapping (aihwkit ``SinglePairConductanceConverter``): per tile, ``s = (g_max - g_min) / max(max|W|, 1e-7)`` uS per
weight unit; ``g_plus = g_min + clip(s W, 0, g_max - g_min)``, ``g_minus = g_min + clip(-s W, 0, g_max - g_min)``;
back, ``W = (g_plus - g_minus) / s``. A one-sided PCM pair (:class:`~crossbar_sim.tiles.onesided.OneSidedTile`)
is taken as it is: its two device states ``g_plus``, ``g_minus`` (weight units, >= 0) are scaled by one
``s = (g_max - g_min) / max(g_plus, g_minus)`` onto the two devices, without re-splitting by sign.

:class:`InferenceTile` holds, per device of every pair (arrays of shape (2, out_size, in_size), ``[0]`` plus,
``[1]`` minus): the target conductance, the programmed conductance and the drift exponent ``nu`` (drawn once, at
programming, from the target: aihwkit's ``drift_noise_parameters``). :meth:`InferenceTile.drift_to` sets the
weights the tile reads to those at time ``t`` after programming (drift from the programmed conductances, always
from the programmed state, never cumulative, with one fresh sample of the accumulated 1/f noise that stays
frozen until the next call, as in aihwkit); the calibration reads of the drift compensation (the programmed tile,
and the tile at the current time) are taken when a compensation first needs them, each a function of its stream
position only, so the same whenever taken. Forward
reads go through the tile's forward :class:`~crossbar_sim.tiles.params.IOParameters` (noise and bound
management, DAC, output noise, ADC), then the compensation scale multiplies the outputs.

Random numbers (reproducible from the tile's seed, whatever the thread count): the seed spawns four streams:
programming (one array of 2 x 2 x out x in standard normals: programming noise of plus then minus, then the
``nu`` deviates of plus then minus), drift (call ``k`` of :meth:`drift_to` draws its read noise from the
generator seeded ``[stream key, k]``: plus then minus), the forward periphery and the calibration reads (the
kernels' counter-based streams).

>>> import numpy as np
>>> from crossbar_sim.inference import InferenceTile, DriftOnlyNoiseModel
>>> t = InferenceTile(np.array([[0.5, -1.0]]), DriftOnlyNoiseModel(nu=0.05), seed=0, forward="perfect")
>>> t.drift_to(3600.0)
>>> np.allclose(t.read_weights(), np.array([[0.5, -1.0]]) * (3620 / 20) ** -0.05)
True
"""
from __future__ import annotations

import numpy as np

from .. import validation as V
from ..errors import ConfigError, ShapeError
from ..rng import key_from_seedseq, make_seedseq
from ..tiles.analog import TileBase
from ..tiles.params import IOParameters
from ..tiles.periphery import read_columns
from .compensation import DriftCompensation, get_compensation
from .noise import InferenceNoiseModel, PCMLikeNoiseModel, get_noise_model

#: aihwkit's floor of the abs-max in the weight -> conductance scale
W_ABS_MIN = 1e-7
#: input lines per calibration-read call (bounds the one-hot block to READ_CHUNK x in_size)
READ_CHUNK = 256


def weights_to_conductances(w, g_max: float, g_min: float = 0.0):
    """Differential pair of ``w`` (out, in): ``(g, s)`` with ``g`` of shape (2, out, in) in uS, ``s`` in uS per weight."""
    w = np.asarray(w, np.float64)
    s = (g_max - g_min) / max(float(np.abs(w).max()) if w.size else 0.0, W_ABS_MIN)
    span = g_max - g_min
    g = np.stack([np.clip(s * w, 0.0, span), np.clip(-s * w, 0.0, span)]) + g_min
    return g, s


def pair_to_conductances(g_plus, g_minus, g_max: float, g_min: float = 0.0):
    """A one-sided pair's device states (weight units, as they are) on two devices: ``(g, s)`` as
    :func:`weights_to_conductances`. Negative states (only possible with a unit device whose ``w_min < 0``) map to
    ``g_min``."""
    gp = np.maximum(np.asarray(g_plus, np.float64), 0.0)
    gm = np.maximum(np.asarray(g_minus, np.float64), 0.0)
    top = max(float(gp.max()) if gp.size else 0.0, float(gm.max()) if gm.size else 0.0, W_ABS_MIN)
    s = (g_max - g_min) / top
    return np.stack([gp * s, gm * s]) + g_min, s


def conductances_to_weights(g, s: float) -> np.ndarray:
    """``(g_plus - g_minus) / s`` as float64 (``g``: (2, out, in))."""
    return (np.asarray(g[0], np.float64) - np.asarray(g[1], np.float64)) / s


def _as_io(forward) -> IOParameters:
    if forward is None:
        return IOParameters()
    if isinstance(forward, str) and forward == "perfect":
        return IOParameters.perfect()
    if not isinstance(forward, IOParameters):
        raise ConfigError(f"The 'forward' parameter of InferenceTile must be an IOParameters (or 'perfect'). "
                          f"Got {forward!r} instead.")
    return forward


class _Config:
    """What :class:`TileBase` reads of a tile config: the forward and backward periphery."""

    def __init__(self, forward: IOParameters):
        self.forward = forward
        self.backward = forward


class InferenceTile(TileBase):
    """Trained weights programmed onto a crossbar of conductance pairs, for reads at times after programming.

    Parameters
    ----------
    weights : array of shape (out_size, in_size)
        Target weights (ignored where ``pair`` is given, except for the shape).
    noise_model : InferenceNoiseModel or str, optional
        ``pcm`` (default), ``generic``, ``drift_only`` or a model config.
    seed : int, SeedSequence or None
        Programming noise, drift exponents, read noise and periphery noise (see the module docstring).
    forward : IOParameters or 'perfect', optional
        Periphery of every read (default: aihwkit's default ``IOParameters``).
    pair : tuple of two arrays, optional
        ``(g_plus, g_minus)`` device states of a one-sided pair (weight units), programmed as they are.
    compensation : DriftCompensation, str or None
        Drift compensation applied to the outputs (``none``, ``global``, ``per_column`` or a config; settable later
        through :attr:`compensation`).

    Notes
    -----
    Right after construction the tile holds the programmed weights (programming noise, no drift, no read noise),
    as aihwkit's ``program_weights``; :meth:`drift_to` moves it to a time ``t >= 0`` (``t = 0`` adds read noise
    only). ``update`` is not offered: an inference tile is programmed once.
    """

    def __init__(self, weights, noise_model=None, seed=None, forward=None, pair=None, compensation=None):
        model = PCMLikeNoiseModel() if noise_model is None else get_noise_model(noise_model)
        if not isinstance(model, InferenceNoiseModel):
            raise ConfigError(f"The 'noise_model' parameter of InferenceTile must be a noise model. Got {model!r}.")
        self.noise_model = model
        w = np.asarray(weights)
        if w.ndim != 2 or w.size == 0:
            raise ShapeError(f"'weights' must be a non-empty 2-D array. Got shape {w.shape}.")
        V.check_finite_array(w, "weights")
        self.out_size, self.in_size = int(w.shape[0]), int(w.shape[1])
        self.config = _Config(_as_io(forward))
        ss = make_seedseq(seed)
        s_prog, s_drift, s_fwd, s_read = ss.spawn(4)
        self._keys = {"forward": key_from_seedseq(s_fwd), "backward": key_from_seedseq(s_fwd),
                      "readout": key_from_seedseq(s_read), "drift": key_from_seedseq(s_drift)}  # readout: _read_fwd
        self._t = {k: 0 for k in self._keys}
        self.counters = {"n_forward": 0, "n_backward": 0, "mvm": 0, "dac": 0, "adc": 0}
        if pair is None:
            self._g_target, self.scale = weights_to_conductances(w, model.g_max, model.g_min)
            self._w_target = w.astype(np.float64)
        else:
            gp, gm = (np.asarray(p) for p in pair)
            if gp.shape != w.shape or gm.shape != w.shape:
                raise ShapeError(f"'pair' arrays must have shape {w.shape}. Got {gp.shape} and {gm.shape}.")
            self._g_target, self.scale = pair_to_conductances(gp, gm, model.g_max, model.g_min)
            self._w_target = conductances_to_weights(self._g_target, self.scale)
        z = np.random.default_rng(s_prog).standard_normal((2,) + self._g_target.shape)
        self._g_prog, self._nu = model.program(self._g_target, z[0], z[1])
        self._w_prog = conductances_to_weights(self._g_prog, self.scale)
        self._set_current(self._w_prog, None)
        self._reads = {}  # calibration reads through the periphery, taken when a compensation first needs them
        self._comp = None
        self._alpha = None
        self.compensation = compensation

    # ------------------------------------------------------------------ state
    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_size, self.in_size)

    @property
    def g_target(self) -> np.ndarray:
        """Target conductances (uS), (2, out, in): ``[0]`` plus, ``[1]`` minus device (a copy)."""
        return self._g_target.copy()

    @property
    def g_programmed(self) -> np.ndarray:
        """Programmed conductances (uS), (2, out, in) (a copy)."""
        return self._g_prog.copy()

    @property
    def nu(self) -> np.ndarray:
        """Drift exponents, (2, out, in) (a copy)."""
        return self._nu.copy()

    @property
    def conductances(self) -> np.ndarray:
        """Conductances at the current time (uS), (2, out, in) (a copy); the programmed ones before any drift_to."""
        return self._g_now.copy()

    @property
    def time(self):
        """Time after programming (s) of the current weights; None right after programming."""
        return self._time

    def target_weights(self) -> np.ndarray:
        return self._w_target.astype(np.float32)

    def programmed_weights(self) -> np.ndarray:
        return self._w_prog.astype(np.float32)

    def read_weights(self) -> np.ndarray:
        """The weights the tile reads now (float32 copy)."""
        return self._w.copy()

    def _set_current(self, w, t, g=None):
        self._w = np.ascontiguousarray(w, np.float32)
        self._g_now = self._g_prog if g is None else g
        self._time = t

    # ------------------------------------------------------------------ drift
    def drift_to(self, t: float) -> None:
        """Set the weights to those read ``t`` seconds after programming (``t >= 0``): drift of every device from its
        programmed conductance with its own ``nu``, plus one new sample of the accumulated 1/f read noise."""
        t = V.check_float(t, "t", "InferenceTile.drift_to", 0.0, None)
        m = self.noise_model
        rng = np.random.default_rng([int(self._keys["drift"]), self._t["drift"]])
        self._t["drift"] += 1
        z = rng.standard_normal(self._g_prog.shape)
        if m.drift_per_device:
            g, s = m.drift(self._g_prog, self._nu, t, z), self.scale
        else:  # aihwkit 1.1.0: re-split the programmed net weight onto one device per weight, fresh scale
            g_re, s = weights_to_conductances(self._w_prog, m.g_max, m.g_min)
            g = m.drift(g_re, self._nu, t, z)
        self._set_current(conductances_to_weights(g, s), float(t), g if m.drift_per_device else None)
        self._reads.pop("now", None)
        self._alpha = None

    def _read_fwd(self, w, k: int) -> np.ndarray:
        """One-hot reads of every input line of ``w`` through the forward periphery: (in_size, out_size).

        Read ``k`` (0: the programmed tile, aihwkit's baseline; ``k``: after the k-th drift_to) uses the calls
        ``k * 2^20 + c`` of the readout stream for its chunks ``c`` of 256 lines, so it is the same whenever it is
        taken (a compensation may be chosen after drift_to) and never holds more than 256 one-hot rows.
        """
        out = np.empty((self.in_size, self.out_size), np.float32)
        for c, j0 in enumerate(range(0, self.in_size, READ_CHUNK)):
            cols = np.arange(j0, min(j0 + READ_CHUNK, self.in_size))
            out[cols] = read_columns(w, cols, self.config.forward, self._keys["readout"], (k << 20) + c,
                                     counters=self.counters)
        return out

    def _read(self, which: str) -> np.ndarray:
        """The calibration read ``ref`` (programmed tile) or ``now`` (current weights), taken once when needed."""
        if which == "now" and self._time is None:
            which = "ref"
        if which not in self._reads:
            self._reads[which] = (self._read_fwd(self._w_prog, 0) if which == "ref"
                                  else self._read_fwd(self._w, self._t["drift"]))
        return self._reads[which]

    # ------------------------------------------------------------------ compensation
    @property
    def compensation(self):
        return self._comp

    @compensation.setter
    def compensation(self, comp) -> None:
        comp = get_compensation(comp)
        if comp is not None and not isinstance(comp, DriftCompensation):
            raise ConfigError(f"The 'compensation' parameter must be a DriftCompensation or None. Got {comp!r}.")
        self._comp = comp
        self._alpha = None

    @property
    def alpha(self):
        """The compensation scale of the outputs now (None without compensation): a float or (out_size,) array."""
        if self._comp is None:
            return None
        if self._alpha is None:
            c = self._comp
            if c.exact_reference:
                y_ref = self._w_target.T
            else:
                y_ref = self._read("ref") if c.readout == "forward" else self._w_prog.T
            y_now = self._read("now") if c.readout == "forward" else self._w.T
            self._alpha = c.alpha(y_ref, y_now)
        return self._alpha

    # ------------------------------------------------------------------ reads (forward: TileBase)
    def _mvm_weights(self) -> np.ndarray:
        return self._w

    def _forward(self, X, io=None) -> np.ndarray:
        y = super()._forward(X, io)
        a = self.alpha
        if a is None:
            return y
        return (y * np.asarray(a, np.float32)).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"InferenceTile({self.out_size}, {self.in_size}, {self.noise_model!r}, t={self._time})"
