"""One-sided unit cell: two devices per weight that only potentiate, ``w = g_plus - g_minus``, with refresh.

Phase-change memory (Nandakumar et al., Front. Neurosci. 14:406, 2020) changes its conductance gradually only
in one direction (SET, potentiation); a RESET is abrupt. aihwkit therefore uses its PCM fit only as a pair
(``PCMPresetUnitCell``, a ``OneSidedUnitCell``): every weight is ``g_plus - g_minus``, a positive weight
change potentiates ``g_plus``, a negative one potentiates ``g_minus``, and since both devices only climb, a
periodic *refresh* resets saturated pairs and re-writes their weight. This module is :class:`OneSidedUnitCell`
(the config) and :class:`OneSidedTile` (the tile; same interface as :class:`~crossbar_sim.tiles.analog.AnalogTile`
and :class:`~crossbar_sim.tiles.tiki_taka.TikiTakaTile`).

The rules of aihwkit 1.1.0 we follow (``configs/compounds.py`` ``OneSidedUnitCell``,
``presets/compounds.py`` ``PCMPresetUnitCell``, ``src/rpucuda/rpu_onesided_device.cpp``, read, not copied):

* **Devices.** Both devices are drawn from one unit-device config (aihwkit duplicates
  ``unit_cell_devices[0]``), each with its own device-to-device variation.
* **Update.** One set of pulse trains per sample, with the tile's update parameters and the *pair's*
  granularity; each coincidence goes to exactly one device and is applied there as an up pulse: one that
  raises ``w`` (``-sign(d_i x_j) > 0``) to ``g_plus``, one that lowers it to ``g_minus``. Here both arrays
  share one update key and sample counter and are called with ``sign_mode`` +1 / -1
  (:meth:`AnalogTile._update`), which draws identical trains and splits their coincidences.
* **Granularity** (update management, ``dw_min`` of BL/A/B): the mean of the two devices' granularities
  (aihwkit's vector unit cell), i.e. the unit device's. For the PCM ExpStep fit that is aihwkit's ExpStep rule,
  the *down* step at ``g = 0``, ``0.0324``, although the pair only uses up steps (``0.28`` at ``g = 0``,
  ``0.032`` at ``g = 1``, ``0.012`` at ``g = 2``): update management under-estimates the first pulses after
  a reset by up to 9x, as in aihwkit.
* **Refresh schedule.** Counted in update vectors (samples): after every ``refresh_every * batch`` samples
  (``units_in_mbatch``, the default; ``batch`` = the samples of the current update call) or every
  ``refresh_every`` samples; ``refresh_every = 0`` never refreshes (aihwkit's default; the PCM preset uses 1).
* **Refresh.** (1) every column ``j`` of both arrays is read with input ``e_j`` through ``refresh_forward``
  (its own IOParameters; noise and bound management stay as configured, unlike Tiki-Taka's transfer read):
  ``wp``, ``wm`` carry that read's output noise and ADC step (PCM preset: 0.1 and 0.078, in weight units
  since ``max|e_j| = 1``). (2) A weight is refreshed when the larger of ``wp / w_max``, ``wm / w_max`` exceeds
  ``refresh_upper_thres`` and the smaller exceeds ``refresh_lower_thres``, with ``w_max = |unit_device.w_max|``
  (the mean bound, the same for both devices, not the per-device bound). (3) Both devices of those weights
  are reset (``reset_bias + reset_std * xi``, clipped to the device's bounds: aihwkit ``resetAtIndices``).
  (4) The *read* difference is re-written open loop onto one device: ``wp - wm`` onto ``g_plus`` where
  ``wp > wm``, else ``wm - wp`` onto ``g_minus``, by a pulsed update with ``x = e_j``, ``d = -difference``,
  learning rate 1, ``refresh_update`` and that device's own granularity (the PCM preset: BL 31 with update
  management; a difference above ``31 * g`` saturates, so it is not re-written whole).
  ``n_refreshed`` counts refreshed weights (aihwkit's refresh count).
* **set_weights** (aihwkit ``onSetWeights``): ``g_plus = max(w, 0)``, ``g_minus = max(-w, 0)``, each clipped to
  its bounds; no reset. The refresh schedule restarts (aihwkit resets its update counter there).
* **Forward / backward** read ``w = g_plus - g_minus`` in one MVM through the tile's periphery (aihwkit
  reduces the pair to one weight before its forward pass).
* **copy_inverted**: ``g_plus`` takes the mirror image of ``g_minus``'s per-device parameters (up and down
  steps swapped, bounds mirrored), so the negative updates use the first device's down branch. Only
  per-device parameters are mirrored; tile-wide shapes (ExpStep's A, gamma; Piecewise and lookup tables) are
  not, as in aihwkit.

Where we differ on purpose:

* Random numbers are our counter-based streams (a pair is reproducible from its seed, bit for bit after
  ``get_state``/``set_state``); aihwkit's draws are not reproduced.
* A refresh reads every column, then writes every refreshed column, in two batched calls per array; aihwkit
  reads, resets and writes column by column. Columns touch disjoint devices, so the result is the same in
  distribution.
* ``copy_inverted`` mirrors ``g_minus``'s scales, bounds, reference and slopes / exponents. aihwkit's 2020
  source copies scales and bounds from the first device; newer sources mirror the second device's own scales
  and bounds but copy the slopes from the first; we do not reproduce that mix. aihwkit would let PCM
  (``w_min = 0``) be copied inverted into a device that can never rise; we refuse it with an error.
* Write noise: a refresh reset redraws the write noise of the reset devices (aihwkit refuses resets with
  write noise). PCM has none.
* The non-pulsed update types (``expected``, ``none``, ``none_with_device``) are split exactly: the positive
  part of ``-lr d x^T`` onto ``g_plus``, the negative part onto ``g_minus`` (each sample as two rank-1 terms,
  ``d+ x-`` and ``d- x+`` on one device, ``d+ x+`` and ``d- x-`` on the other).
* Validation (aihwkit has none): ``unit_device.w_max > 0`` (both devices climb towards it and the refresh
  divides by it) and ``0 <= refresh_lower_thres <= refresh_upper_thres``.

>>> import numpy as np
>>> from crossbar_sim.tiles.onesided import OneSidedTile, OneSidedTileConfig, OneSidedUnitCell
>>> tile = OneSidedTile(3, 4, OneSidedTileConfig(device=OneSidedUnitCell(refresh_every=1)), seed=0)
>>> tile.set_weights(np.full((3, 4), -0.25))
>>> float(tile.tiles["g_minus"].read_weights().max()), float(tile.tiles["g_plus"].read_weights().max())
(0.25, 0.0)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError
from ..kernels import update as K
from .params import IOParameters, TileConfig, UpdateParameters
from .periphery import read_columns
from ..rng import key_from_seedseq, make_seedseq
from .analog import state_counters, state_int, AnalogTile, TileBase, check_state

#: update types that do not go through pulse trains (the one-sided split is then done on the outer product)
NON_PULSED = ("expected", "none", "none_with_device")


def _default_unit_device():
    from crossbar_sim.device_models import SoftBoundsDevice

    return SoftBoundsDevice()


@dataclass(frozen=True, repr=False)
class OneSidedUnitCell(Config):
    """Two one-directional devices per weight, ``w = g_plus - g_minus``, with refresh (aihwkit
    ``OneSidedUnitCell``; names and defaults are aihwkit's).

    Parameters
    ----------
    unit_device : PulsedDevice
        The device both ``g_plus`` and ``g_minus`` are drawn from (aihwkit ``unit_cell_devices[0]``; aihwkit
        uses only the first). Its ``w_max`` must be > 0. Device parameters given to this config (``replace``,
        sweep overrides) that are not its own are passed on to this device.
    refresh_every : int
        Refresh period in update vectors (0: never), in [0, 2^31 - 1].
    units_in_mbatch : bool
        Count ``refresh_every`` in mini-batches (``refresh_every * batch`` samples) instead of samples.
    refresh_upper_thres, refresh_lower_thres : float
        A weight is refreshed when the larger of its two devices, read and divided by ``|unit_device.w_max|``,
        exceeds ``refresh_upper_thres`` and the smaller exceeds ``refresh_lower_thres``;
        ``0 <= refresh_lower_thres <= refresh_upper_thres``.
    refresh_forward : IOParameters
        Periphery of the refresh reads (used as given: noise and bound management are not forced off).
    refresh_update : UpdateParameters
        Pulse scheme of the refresh re-writes.
    copy_inverted : bool
        ``g_plus`` is the mirror image of ``g_minus`` (up and down swapped, bounds mirrored): the negative
        updates use the device's down branch. Needs ``unit_device.w_min < 0``.
    """

    unit_device: Config = field(default_factory=_default_unit_device)
    refresh_every: int = 0
    units_in_mbatch: bool = True
    refresh_upper_thres: float = 0.75
    refresh_lower_thres: float = 0.25
    refresh_forward: IOParameters = field(default_factory=IOParameters)
    refresh_update: UpdateParameters = field(default_factory=UpdateParameters)
    copy_inverted: bool = False

    _delegate = "unit_device"

    def validate(self) -> None:
        from crossbar_sim.device_models import PulsedDevice

        owner = type(self).__name__
        if not isinstance(self.unit_device, PulsedDevice):
            raise ConfigError(f"The 'unit_device' parameter of {owner} must be a device model. Got "
                              f"{self.unit_device!r}.")
        if not self.unit_device.w_max > 0.0:
            raise ConfigError(f"The 'unit_device' parameter of {owner} must have w_max > 0 (both devices of the "
                              f"pair only move up, towards w_max, and the refresh divides by it). Got "
                              f"w_max={self.unit_device.w_max!r}.")
        V.check_int(self.refresh_every, "refresh_every", owner, 0, 2**31 - 1)
        V.check_bool(self.units_in_mbatch, "units_in_mbatch", owner)
        V.check_float(self.refresh_upper_thres, "refresh_upper_thres", owner, 0.0)
        V.check_float(self.refresh_lower_thres, "refresh_lower_thres", owner, 0.0, self.refresh_upper_thres)
        if not isinstance(self.refresh_forward, IOParameters):
            raise ConfigError(f"The 'refresh_forward' parameter of {owner} must be an IOParameters. Got "
                              f"{self.refresh_forward!r}.")
        if not isinstance(self.refresh_update, UpdateParameters):
            raise ConfigError(f"The 'refresh_update' parameter of {owner} must be an UpdateParameters. Got "
                              f"{self.refresh_update!r}.")
        V.check_bool(self.copy_inverted, "copy_inverted", owner)
        if self.copy_inverted and not self.unit_device.w_min < 0.0:
            raise ConfigError(f"The 'copy_inverted' parameter of {owner} needs a unit device with w_min < 0 (g_plus "
                              f"becomes the mirror image of g_minus, bounded by -w_min). Got "
                              f"w_min={self.unit_device.w_min!r}; use copy_inverted=False for one-directional "
                              f"devices such as PCM.")

    # ------------------------------------------------------------------ what update management and listings need
    def granularity(self) -> float:
        """Weight granularity of the pair: the mean of its two devices' (aihwkit's vector unit cell rule)."""
        return self.unit_device.granularity()

    @property
    def n_states(self) -> float:
        """Number of states: the mean of the two devices' (aihwkit ``calcNumStates`` of a vector cell)."""
        return self.unit_device.n_states

    def weight_range(self) -> tuple[float, float]:
        """Range of ``w = g_plus - g_minus`` for the mean device: ``(w_min - w_max, w_max - w_min)``."""
        u = self.unit_device
        return (u.w_min - u.w_max, u.w_max - u.w_min)

    def refresh_period(self, batch: int) -> int:
        """Samples between refreshes for update calls of ``batch`` samples (0: never)."""
        if self.refresh_every == 0:
            return 0
        return self.refresh_every * batch if self.units_in_mbatch else self.refresh_every


@dataclass(frozen=True, repr=False)
class OneSidedTileConfig(Config):
    """A one-sided pair tile: the unit cell plus the tile's update and periphery (aihwkit ``UnitCellRPUConfig``)."""

    device: OneSidedUnitCell = field(default_factory=OneSidedUnitCell)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)

    def validate(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.device, OneSidedUnitCell):
            raise ConfigError(f"The 'device' parameter of {owner} must be a OneSidedUnitCell. Got {self.device!r}.")
        for name, typ in (("update", UpdateParameters), ("forward", IOParameters), ("backward", IOParameters)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a {typ.__name__}. Got "
                                  f"{getattr(self, name)!r}.")


@dataclass(frozen=True, repr=False)
class DifferenceUnitCell(OneSidedUnitCell):
    """aihwkit's deprecated alias of :class:`OneSidedUnitCell` (``DifferenceUnitCell``): the same pair."""


def is_array_device(device) -> bool:
    """True for what one array of weights can be built from: a device model, a :class:`OneSidedUnitCell` or a
    :class:`~crossbar_sim.tiles.vector.VectorUnitCell` (vector and reference cells)."""
    from crossbar_sim.device_models import PulsedDevice

    from .vector import VectorUnitCell

    return isinstance(device, (PulsedDevice, OneSidedUnitCell, VectorUnitCell))


def check_array_device(device, name: str, owner: str, optional: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``device`` is a device model or a unit cell (or None)."""
    if optional and device is None:
        return
    if not is_array_device(device):
        raise ConfigError(f"The '{name}' parameter of {owner} must be a device model, a OneSidedUnitCell or a "
                          f"VectorUnitCell{' or None' if optional else ''}. Got {device!r}.")


def make_array(out_size: int, in_size: int, device, update: UpdateParameters, forward: IOParameters,
               backward: IOParameters, seed=None, threads=None):
    """One array of weights: an :class:`AnalogTile` for a device model, a :class:`OneSidedTile` for a one-sided
    cell, a :class:`~crossbar_sim.tiles.vector.VectorTile` for a vector or reference cell."""
    from .vector import VectorTile, VectorTileConfig, VectorUnitCell

    if isinstance(device, VectorUnitCell):
        cfg = VectorTileConfig(device=device, update=update, forward=forward, backward=backward)
        return VectorTile(out_size, in_size, cfg, seed=seed, threads=threads)
    if isinstance(device, OneSidedUnitCell):
        cfg = OneSidedTileConfig(device=device, update=update, forward=forward, backward=backward)
        return OneSidedTile(out_size, in_size, cfg, seed=seed, threads=threads)
    return AnalogTile(out_size, in_size, TileConfig(device=device, update=update, forward=forward,
                                                    backward=backward), seed=seed, threads=threads)


def mirrored_devices(src, sigma: float):
    """The per-device parameters of the mirror image ``w -> -w`` of the devices ``src`` (DeviceArrays).

    An up pulse of the mirror is a down pulse of ``src``: steps swapped, bounds ``[-b_max, -b_min]``, reference
    negated; the linear family's slopes become ``(-ld, -lu)`` (up ``w += su + lu (w + ref)``, down
    ``w -= sd + ld (w + ref)``), PowStep's exponents swap. ``sigma`` is the cycle-to-cycle spread (for the
    linear family's derived rows).
    """
    dp = np.moveaxis(src.dp, -1, 0).astype(np.float64)
    out = dp.copy()
    out[K.SU], out[K.SD] = dp[K.SD], dp[K.SU]
    out[K.LO], out[K.HI] = -dp[K.HI], -dp[K.LO]
    out[K.REF] = -dp[K.REF]
    if src.model == K.MODEL_LINEAR:
        out[K.LU], out[K.LD] = -dp[K.LD], -dp[K.LU]
        K.linear_derived(out, sigma)
    elif src.model == K.MODEL_POW:
        out[K.LU], out[K.LD] = dp[K.LD], dp[K.LU]
    return dataclasses.replace(src, dp=np.ascontiguousarray(np.moveaxis(out, 0, -1), dtype=np.float32))


#: counters kept by the pair itself (the pulse counts are the sums of its two arrays')
PAIR_COUNTER_NAMES = ("n_updates", "n_pulse_cycles", "n_slots", "n_forward", "n_backward", "mvm", "dac", "adc",
                      "n_refresh_checks", "n_refreshed", "n_refresh_writes")
_SUMMED = ("n_pulses", "n_pulses_up", "n_pulses_down")


class OneSidedTile(TileBase):
    """A ``out_size x in_size`` array of one-sided device pairs ``w = g_plus - g_minus`` with refresh.

    Same interface as :class:`~crossbar_sim.tiles.analog.AnalogTile` (and usable as A or C of a Tiki-Taka tile).
    See the module docstring for the rules.

    Parameters
    ----------
    out_size, in_size : int
    config : OneSidedTileConfig
    seed : int, SeedSequence or None
        Construction seed; both arrays' device-to-device variation and every random stream (pulse trains,
        refresh reads and writes, resets, periphery) are spawned from it.
    threads : int or None
        As for :class:`~crossbar_sim.tiles.analog.AnalogTile`.

    Attributes
    ----------
    plus, minus : AnalogTile
        The arrays ``g_plus`` and ``g_minus`` (also ``tiles``). Their pulses are all up pulses.
    samples_seen : int
        Update vectors since the last refresh-schedule restart (``set_weights``).
    """

    def __init__(self, out_size: int, in_size: int, config: OneSidedTileConfig | None = None, seed=None,
                 threads=None):
        if config is None:
            config = OneSidedTileConfig()
        if not isinstance(config, OneSidedTileConfig):
            raise ConfigError(f"The 'config' parameter of OneSidedTile must be a OneSidedTileConfig. Got {config!r}.")
        self.config = config
        cell = config.device
        ss = make_seedseq(seed)
        s_minus, s_plus, s_f, s_b, s_u, s_rr, s_rw = ss.spawn(7)
        # the arrays' own update streams and periphery are never used: the pair drives both with its streams
        tc = TileConfig(device=cell.unit_device, update=config.update, forward=config.forward,
                        backward=config.backward)
        self.minus = AnalogTile(out_size, in_size, tc, seed=s_minus, threads=threads)
        self.plus = AnalogTile(out_size, in_size, tc, seed=s_plus, threads=threads)
        self.out_size, self.in_size = self.plus.out_size, self.plus.in_size
        if cell.copy_inverted:
            self.plus.devices = mirrored_devices(self.minus.devices, cell.unit_device.dw_min_std)
            self.plus.set_weights(np.zeros(self.shape, np.float32))
        self._keys = {"forward": key_from_seedseq(s_f), "backward": key_from_seedseq(s_b),
                      "update": key_from_seedseq(s_u), "refresh_read": key_from_seedseq(s_rr),
                      "refresh_write": key_from_seedseq(s_rw)}
        self._t = {k: 0 for k in self._keys}
        self.samples_seen = 0
        self._counters = {k: 0 for k in PAIR_COUNTER_NAMES}

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_size, self.in_size)

    @property
    def tiles(self) -> dict:
        """The two arrays by name (for dumps and statistics)."""
        return {"g_plus": self.plus, "g_minus": self.minus}

    @property
    def granularity(self) -> float:
        """The pair's weight granularity: the mean of its arrays' (aihwkit's vector unit cell)."""
        return 0.5 * (self.plus.granularity + self.minus.granularity)

    @property
    def counters(self) -> dict:
        """The pair's counters (a fresh dict): its own, plus the device pulses summed over both arrays.

        ``n_pulse_cycles``/``n_slots`` count a shared-train update once and each refresh write separately;
        ``n_pulses_down`` stays 0 (every pulse is a potentiation).
        """
        out = dict(self._counters)
        for k in _SUMMED:
            out[k] = int(self.plus.counters[k] + self.minus.counters[k])
        return out

    @property
    def pulse_counts(self) -> np.ndarray:
        """(out_size, in_size, 2) int64: pulses per weight on ``g_plus`` ([..., 0], raising w) and on ``g_minus``
        ([..., 1], lowering w)."""
        return np.stack([self.plus.pulse_counts.sum(axis=-1), self.minus.pulse_counts.sum(axis=-1)], axis=-1)

    @property
    def w_min_bound(self) -> np.ndarray:
        """Per-weight lower bound of ``g_plus - g_minus``."""
        return (self.plus.w_min_bound - self.minus.w_max_bound).astype(np.float32)

    @property
    def w_max_bound(self) -> np.ndarray:
        """Per-weight upper bound of ``g_plus - g_minus``."""
        return (self.plus.w_max_bound - self.minus.w_min_bound).astype(np.float32)

    @property
    def _w_app(self) -> np.ndarray:
        """Apparent weights ``g_plus - g_minus`` (a fresh array; what compound tiles read)."""
        return self.plus._w_app - self.minus._w_app

    # ------------------------------------------------------------------ weights
    def read_weights(self) -> np.ndarray:
        """A copy of the apparent weights ``g_plus - g_minus``."""
        return self._w_app

    def hidden_weights(self) -> np.ndarray:
        """``g_plus - g_minus`` of the hidden device states."""
        return self.plus._w - self.minus._w

    def set_weights(self, w) -> None:
        """Program ``g_plus = max(w, 0)``, ``g_minus = max(-w, 0)`` (each clipped to its bounds; aihwkit's
        convention); restarts the refresh schedule."""
        w = V.as_matrix(w, "w", self.shape)
        self.plus.set_weights(np.maximum(w, np.float32(0.0)))
        self.minus.set_weights(np.maximum(-w, np.float32(0.0)))
        self.samples_seen = 0

    # ------------------------------------------------------------------ MVMs (forward / backward: TileBase)
    def _mvm_weights(self) -> np.ndarray:
        return self._w_app

    def _mvm_counters(self) -> dict:
        return self._counters

    # ------------------------------------------------------------------ update
    def update(self, x, d, lr: float, granularity: float | None = None, update=None) -> None:
        """One-sided pulsed update ``W <- W - lr sum_s d_s x_s^T``, samples one after the other, refreshing on
        schedule.

        Parameters
        ----------
        x : array of shape (in_size,) or (batch, in_size)
        d : array of shape (out_size,) or (batch, out_size)
        lr : float
            Learning rate (>= 0).
        granularity : float, optional
            Weight granularity of update management (default: the pair's).
        update : UpdateParameters, optional
            Use these instead of the tile's (e.g. a Tiki-Taka transfer onto this pair).
        """
        X, D, lr = self._update_args(x, d, lr)
        if granularity is not None or update is not None:
            granularity, update = self._update_options(granularity, update)
        self._update(X, D, lr, granularity, update)

    def _update(self, X, D, lr: float, granularity=None, update=None) -> None:
        """:meth:`update` of validated arrays (the internal fast path of layers and compound tiles)."""
        every = self.config.device.refresh_period(X.shape[0])
        B = X.shape[0]
        s0 = 0
        while s0 < B:
            s1 = min(B, s0 + every - (self.samples_seen % every)) if every > 0 else B
            self._pulse_pair(X[s0:s1], D[s0:s1], lr, granularity, update)
            self.samples_seen += s1 - s0
            if every > 0 and self.samples_seen % every == 0:
                self.refresh()
            s0 = s1

    def _on_stream(self, tile: AnalogTile, key, t0: int, X, D, lr, granularity, update, sign_mode) -> tuple:
        """``tile._update`` on the pair's random stream ``key`` from sample ``t0`` (the array's own update
        stream is left where it was). Returns the pulse cycles and slots it used."""
        saved = tile._keys["update"], tile._t["update"]
        c0, s0 = tile.counters["n_pulse_cycles"], tile.counters["n_slots"]
        tile._keys["update"], tile._t["update"] = np.uint64(key), int(t0)
        try:
            tile._update(X, D, lr, granularity, update, sign_mode)
        finally:
            tile._keys["update"], tile._t["update"] = saved
        return tile.counters["n_pulse_cycles"] - c0, tile.counters["n_slots"] - s0

    def _book(self, cycles: int, slots: int) -> None:
        self._counters["n_pulse_cycles"] += int(cycles)
        self._counters["n_slots"] += int(slots)

    def _pulse_pair(self, X, D, lr, granularity, update) -> None:
        """One update call without refresh: the same pulse trains on both arrays, coincidences split by sign."""
        up = self.config.update if update is None else update
        g = self.granularity if granularity is None else float(granularity)
        B = X.shape[0]
        key, t0 = self._keys["update"], self._t["update"]
        if up.pulse_type in NON_PULSED:
            # -lr d x^T = lr (d+ x- + d- x+) - lr (d+ x+ + d- x-): the first part onto g_plus, the second onto
            # g_minus, each as two rank-1 terms per sample (in sample order); all of them raise the device
            Xp, Xm = np.maximum(X, np.float32(0)), np.maximum(-X, np.float32(0))
            Dp, Dm = np.maximum(D, np.float32(0)), np.maximum(-D, np.float32(0))
            Dn = np.ascontiguousarray(np.stack([-Dp, -Dm], axis=1).reshape(2 * B, -1))
            Xa = np.ascontiguousarray(np.stack([Xm, Xp], axis=1).reshape(2 * B, -1))
            Xb = np.ascontiguousarray(np.stack([Xp, Xm], axis=1).reshape(2 * B, -1))
            self._on_stream(self.plus, key, 2 * t0, Xa, Dn, lr, g, up, 0)
            self._on_stream(self.minus, key, 2 * t0, Xb, Dn, lr, g, up, 0)
        else:
            # shared key and sample counter: identical trains, each coincidence applied to one array as an up
            # pulse; the pair's cycle is one cycle (both arrays count it: book it once)
            self._book(*self._on_stream(self.plus, key, t0, X, D, lr, g, up, 1))
            self._on_stream(self.minus, key, t0, X, D, lr, g, up, -1)
        self._t["update"] += B
        self._counters["n_updates"] += B

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> int:
        """Check every weight and refresh the pairs near saturation (see the module docstring); returns the number
        of weights refreshed."""
        cell = self.config.device
        self._counters["n_refresh_checks"] += 1
        cols = np.arange(self.in_size)
        key, t = self._keys["refresh_read"], self._t["refresh_read"]
        io = cell.refresh_forward
        # the reads of e_j for every column j, as aihwkit's refresh forward pass (its noise and ADC included)
        wp = read_columns(self.plus._w_app, cols, io, key, t, counters=self._counters).T
        wm = read_columns(self.minus._w_app, cols, io, key, t + 1, counters=self._counters).T
        self._t["refresh_read"] += 2
        w_max = np.float32(abs(cell.unit_device.w_max))  # the mean bound of both devices (one config)
        hi, lo = np.float32(cell.refresh_upper_thres), np.float32(cell.refresh_lower_thres)
        rp, rm = wp / w_max, wm / w_max
        p_big = wp > wm
        sel = np.where(p_big, (rp > hi) & (rm > lo), (rp > lo) & (rm > hi))
        n = int(np.count_nonzero(sel))
        if n == 0:
            return 0
        self.plus.reset_devices(sel)
        self.minus.reset_devices(sel)
        tw = self._t["refresh_write"]
        for tile, rows, diff in ((self.plus, sel & p_big, wp - wm), (self.minus, sel & ~p_big, wm - wp)):
            wcols = np.flatnonzero(rows.any(axis=0))
            if wcols.size == 0:
                continue
            E = np.zeros((wcols.size, self.in_size), np.float32)
            E[np.arange(wcols.size), wcols] = 1.0
            # x = e_j, d = -difference, lr 1: W <- W + difference e_j^T, only up pulses (d <= 0, x >= 0)
            Dw = np.ascontiguousarray(-np.where(rows, diff, np.float32(0)).astype(np.float32)[:, wcols].T)
            self._book(*self._on_stream(tile, self._keys["refresh_write"], tw, E, Dw, 1.0, None,
                                        cell.refresh_update, 1))
            tw += wcols.size
            self._counters["n_refresh_writes"] += int(wcols.size)
        self._t["refresh_write"] = tw
        self._counters["n_refreshed"] += n
        return n

    # ------------------------------------------------------------------ state
    def total_counters(self) -> dict:
        """The pair's counters (pulses summed over both arrays); for symmetry with the compound tiles."""
        return self.counters

    def get_state(self) -> dict:
        """Everything needed to continue bit-identically (both arrays, schedule, counters, random streams)."""
        return {
            "kind": "OneSidedTile",
            "shape": list(self.shape),
            "config": self.config.to_json(),
            "g_plus": self.plus.get_state(),
            "g_minus": self.minus.get_state(),
            "samples_seen": int(self.samples_seen),
            "counters": dict(self._counters),
            "rng": self._rng_state(),
        }

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (shapes must match).

        Raises :class:`FormatError` (and changes nothing) for a partial or foreign dict."""
        owner = "OneSidedTile.set_state"
        check_state(state, self.shape, ("g_plus", "g_minus", "samples_seen", "counters", "rng"), owner,
                    OneSidedTileConfig)
        self._restore_or_roll_back(state, self._restore)

    def _restore(self, state: dict) -> None:
        owner = "OneSidedTile.set_state"
        config = check_state(state, self.shape, (), owner, OneSidedTileConfig)
        samples_seen = state_int(state, "samples_seen", owner)
        counters = state_counters(state, PAIR_COUNTER_NAMES, owner)
        rng = self._checked_rng_state(state["rng"], owner)
        self.plus.set_state(state["g_plus"])
        self.minus.set_state(state["g_minus"])
        self.config = config
        self.samples_seen = samples_seen
        self._counters = counters
        self._apply_rng_state(rng)

    def __repr__(self) -> str:
        return f"OneSidedTile({self.out_size}, {self.in_size}, {self.config.device!r})"
