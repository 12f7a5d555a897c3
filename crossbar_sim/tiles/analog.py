"""An analog crossbar tile: devices, pulsed updates, MVMs through the periphery, state and counters.

>>> import numpy as np
>>> from crossbar_sim import AnalogTile, TileConfig
>>> from crossbar_sim.device_models import SoftBoundsDevice
>>> tile = AnalogTile(4, 3, TileConfig(device=SoftBoundsDevice()), seed=1)
>>> tile.update(np.ones(3), np.ones(4), lr=0.01)
>>> tile.read_weights().shape
(4, 3)
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, FormatError, ShapeError
from ..kernels import update as K
from ..kernels.rng import ziggurat_tables
from .params import IOParameters, TileConfig, UpdateParameters
from .periphery import analog_mvm
from ..rng import key_from_seedseq, make_seedseq

_PTYPE = {
    "stochastic_compressed": K.PULSE_STOCHASTIC,
    "stochastic": K.PULSE_STOCHASTIC,  # aihwkit's uncompressed type: same trains and statistics (params.py)
    "mean_count": K.PULSE_MEAN_COUNT,
    "deterministic_implicit": K.PULSE_DETERMINISTIC,
    "expected": K.PULSE_EXPECTED,
    "none": K.PULSE_NONE,
    "none_with_device": K.PULSE_NONE_WITH_DEVICE,
}

#: the parallel update kernel runs when the tile and the average sample touch at least this many devices
#: (rows x non-zero inputs), and numba has > 1 thread
PARALLEL_MIN_DEVICES = 1 << 16


@lru_cache(maxsize=1)
def zig_tables():
    """Ziggurat tables shared by every tile (computed once per process)."""
    return ziggurat_tables()


def check_state(state: dict, shape, keys=(), owner: str = "tile", config_type=Config) -> Config:
    """The config of a tile state from ``get_state``, after checking it is for a tile of ``shape``.

    Raises :class:`FormatError` unless ``state`` is a dict holding ``shape``, ``config`` and every name in
    ``keys`` (a partial or foreign dict), and :class:`ShapeError` when it is for another shape. ``owner`` names
    the method in the messages; ``config_type``: the config class the state must hold.
    """
    st_shape = state_shape(state, owner, keys)
    if st_shape != tuple(shape):
        raise ShapeError(f"State is for a tile of shape {st_shape}, this tile is {tuple(shape)}.")
    cfg = state["config"]
    if isinstance(cfg, (str, dict)):
        try:
            cfg = Config.from_json(cfg) if isinstance(cfg, str) else Config.from_dict(cfg)
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError and ConfigError are ValueErrors
            raise FormatError(f"The 'config' of the tile state given to {owner} is not a valid config: "
                              f"{str(exc)[:200]}") from None
    if not isinstance(cfg, config_type):
        raise FormatError(f"The 'config' of the tile state given to {owner} must be a {config_type.__name__}. "
                          f"Got {type(cfg).__name__}.")
    return cfg


def state_shape(state: dict, owner: str, keys=()) -> tuple[int, int]:
    """``(out_size, in_size)`` of a tile state, after checking it is a dict holding ``shape``, ``config`` and
    ``keys``; else :class:`FormatError` (a partial or foreign dict)."""
    if not isinstance(state, dict):
        raise FormatError(f"{owner} needs a tile state (the dict get_state() returns). Got {type(state).__name__}.")
    missing = [k for k in ("shape", "config", *keys) if k not in state]
    if missing:
        raise FormatError(f"The tile state given to {owner} lacks {', '.join(map(repr, missing))}; pass the "
                          f"whole dict get_state() of a tile of this kind returns.")
    try:
        shape = tuple(int(n) for n in state["shape"])
    except (TypeError, ValueError, OverflowError):
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise FormatError(f"The 'shape' of the tile state given to {owner} must be [out_size, in_size]. Got "
                          f"{V.short_repr(state['shape'])}.")
    return shape


def state_array(state: dict, key: str, shape, dtype, owner: str) -> np.ndarray:
    """``state[key]`` as a C-contiguous copy of ``dtype`` with exactly ``shape`` (None: any length), else
    :class:`FormatError` naming the key."""
    try:
        arr = np.array(state[key], dtype=dtype, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"'{key}' of the tile state given to {owner} is not a {np.dtype(dtype).name} array "
                          f"({exc}).") from None
    if arr.shape != tuple(shape) and not (shape[0] is None and arr.ndim == len(shape)):
        raise FormatError(f"'{key}' of the tile state given to {owner} must have shape {tuple(shape)}. Got "
                          f"{arr.shape}.")
    return arr


def _num_threads() -> int:
    import numba

    return int(numba.get_num_threads())


COUNTER_NAMES = ("n_updates", "n_pulse_cycles", "n_slots", "n_pulses", "n_pulses_up", "n_pulses_down",
                 "n_forward", "n_backward", "mvm", "dac", "adc")
#: what AnalogTile.set_state reads from a state
_STATE_KEYS = ("device_params", "tile_params", "reset_bias", "weights", "apparent_weights", "pulse_counts",
               "stats", "counters", "rng")


def state_int(state: dict, key: str, owner: str, lo: int = 0) -> int:
    """``state[key]`` as an int >= ``lo``, else :class:`FormatError` naming the key."""
    v = state[key]
    try:
        n = int(v)
        ok = n == v and n >= lo
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise FormatError(f"'{key}' of the tile state given to {owner} must be an int >= {lo}. Got "
                          f"{V.short_repr(v)}.")
    return n


def state_counters(state: dict, names, owner: str) -> dict:
    """``{name: int}`` of ``state['counters']`` for ``names`` (missing ones 0), else :class:`FormatError`."""
    cnt = state["counters"]
    try:
        return {k: int(cnt.get(k, 0)) for k in names}
    except (AttributeError, TypeError, ValueError, OverflowError):
        raise FormatError(f"'counters' of the tile state given to {owner} must map counter names to ints. Got "
                          f"{V.short_repr(cnt)}.") from None


class TileBase:
    """What every tile kind shares: ``forward`` / ``backward`` through the periphery, the state of its random
    streams, and :meth:`from_state`.

    A tile provides ``config.forward`` / ``config.backward`` (IOParameters), ``in_size`` / ``out_size``, the
    random streams ``_keys`` / ``_t`` (with "forward" and "backward"), :meth:`_mvm_weights` (the apparent weights
    an MVM reads), :meth:`_mvm_counters` (the dict the periphery counts MVMs, DAC and ADC conversions into) and
    ``get_state`` / ``set_state``.
    """

    def _rng_state(self) -> dict:
        """``{stream: [key as a decimal string, position]}`` (JSON- and HDF5-safe; uint64 keys as strings)."""
        return {k: [str(int(self._keys[k])), int(self._t[k])] for k in self._keys}

    def _checked_rng_state(self, rng, owner: str) -> dict:
        """``{stream: (key, position)}`` of a state's ``rng`` entry, checked (every stream of this tile, keys
        as uint64, positions >= 0), else :class:`FormatError`."""
        msg = (f"'rng' of the tile state given to {owner} must map the streams "
               f"{', '.join(map(repr, self._keys))} to [key, position].")
        if not isinstance(rng, dict) or set(rng) != set(self._keys):
            raise FormatError(f"{msg} Got {V.short_repr(rng)}.")
        out = {}
        try:
            for k, (key, t) in rng.items():
                out[k] = (np.uint64(int(key)), int(t))
                if out[k][1] < 0:
                    raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise FormatError(f"{msg} Got {V.short_repr(rng)}.") from None
        return out

    def _set_rng_state(self, rng: dict) -> None:
        """Set the random streams from a state's ``rng`` entry (checked: :meth:`_checked_rng_state`)."""
        self._apply_rng_state(self._checked_rng_state(rng, f"{type(self).__name__}.set_state"))

    def _apply_rng_state(self, checked: dict) -> None:
        for k, (key, t) in checked.items():
            self._keys[k] = key
            self._t[k] = t

    def _restore_or_roll_back(self, state: dict, restore) -> None:
        """``restore(state)``; if it raises, put the tile back as it was (a tile made of other tiles checks their
        parts one after the other, so a bad part found late must not leave the first parts changed)."""
        saved = self.get_state()
        try:
            restore(state)
        except Exception:
            restore(saved)
            raise

    @classmethod
    def from_state(cls, state: dict, threads=None):
        """A tile of this kind rebuilt from :meth:`get_state` (continues bit-identically).

        Raises :class:`FormatError` for a dict that is not a whole state of this tile kind."""
        owner = f"{cls.__name__}.from_state"
        out_size, in_size = state_shape(state, owner)
        kind = state.get("kind", cls.__name__)
        if kind != cls.__name__:
            raise FormatError(f"{owner} needs the state of a {cls.__name__}. Got a {V.short_repr(kind)} state.")
        cfg = check_state(state, (out_size, in_size), owner=owner)
        tile = cls(out_size, in_size, cfg, seed=0, threads=threads)
        tile.set_state(state)
        return tile

    def _io_arg(self, io, method: str) -> IOParameters:
        """``io`` of a public ``forward``/``backward`` call (not None), checked."""
        if not isinstance(io, IOParameters):
            raise ConfigError(f"The 'io' parameter of {type(self).__name__}.{method} must be an IOParameters or "
                              f"None. Got {V.short_repr(io)} instead.")
        return io

    def _mvm_weights(self) -> np.ndarray:
        raise NotImplementedError  # abstract: each tile kind says what its MVMs read

    #: weights that forward and backward read instead of :meth:`_mvm_weights` while set (set_forward_weights)
    _fb_weights = None

    def set_forward_weights(self, w=None) -> None:
        """Weights that ``forward`` and ``backward`` read until called again with None (hardware-aware training:
        the weight-noise copy of one mini-batch, aihwkit's ``fb_weights``); the devices and updates are untouched."""
        if w is None:
            self._fb_weights = None
            return
        w = np.ascontiguousarray(w, np.float32)
        if w.shape != (self.out_size, self.in_size):
            raise ShapeError(f"'w' must have shape {(self.out_size, self.in_size)}. Got shape {w.shape} instead.")
        self._fb_weights = w

    def _mvm_counters(self) -> dict:
        return self.counters

    def forward(self, x, io=None) -> np.ndarray:
        """``y = W x`` through the forward periphery. ``x``: (in_size,) or (batch, in_size)."""
        X = V.as_batch(x, "x", self.in_size, finite=False)  # analog_mvm checks inf/NaN
        y = self._forward(X, io if io is None else self._io_arg(io, "forward"))
        return y[0] if X is not x and (x.ndim if type(x) is np.ndarray else np.ndim(x)) == 1 else y

    def _forward(self, X, io=None) -> np.ndarray:
        """:meth:`forward` of a batch ``X`` (C-contiguous float32 of the right shape; analog_mvm checks
        inf/NaN); returns (batch, out_size). The internal path of the network layers."""
        return self._mvm(X, self.config.forward if io is None else io, "forward", False)

    def backward(self, d, io=None) -> np.ndarray:
        """``z = W^T d`` through the backward periphery (no bound management). ``d``: (out_size,) or
        (batch, out_size)."""
        D = V.as_batch(d, "d", self.out_size, finite=False)  # analog_mvm checks inf/NaN
        z = self._backward(D, io if io is None else self._io_arg(io, "backward"))
        return z[0] if D is not d and (d.ndim if type(d) is np.ndarray else np.ndim(d)) == 1 else z

    def _backward(self, D, io=None) -> np.ndarray:
        """:meth:`backward` of a batch ``D`` (as :meth:`_forward`); returns (batch, in_size)."""
        return self._mvm(D, self.config.backward if io is None else io, "backward", True)

    def _mvm(self, X, io, stream: str, transposed: bool) -> np.ndarray:
        counters = self._mvm_counters()
        W = self._mvm_weights() if self._fb_weights is None else self._fb_weights
        y = analog_mvm(W, X, io, self._keys[stream], self._t[stream], None, transposed,
                       not transposed, counters)
        self._t[stream] += 1
        counters["n_" + stream] += X.shape[0]
        return y

    def post_update_step(self) -> None:
        """What happens to the devices between mini-batches: diffusion, then decay (aihwkit's
        ``post_update_step``, called by its optimiser once per mini-batch after the update). A no-op for devices
        without ``diffusion`` / ``lifetime``. Compound tiles apply it to every array."""
        for t in self._post_update_arrays():
            t.post_update_step()

    def _post_update_arrays(self) -> list:
        """The arrays :meth:`post_update_step` reaches (compound tiles: their sub-arrays)."""
        tiles = getattr(self, "tiles", None)
        return list(tiles.values()) if isinstance(tiles, dict) else []

    def _update_args(self, x, d, lr):
        """``(X, D, lr)`` of a public ``update`` call, checked: batches of the right sizes and equal length,
        finite, ``lr >= 0`` (errors name the parameter)."""
        X = V.as_batch(x, "x", self.in_size)
        D = V.as_batch(d, "d", self.out_size)
        if X.shape[0] != D.shape[0]:
            raise ShapeError(f"'x' and 'd' must have the same batch size. Got {X.shape[0]} and {D.shape[0]}.")
        return X, D, V.check_float(lr, "lr", f"{type(self).__name__}.update", 0.0, V.FLOAT32_MAX)

    def _update_options(self, granularity, update):
        """``(granularity, update)`` of a public ``update`` call of the tile kinds that take them: None (the
        tile's own), or a float > 0 and an :class:`UpdateParameters` (errors name the parameter)."""
        if granularity is not None:
            granularity = V.check_float(granularity, "granularity", f"{type(self).__name__}.update",
                                        V.FLOAT32_TINY, V.FLOAT32_MAX)
        if update is not None and not isinstance(update, UpdateParameters):
            raise ConfigError(f"The 'update' parameter of {type(self).__name__}.update must be an "
                              f"UpdateParameters or None. Got {V.short_repr(update)} instead.")
        return granularity, update


class AnalogTile(TileBase):
    """A ``out_size x in_size`` crossbar array of devices with its periphery.

    Parameters
    ----------
    out_size, in_size : int
        Number of output lines (rows, error signal ``d``) and input lines (columns, activation ``x``).
    config : TileConfig, optional
        Device model, update scheme, forward and backward periphery (default: aihwkit's defaults with a
        ConstantStep device).
    seed : int, numpy.random.SeedSequence or None
        Construction seed. Device-to-device variation, cycle-to-cycle noise and periphery noise use
        independent streams spawned from it; the same seed gives bit-identical results.
    threads : int or None
        Row blocks of the parallel update kernel (``None``: numba's thread count; 1: serial).

    Notes
    -----
    Hidden weights ``w`` (float32) evolve under pulses; the apparent weights (what reads see) differ from
    them only with write noise. Bounds hold per device after construction, ``set_weights`` and every update.
    """

    def __init__(self, out_size: int, in_size: int, config: TileConfig | None = None, seed=None,
                 threads: int | None = None):
        self.out_size = V.check_int(out_size, "out_size", "AnalogTile", 1, 2**31 - 1)
        self.in_size = V.check_int(in_size, "in_size", "AnalogTile", 1, 2**31 - 1)
        if config is None:
            config = TileConfig()
        if not isinstance(config, TileConfig):
            raise ConfigError(f"The 'config' parameter of AnalogTile must be a TileConfig. Got {config!r}.")
        self.config = config
        self.threads = threads
        ss = make_seedseq(seed)
        self._seed_entropy = ss.entropy
        c_dev, c_upd, c_fwd, c_bwd, c_misc = ss.spawn(5)
        self.devices = config.device.build((self.out_size, self.in_size), np.random.default_rng(c_dev))
        self._keys = {
            "update": key_from_seedseq(c_upd),
            "forward": key_from_seedseq(c_fwd),
            "backward": key_from_seedseq(c_bwd),
            "misc": key_from_seedseq(c_misc),
        }
        self._t = {"update": 0, "forward": 0, "backward": 0, "misc": 0}
        self._w = np.zeros((self.out_size, self.in_size), np.float32)
        self._w_app = self._w if self.devices.write_noise == 0.0 else np.zeros_like(self._w)
        self._cnt = np.zeros((2, self.out_size, self.in_size), np.int64)  # [0] up, [1] down (planar: vectorises)
        self.counters = {k: 0 for k in COUNTER_NAMES}
        self._stats = np.zeros(K.N_ST, np.int64)
        self.set_weights(self._w)

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_size, self.in_size)

    @property
    def pulse_counts(self) -> np.ndarray:
        """Up and down pulses received by each device, (out_size, in_size, 2) int64: ``[..., 0]`` up,
        ``[..., 1]`` down (a writable view of the counters)."""
        return np.moveaxis(self._cnt, 0, -1)

    @property
    def granularity(self) -> float:
        return self.devices.granularity

    @property
    def w_min_bound(self) -> np.ndarray:
        """Per-device lower bound of the hidden weight (float32, (out, in))."""
        return self.devices.w_lo

    @property
    def w_max_bound(self) -> np.ndarray:
        """Per-device upper bound of the hidden weight (float32, (out, in))."""
        return self.devices.w_hi

    # ------------------------------------------------------------------ weights
    def read_weights(self) -> np.ndarray:
        """A copy of the apparent weights (what an exact read of the array would return)."""
        return self._w_app.copy()

    def hidden_weights(self) -> np.ndarray:
        """A copy of the hidden device states (equal to the apparent weights without write noise)."""
        return self._w.copy()

    def set_weights(self, w) -> None:
        """Program the weights directly (clipped to each device's bounds; redraws write noise)."""
        w = V.as_matrix(w, "w", self.shape)
        np.clip(w, self.w_min_bound, self.w_max_bound, out=self._w)
        self._redraw_write_noise()

    def _redraw_write_noise(self):
        if self._w_app is self._w:
            return
        rng = np.random.default_rng([int(self._keys["misc"]), self._t["misc"]])
        self._t["misc"] += 1
        self._w_app[...] = self._w + self.devices.write_noise * rng.standard_normal(self._w.shape)

    def reset_columns(self, cols, reset_prob: float = 1.0) -> None:
        """Reset the devices of the given columns to ``reset_bias + reset_std * xi`` (clipped)."""
        cols = V.as_real_array(cols, "cols", np.float64).reshape(-1)
        if cols.size and (not np.all(np.isfinite(cols)) or np.any(cols != np.round(cols))):
            raise ConfigError(f"'cols' must be column indices (integers). Got {V.short_repr(cols)} instead.")
        cols = cols.astype(np.int64) % self.in_size
        reset_prob = V.check_float(reset_prob, "reset_prob", "AnalogTile.reset_columns", 0.0, 1.0)
        rng = np.random.default_rng([int(self._keys["misc"]), self._t["misc"]])
        self._t["misc"] += 1
        sel = np.zeros(self.shape, bool)
        sel[:, cols] = True
        if reset_prob < 1.0:
            sel &= rng.random(self.shape) < reset_prob
        self._reset(sel, rng)

    def reset_devices(self, mask) -> None:
        """Reset the devices where ``mask`` (bool, (out_size, in_size)) is True to ``reset_bias + reset_std * xi``
        (clipped to each device's bounds); aihwkit ``resetAtIndices`` (the refresh of a one-sided pair)."""
        mask = V.as_matrix(mask, "mask", self.shape, bool)
        rng = np.random.default_rng([int(self._keys["misc"]), self._t["misc"]])
        self._t["misc"] += 1
        self._reset(mask, rng)

    def _reset(self, sel, rng) -> None:
        std = self.config.device.reset_std
        new = self.devices.reset_bias + std * rng.standard_normal(self.shape)
        new = np.clip(new, self.w_min_bound, self.w_max_bound).astype(np.float32)
        self._w[sel] = new[sel]
        if self._w_app is not self._w:
            self._w_app[sel] = (self._w + self.devices.write_noise * rng.standard_normal(self.shape))[sel]

    def post_update_step(self) -> None:
        """Diffusion, then decay, once (aihwkit ``post_update_step``; see ``lifetime`` and ``diffusion`` of the
        device): ``w <- clip(w + rho xi)``, then ``w <- clip((w - b) (1 - 1/t) + b)`` with ``b`` the reset value;
        the write noise of every device is redrawn after either. A no-op without them."""
        dev = self.devices
        if dev.diffusion_rate is None and dev.decay_scale is None:
            return
        if dev.diffusion_rate is not None:
            rng = np.random.default_rng([int(self._keys["misc"]), self._t["misc"]])
            self._t["misc"] += 1
            w = self._w + dev.diffusion_rate * rng.standard_normal(self.shape).astype(np.float32)
            np.clip(w, self.w_min_bound, self.w_max_bound, out=self._w)
        if dev.decay_scale is not None:
            b = dev.reset_bias
            w = (self._w - b) * dev.decay_scale + b
            np.clip(w.astype(np.float32), self.w_min_bound, self.w_max_bound, out=self._w)
        self._redraw_write_noise()

    # ------------------------------------------------------------------ MVMs (forward / backward: TileBase)
    def _mvm_weights(self) -> np.ndarray:
        return self._w_app

    # ------------------------------------------------------------------ update
    def update(self, x, d, lr: float, granularity: float | None = None, update=None) -> None:
        """Pulsed update ``W <- W - lr sum_s d_s x_s^T``, samples applied one after the other.

        Parameters
        ----------
        x : array of shape (in_size,) or (batch, in_size)
        d : array of shape (out_size,) or (batch, out_size)
        lr : float
            Learning rate (>= 0).
        granularity : float, optional
            Weight granularity used by update management (default: the device's; compound tiles pass
            theirs).
        update : UpdateParameters, optional
            Use these instead of the tile's (transfers of compound tiles).
        """
        X, D, lr = self._update_args(x, d, lr)
        if granularity is not None or update is not None:
            granularity, update = self._update_options(granularity, update)
        self._update(X, D, lr, granularity, update)

    def _update(self, X, D, lr: float, granularity=None, update=None, sign_mode: int = 0) -> None:
        """:meth:`update` without validation: ``X``, ``D`` C-contiguous float32 (batch, in/out), finite, ``lr`` >= 0.

        The internal fast path of compound tiles and network layers (which produce their inputs themselves).
        ``sign_mode`` (pulsed types only): 0 applies every pulse; +1 only the up pulses; -1 only the down
        pulses, applied as up pulses (the two devices of a one-sided pair share one set of pulse trains when
        both are called with the same update key, sample counter and granularity).
        """
        up = self.config.update if update is None else update
        g = self.devices.granularity if granularity is None else float(granularity)
        ptype = _PTYPE[up.pulse_type]
        dev = self.devices
        B = X.shape[0]
        if ptype in (K.PULSE_NONE, K.PULSE_NONE_WITH_DEVICE):
            K.float_update(self._w, dev.dp, X, D, lr, ptype == K.PULSE_NONE_WITH_DEVICE)
            if self._w_app is not self._w:
                self._redraw_write_noise()
        elif ptype == K.PULSE_EXPECTED:
            K.expected_update(self._w, dev.dp, X, D, lr, g, dev.model, dev.tp)
            if self._w_app is not self._w:
                self._redraw_write_noise()
        else:
            ki, wi, fi = zig_tables()
            ublm = up.update_bl_management
            um = up.update_management or ublm
            key, t0 = np.uint64(self._keys["update"]), np.uint64(self._t["update"])
            if ptype != K.PULSE_STOCHASTIC:
                K.pulsed_update_counts(self._w, self._w_app, dev.dp, self._cnt, X, D, lr, g, up.desired_bl, ublm,
                                       um, up.um_grad_scale, ptype, dev.model, dev.noise_mode, dev.dw_min_std,
                                       dev.write_noise, dev.tp, up.closed_form, key, t0, ki, wi, fi, self._stats,
                                       int(sign_mode))
            else:
                args = (self._w, self._w_app, dev.dp, dev.dpr, self._cnt, X, D, lr, g, up.desired_bl, ublm, um,
                        up.um_grad_scale, ptype, dev.model, dev.noise_mode, dev.dw_min_std, dev.write_noise,
                        dev.tp, up.closed_form, key, t0, ki, wi, fi, self._stats, int(sign_mode), K.PATH_AUTO)
                nthreads = 1
                if (self.out_size > 1 and self.out_size * self.in_size >= PARALLEL_MIN_DEVICES
                        and self.out_size * np.count_nonzero(X) >= PARALLEL_MIN_DEVICES * B):
                    # parallel only when a sample touches enough devices: the threads are woken once per
                    # sample, which costs more than it saves for sparse inputs (a Tiki-Taka transfer writes
                    # one column; MNIST pixels are mostly 0). numba.get_num_threads() takes a process lock.
                    nthreads = _num_threads() if self.threads is None else int(self.threads)
                if nthreads > 1:
                    K.pulsed_update(*args, min(nthreads * 4, self.out_size))
                else:
                    K.pulsed_update_serial(*args)
            self._sync_stats()
        self._t["update"] += B
        self.counters["n_updates"] += B

    def _sync_stats(self):
        st = self._stats
        self.counters["n_pulses"] = int(st[K.ST_PULSES])
        self.counters["n_pulse_cycles"] = int(st[K.ST_CYCLES])
        self.counters["n_slots"] = int(st[K.ST_SLOTS])
        self.counters["n_pulses_up"] = int(st[K.ST_UP])
        self.counters["n_pulses_down"] = int(st[K.ST_DOWN])

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """Everything needed to continue bit-identically: config, weights, device parameters, counters,
        random stream positions. Arrays are copies."""
        dev = self.devices
        return {
            "kind": "AnalogTile",
            "shape": list(self.shape),
            "config": self.config.to_json(),
            "seed_entropy": str(self._seed_entropy),
            "weights": self._w.copy(),
            "apparent_weights": self._w_app.copy(),
            "device_params": dev.dp.copy(),
            "tile_params": dev.tp.copy(),
            "reset_bias": dev.reset_bias.copy(),
            **({"decay_scale": dev.decay_scale.copy()} if dev.decay_scale is not None else {}),
            **({"diffusion_rate": dev.diffusion_rate.copy()} if dev.diffusion_rate is not None else {}),
            "pulse_counts": self.pulse_counts.copy(),  # (out, in, 2)
            "stats": self._stats.copy(),
            "counters": dict(self.counters),
            "rng": self._rng_state(),
        }

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (shapes must match).

        Raises :class:`FormatError` (and changes nothing) for a partial or foreign dict."""
        import dataclasses

        owner = "AnalogTile.set_state"
        config = check_state(state, self.shape, _STATE_KEYS, owner, TileConfig)
        shape = self.shape
        arrays = {k: state_array(state, k, sh, dt, owner) for k, sh, dt in (
            ("device_params", shape + (K.N_DP,), np.float32), ("tile_params", (None,), np.float64),
            ("reset_bias", shape, np.float32), ("weights", shape, np.float32),
            ("apparent_weights", shape, np.float32), ("pulse_counts", shape + (2,), np.int64),
            ("stats", (K.N_ST,), np.int64))}
        # decay / diffusion of devices with a lifetime or diffusion (absent from the states of other tiles)
        optional = {k: state_array(state, k, shape, np.float32, owner) for k in ("decay_scale", "diffusion_rate")
                    if k in state}
        counters = state_counters(state, COUNTER_NAMES, owner)
        rng = self._checked_rng_state(state["rng"], owner)
        # everything checked: now change the tile
        self.config = config
        self.devices = dataclasses.replace(
            config.device.build((1, 1), np.random.default_rng(0)),
            dp=arrays["device_params"], tp=arrays["tile_params"], reset_bias=arrays["reset_bias"],
            decay_scale=optional.get("decay_scale"), diffusion_rate=optional.get("diffusion_rate"))
        self._w = arrays["weights"]
        self._w_app = self._w if self.devices.write_noise == 0.0 else arrays["apparent_weights"]
        self._cnt = np.ascontiguousarray(np.moveaxis(arrays["pulse_counts"], -1, 0))
        self._stats = arrays["stats"]
        self.counters = counters
        self._apply_rng_state(rng)

    def __repr__(self) -> str:
        return f"AnalogTile({self.out_size}, {self.in_size}, device={self.config.device!r})"


def sample_trains(tile: AnalogTile, X, D, lr, t0=None, granularity=None, update=None):
    """The pulse trains the stochastic update kernel would use for samples ``X``, ``D`` (for tests).

    Returns a list of ``(x_bits, d_bits)`` boolean arrays of shape (in_size, BL) and (out_size, BL).
    """
    from ..kernels.rng import sub_key_py as sub_key

    up = tile.config.update if update is None else update
    g = tile.granularity if granularity is None else granularity
    t0 = tile._t["update"] if t0 is None else t0
    X = V.as_batch(X, "x", tile.in_size)
    D = V.as_batch(D, "d", tile.out_size)
    out = []
    nw = (up.desired_bl + 63) // 64
    for s in range(X.shape[0]):
        skey = sub_key(np.uint64(tile._keys["update"]), np.uint64(t0 + s))
        lkey = sub_key(skey, 1)
        bl, A, B = K.bl_ab(float(np.abs(X[s]).max()), float(np.abs(D[s]).max()), lr, g, up.desired_bl,
                           up.update_bl_management, up.update_management or up.update_bl_management,
                           up.um_grad_scale)
        xb = np.zeros((tile.in_size, nw), np.uint64)
        db = np.zeros((tile.out_size, nw), np.uint64)
        xs = np.zeros(tile.in_size, np.int8)
        ds = np.zeros(tile.out_size, np.int8)
        if bl > 0:
            K.make_bits(X[s], B, bl, lkey, 0, xb, xs, np.empty(tile.in_size))
            K.make_bits(D[s], A, bl, lkey, tile.in_size, db, ds, np.empty(tile.out_size))
        out.append((_unpack(xb, bl), _unpack(db, bl)))
    return out


def _unpack(bits, bl):
    slots = np.arange(max(bl, 0))
    return ((bits[:, slots // 64] >> (slots % 64).astype(np.uint64)) & np.uint64(1)).astype(bool)


def set_num_threads(n: int) -> None:
    """Threads used by the parallel kernels of this process (numba)."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def _env_threads():  # pragma: no cover - convenience for workers
    v = os.environ.get("CROSSBAR_SIM_THREADS")
    if v:
        set_num_threads(int(v))


_env_threads()
