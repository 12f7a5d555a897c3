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
from ..errors import ConfigError, ShapeError
from ..kernels import update as K
from ..kernels.rng import ziggurat_tables
from .params import TileConfig
from .periphery import analog_mvm
from ..rng import key_from_seedseq, make_seedseq

_PTYPE = {
    "stochastic_compressed": K.PULSE_STOCHASTIC,
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


def check_state(state: dict, shape) -> Config:
    """The config of a tile state from ``get_state``, after checking it is for a tile of ``shape``."""
    if list(state["shape"]) != list(shape):
        raise ShapeError(f"State is for a tile of shape {tuple(state['shape'])}, this tile is {tuple(shape)}.")
    cfg = state["config"]
    return Config.from_json(cfg) if isinstance(cfg, str) else cfg


def _num_threads() -> int:
    import numba

    return int(numba.get_num_threads())


COUNTER_NAMES = ("n_updates", "n_pulse_cycles", "n_slots", "n_pulses", "n_pulses_up", "n_pulses_down",
                 "n_forward", "n_backward", "mvm", "dac", "adc")


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

    def _set_rng_state(self, rng: dict) -> None:
        for k, (key, t) in rng.items():
            self._keys[k] = np.uint64(int(key))
            self._t[k] = int(t)

    @classmethod
    def from_state(cls, state: dict, threads=None):
        """A tile of this kind rebuilt from :meth:`get_state` (continues bit-identically)."""
        cfg = state["config"]
        cfg = Config.from_json(cfg) if isinstance(cfg, str) else cfg
        out_size, in_size = state["shape"]
        tile = cls(int(out_size), int(in_size), cfg, seed=0, threads=threads)
        tile.set_state(state)
        return tile

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
        y = self._forward(X, io)
        return y[0] if X is not x and (x.ndim if type(x) is np.ndarray else np.ndim(x)) == 1 else y

    def _forward(self, X, io=None) -> np.ndarray:
        """:meth:`forward` of a batch ``X`` (C-contiguous float32 of the right shape; analog_mvm checks
        inf/NaN); returns (batch, out_size). The internal path of the network layers."""
        return self._mvm(X, self.config.forward if io is None else io, "forward", False)

    def backward(self, d, io=None) -> np.ndarray:
        """``z = W^T d`` through the backward periphery (no bound management). ``d``: (out_size,) or
        (batch, out_size)."""
        D = V.as_batch(d, "d", self.out_size, finite=False)  # analog_mvm checks inf/NaN
        z = self._backward(D, io)
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

    def _update_args(self, x, d, lr):
        """``(X, D, lr)`` of a public ``update`` call, checked: batches of the right sizes and equal length,
        finite, ``lr >= 0`` (errors name the parameter)."""
        X = V.as_batch(x, "x", self.in_size)
        D = V.as_batch(d, "d", self.out_size)
        if X.shape[0] != D.shape[0]:
            raise ShapeError(f"'x' and 'd' must have the same batch size. Got {X.shape[0]} and {D.shape[0]}.")
        return X, D, V.check_float(lr, "lr", f"{type(self).__name__}.update", 0.0, None)


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
        w = np.asarray(w)
        if w.shape != self.shape:
            raise ShapeError(f"'w' must have shape {self.shape}. Got shape {w.shape} instead.")
        V.check_finite_array(w, "w")
        np.clip(w.astype(np.float32), self.w_min_bound, self.w_max_bound, out=self._w)
        self._redraw_write_noise()

    def _redraw_write_noise(self):
        if self._w_app is self._w:
            return
        rng = np.random.default_rng([int(self._keys["misc"]), self._t["misc"]])
        self._t["misc"] += 1
        self._w_app[...] = self._w + self.devices.write_noise * rng.standard_normal(self._w.shape)

    def reset_columns(self, cols, reset_prob: float = 1.0) -> None:
        """Reset the devices of the given columns to ``reset_bias + reset_std * xi`` (clipped)."""
        cols = np.atleast_1d(np.asarray(cols, dtype=np.int64)) % self.in_size
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
        mask = np.asarray(mask, bool)
        if mask.shape != self.shape:
            raise ShapeError(f"'mask' must have shape {self.shape}. Got shape {mask.shape} instead.")
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
            "pulse_counts": self.pulse_counts.copy(),  # (out, in, 2)
            "stats": self._stats.copy(),
            "counters": dict(self.counters),
            "rng": self._rng_state(),
        }

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (shapes must match)."""
        self.config = check_state(state, self.shape)
        import dataclasses

        self.devices = dataclasses.replace(
            self.config.device.build((1, 1), np.random.default_rng(0)),
            dp=np.ascontiguousarray(state["device_params"], np.float32),
            tp=np.ascontiguousarray(state["tile_params"], np.float64),
            reset_bias=np.ascontiguousarray(state["reset_bias"], np.float32),
        )
        self._w = np.ascontiguousarray(state["weights"], np.float32).copy()
        if self.devices.write_noise == 0.0:
            self._w_app = self._w
        else:
            self._w_app = np.ascontiguousarray(state["apparent_weights"], np.float32).copy()
        self._cnt = np.moveaxis(np.asarray(state["pulse_counts"], np.int64), -1, 0).copy()
        self._stats = np.ascontiguousarray(state["stats"], np.int64).copy()
        self.counters = {k: int(state["counters"].get(k, 0)) for k in COUNTER_NAMES}
        self._set_rng_state(state["rng"])

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
