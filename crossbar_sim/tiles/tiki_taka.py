"""Tiki-Taka (v1) compound tile: a fast array A, a slow array C and a column-wise transfer from A to C.

Gokmen & Haensch, "Algorithm for training neural networks on resistive device arrays", Front. Neurosci.
14:103 (2020); aihwkit ``TransferCompound``. The network sees ``W = gamma A + C``. Every sample's gradient is
pulsed onto A with learning rate ``fast_lr``; every ``transfer_every`` mini-batches (or samples), the next
``n_reads_per_transfer`` columns of A are read through ``transfer_forward`` (noise and bound management off,
so the output noise and the ADC step act in weight units) and written onto C by a pulsed update with
``x = e_i``, ``d = -y`` and learning rate ``transfer_lr * lr`` (``scale_transfer_lr``).

Granularity: the pulsed update onto A uses the compound's granularity, the mean of A's and C's (aihwkit 1.1.0's
``VectorRPUDevice::populate`` overwrites the compound's granularity with the mean of its devices, and the updater
reads the compound's; checked against aihwkit 1.1.0 with A dw_min 0.001 and C dw_min 0.003: 5 pulses, not 10,
``tests/data/aihwkit_issue19``); the transfer onto C uses C's own granularity (SPEC section 4).

Row transfer (``transfer_columns=False``): the next ``n_reads_per_transfer`` rows ``r`` of A are read through the
transfer periphery as ``y = A^T e_r`` (a backward read) and written onto C with ``x = -y``, ``d = e_r``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, FormatError
from .onesided import make_array
from .params import IOParameters, UpdateParameters
from .periphery import read_columns
from ..rng import key_from_seedseq, make_seedseq
from .analog import TileBase, check_state, state_counters, state_int


def _default_unit_device():
    from crossbar_sim.device_models import SoftBoundsDevice

    return SoftBoundsDevice()


@dataclass(frozen=True, repr=False)
class TransferParams(Config):
    """Tiki-Taka v1 transfer hyper-parameters (aihwkit ``TransferCompound`` names and defaults).

    Parameters
    ----------
    gamma : float
        Weight of A in the network's weight ``W = gamma A + C`` (0: the paper's analysis, aihwkit default).
    transfer_every : float
        Transfer period, in mini-batches (``units_in_mbatch``) or samples; fractional values allowed
        (``ceil(transfer_every * batch)`` samples, or ``round(transfer_every)`` samples, at least 1).
        0 disables transfers. Negative (chopped TTv2 and AGAD only): automatic, ``|transfer_every|`` sweeps of
        the transfer vectors per ``n_states`` samples of A (aihwkit's automatic transfer period).
    units_in_mbatch : bool
        Count ``transfer_every`` in mini-batches (True) or samples.
    n_reads_per_transfer : int
        Consecutive columns of A read and written to C per transfer (the pointer starts at 0 and wraps).
    fast_lr : float
        Learning rate of the pulsed update onto A, absolute; <= 0 means "use the SGD learning rate".
    transfer_lr : float
        Learning rate of the write onto C; multiplied by the SGD learning rate when ``scale_transfer_lr``.
    transfer_forward : IOParameters
        Periphery of the column reads (noise and bound management are forced off).
    transfer_update : UpdateParameters
        Pulse scheme of the write onto C.
    transfer_columns : bool
        Transfer columns of A (True, aihwkit default) or rows (read through the backward pass).
    """

    #: whether a negative ``transfer_every`` (automatic period) is allowed: None = decided by the compound class
    #: the parameters are used with (a plain parameter set), False = rejected, True = automatic period
    _auto_period: ClassVar[bool | None] = None

    gamma: float = 0.0
    transfer_every: float = 1.0
    units_in_mbatch: bool = True
    n_reads_per_transfer: int = 1
    fast_lr: float = 1.0
    transfer_lr: float = 1.0
    scale_transfer_lr: bool = True
    transfer_forward: IOParameters = field(default_factory=IOParameters)
    transfer_update: UpdateParameters = field(default_factory=UpdateParameters)
    transfer_columns: bool = True

    def validate(self) -> None:
        owner = type(self).__name__
        V.check_float(self.gamma, "gamma", owner, 0.0)
        V.check_float(self.transfer_every, "transfer_every", owner)
        if self._auto_period is False and self.transfer_every < 0:
            raise ConfigError(f"The 'transfer_every' parameter of {owner} must be a float in [0, inf) (a negative, "
                              f"automatic period exists for ChoppedTransfer and DynamicTransfer only; aihwkit "
                              f"silently never transfers here). Got {self.transfer_every!r} instead.")
        V.check_bool(self.transfer_columns, "transfer_columns", owner)
        V.check_bool(self.units_in_mbatch, "units_in_mbatch", owner)
        V.check_int(self.n_reads_per_transfer, "n_reads_per_transfer", owner, 1, 2**31 - 1)
        V.check_float(self.fast_lr, "fast_lr", owner)
        V.check_float(self.transfer_lr, "transfer_lr", owner, 0.0)
        V.check_bool(self.scale_transfer_lr, "scale_transfer_lr", owner)
        if not isinstance(self.transfer_forward, IOParameters):
            raise ConfigError(f"The 'transfer_forward' parameter of {owner} must be an IOParameters.")
        if not isinstance(self.transfer_update, UpdateParameters):
            raise ConfigError(f"The 'transfer_update' parameter of {owner} must be an UpdateParameters.")

    def transfer_period(self, batch: int) -> int:
        """Samples between transfers for a mini-batch of ``batch`` samples (0: never).

        aihwkit computes ``ceil(transfer_every * batch)`` or ``round(transfer_every)`` and transfers never when
        that is 0; we transfer after every sample instead, so a fractional period never silently disables
        Tiki-Taka (the crash/no-op of aihwkit PR #132/#174).
        """
        if self.transfer_every <= 0.0:
            return 0
        if self.units_in_mbatch:
            return max(1, int(math.ceil(self.transfer_every * batch)))
        return max(1, int(math.floor(self.transfer_every + 0.5)))


@dataclass(frozen=True, repr=False)
class TransferCompound(TransferParams):
    """Tiki-Taka v1 compound device: :class:`TransferParams` plus the devices of A and C.

    A negative ``transfer_every`` is rejected (aihwkit silently never transfers); chopped TTv2 and AGAD read it as
    the automatic period.

    Parameters
    ----------
    device_a, device_c : PulsedDevice or OneSidedUnitCell
        Devices of the fast array A (gradient accumulation) and of the slow array C (the weights); a
        :class:`~crossbar_sim.tiles.onesided.OneSidedUnitCell` makes that array a one-sided pair with refresh (PCM).
    """

    _auto_period = False

    device_a: Config = field(default_factory=_default_unit_device)
    device_c: Config = field(default_factory=_default_unit_device)

    def validate(self) -> None:
        from .onesided import check_array_device

        super().validate()
        owner = type(self).__name__
        for name in ("device_a", "device_c"):  # a device model, or a one-sided pair (PCM) per array
            check_array_device(getattr(self, name), name, owner)

    @classmethod
    def from_params(cls, params: TransferParams, device_a, device_c=None) -> "TransferCompound":
        """A compound with the hyper-parameters of ``params`` and the given devices (C defaults to A's)."""
        kw = {f.name: getattr(params, f.name) for f in dataclasses.fields(TransferParams)}
        return cls(device_a=device_a, device_c=device_a if device_c is None else device_c, **kw)


@dataclass(frozen=True, repr=False)
class CompoundTileConfig(Config):
    """A Tiki-Taka tile: the compound device plus the tile's update and periphery (aihwkit
    ``UnitCellRPUConfig``)."""

    device: TransferCompound = field(default_factory=TransferCompound)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)

    def validate(self) -> None:
        if not isinstance(self.device, TransferCompound):
            raise ConfigError(f"The 'device' parameter of CompoundTileConfig must be a TransferCompound. Got {self.device!r}.")


class TikiTakaTile(TileBase):
    """Tiki-Taka v1 tile (A, C, transfer). Same interface as :class:`AnalogTile`.

    Parameters
    ----------
    out_size, in_size : int
    config : CompoundTileConfig
    seed : int, SeedSequence or None
    threads : int or None
    """

    def __init__(self, out_size: int, in_size: int, config: CompoundTileConfig | None = None, seed=None,
                 threads=None):
        if config is None:
            config = CompoundTileConfig()
        if not isinstance(config, CompoundTileConfig):
            raise ConfigError(f"The 'config' parameter of TikiTakaTile must be a CompoundTileConfig. Got {config!r}.")
        self.config = config
        tc = config.device
        ss = make_seedseq(seed)
        s_a, s_c, s_f, s_b, s_t = ss.spawn(5)
        # each array is an AnalogTile, or a OneSidedTile when its device is a one-sided unit cell (PCM pair)
        self.a = make_array(out_size, in_size, tc.device_a, config.update, config.forward, config.backward,
                            seed=s_a, threads=threads)
        self.c = make_array(out_size, in_size, tc.device_c, tc.transfer_update, config.forward, config.backward,
                            seed=s_c, threads=threads)
        self.out_size, self.in_size = self.a.out_size, self.a.in_size
        self._keys = {"forward": key_from_seedseq(s_f), "backward": key_from_seedseq(s_b),
                      "transfer": key_from_seedseq(s_t)}
        self._t = {"forward": 0, "backward": 0, "transfer": 0}
        self.transfer_io = dataclasses.replace(tc.transfer_forward, noise_management="none",
                                               bound_management="none")
        self.samples_seen = 0
        self.pointer = 0
        self.counters = {"n_transfers": 0, "n_transfer_reads": 0, "mvm": 0, "dac": 0, "adc": 0,
                         "n_forward": 0, "n_backward": 0}

    @property
    def fast_granularity(self) -> float:
        """Granularity of the pulsed update onto A: the mean of A's and C's (aihwkit 1.1.0, CPU)."""
        return 0.5 * (float(self.a.granularity) + float(self.c.granularity))

    @property
    def n_slices(self) -> int:
        """Transfer vectors of one sweep: columns of A (``transfer_columns``) or rows."""
        return self.in_size if self.config.device.transfer_columns else self.out_size

    def _read_slices(self, idx) -> np.ndarray:
        """Read the transfer vectors ``idx`` of A through the transfer periphery: columns ``A e_i`` (n, out_size)
        or, for row transfer, rows ``A^T e_r`` (n, in_size)."""
        idx = np.asarray(idx, np.int64)
        W = self.a._w_app if self.config.device.transfer_columns else np.ascontiguousarray(self.a._w_app.T)
        Y = read_columns(W, idx, self.transfer_io, self._keys["transfer"], self._t["transfer"],
                         counters=self.counters, allow_bm=False)
        self._t["transfer"] += 1
        return Y

    def _write_slices(self, idx, values, lr) -> None:
        """Pulsed write ``C += lr * values`` onto the transfer vectors ``idx`` (columns: ``x = e_i``, ``d = -v``;
        rows: ``x = -v``, ``d = e_r``), with the transfer update parameters and C's granularity."""
        idx = np.asarray(idx, np.int64)
        E = np.zeros((idx.size, self.n_slices), np.float32)
        E[np.arange(idx.size), idx] = 1.0
        V_ = np.ascontiguousarray(-np.asarray(values, np.float32))
        if self.config.device.transfer_columns:
            self.c._update(E, V_, float(lr))
        else:
            self.c._update(V_, E, float(lr))

    # ------------------------------------------------------------------ weights
    @property
    def shape(self):
        return (self.out_size, self.in_size)

    @property
    def tiles(self) -> dict:
        """The arrays of this compound, by name (for dumps and statistics)."""
        return {"A": self.a, "C": self.c}

    def read_weights(self) -> np.ndarray:
        """Effective weights ``gamma A + C`` (apparent)."""
        g = self.config.device.gamma
        if g == 0.0:
            return self.c.read_weights()
        return (np.float32(g) * self.a._w_app + self.c._w_app).astype(np.float32)

    def _weights_view(self):
        g = self.config.device.gamma
        return self.c._w_app if g == 0.0 else (np.float32(g) * self.a._w_app + self.c._w_app).astype(np.float32)

    def set_weights(self, w) -> None:
        """Set C to ``w`` and A to 0 (aihwkit puts the weights in the slow array); resets the transfer pointer."""
        w = V.as_matrix(w, "w", self.shape)
        self.a.set_weights(np.zeros(self.shape, np.float32))
        self.c.set_weights(w)
        self.pointer = 0
        self.samples_seen = 0

    # ------------------------------------------------------------------ MVMs (forward / backward: TileBase)
    def _mvm_weights(self) -> np.ndarray:
        return self._weights_view()

    # ------------------------------------------------------------------ update
    def update(self, x, d, lr: float) -> None:
        """Pulse the gradient onto A (``fast_lr``), transferring columns to C on schedule."""
        X, D, lr = self._update_args(x, d, lr)
        self._update(X, D, lr)

    def _update(self, X, D, lr: float) -> None:
        """:meth:`update` of validated arrays (the internal fast path)."""
        tc = self.config.device
        fast_lr = tc.fast_lr if tc.fast_lr > 0 else lr
        every = tc.transfer_period(X.shape[0])
        s0 = 0
        B = X.shape[0]
        while s0 < B:
            if every > 0:
                to_next = every - (self.samples_seen % every)
                s1 = min(B, s0 + to_next)
            else:
                s1 = B
            self.a._update(X[s0:s1], D[s0:s1], fast_lr, self.fast_granularity)
            self.samples_seen += s1 - s0
            if every > 0 and self.samples_seen % every == 0:
                self.transfer(lr)
            s0 = s1

    def transfer(self, lr: float) -> None:
        """Read the next ``n_reads_per_transfer`` columns (rows) of A and write them onto C."""
        tc = self.config.device
        n_sl = self.n_slices
        n = min(tc.n_reads_per_transfer, n_sl)
        idx = (self.pointer + np.arange(n)) % n_sl
        # bit for bit analog_mvm(A, E) (transfer_io has bound management off), without the one-hot GEMM
        Y = self._read_slices(idx)
        lr_t = tc.transfer_lr * lr if tc.scale_transfer_lr else tc.transfer_lr
        self._write_slices(idx, Y, lr_t)  # C += lr_t * read (x = e_i, d = -y)
        self.pointer = int((self.pointer + n) % n_sl)
        self.counters["n_transfers"] += 1
        self.counters["n_transfer_reads"] += n

    # ------------------------------------------------------------------ state
    def total_counters(self) -> dict:
        """Counters of the compound and of its arrays, summed where they share a name."""
        out = dict(self.counters)
        for t in (self.a, self.c):
            for k, v in t.counters.items():
                out[k] = out.get(k, 0) + v
        return out

    def get_state(self) -> dict:
        return {
            "kind": "TikiTakaTile",
            "shape": list(self.shape),
            "config": self.config.to_json(),
            "A": self.a.get_state(),
            "C": self.c.get_state(),
            "samples_seen": int(self.samples_seen),
            "pointer": int(self.pointer),
            "counters": dict(self.counters),
            "rng": self._rng_state(),
        }

    #: what :meth:`set_state` reads from a state (subclasses add theirs)
    STATE_KEYS = ("A", "C", "samples_seen", "pointer", "counters", "rng")

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (shapes must match).

        Raises :class:`FormatError` (and changes nothing) for a partial or foreign dict."""
        check_state(state, self.shape, self.STATE_KEYS, f"{type(self).__name__}.set_state", CompoundTileConfig)
        self._restore_or_roll_back(state, self._restore)

    def _restore(self, state: dict) -> None:
        owner = f"{type(self).__name__}.set_state"
        config = check_state(state, self.shape, (), owner, CompoundTileConfig)
        if type(config.device) is not type(self.config.device):
            raise FormatError(f"The tile state given to {owner} is for a {type(config.device).__name__} "
                              f"compound; this tile is a {type(self.config.device).__name__}.")
        samples_seen = state_int(state, "samples_seen", owner)
        pointer = state_int(state, "pointer", owner)
        n_sl, what = (self.in_size, "column") if config.device.transfer_columns else (self.out_size, "row")
        if pointer >= n_sl:
            raise FormatError(f"'pointer' of the tile state given to {owner} must be a {what} < {n_sl}. "
                              f"Got {pointer}.")
        counters = state_counters(state, self.counters, owner)
        rng = self._checked_rng_state(state["rng"], owner)
        self.a.set_state(state["A"])
        self.c.set_state(state["C"])
        self.config = config
        self.samples_seen = samples_seen
        self.pointer = pointer
        self.counters = counters
        self._apply_rng_state(rng)
        tc = self.config.device
        self.transfer_io = dataclasses.replace(tc.transfer_forward, noise_management="none",
                                               bound_management="none")

    def __repr__(self) -> str:
        return f"TikiTakaTile({self.out_size}, {self.in_size}, {self.config.device!r})"
