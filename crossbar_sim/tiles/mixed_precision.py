"""Mixed precision: the rank-1 updates accumulate in a digital matrix chi; whole steps are written to the analog array.

Nandakumar et al., "Mixed-precision deep learning based on computational memory", Front. Neurosci. 14:406 (2020);
aihwkit ``MixedPrecisionCompound`` in a ``DigitalRankUpdateRPUConfig`` (``rpu_mixedprec_device.cpp``,
``rpu_mixedprec_device_base.cpp``; read, not copied). Forward and backward passes read the analog array through
the tile's periphery; the update never pulses the gradient directly. Per sample ``(x, d)`` with SGD rate ``lr``:

1. ``chi += lr * d x^T`` (float32), or with quantisation (``n_x_bins`` / ``n_d_bins`` > 0) of the quantised
   vectors ``Q(v) = clip(rint(v / w + xi), +-h) * w`` with ``h = floor(bins / 2)``, ``w = max|v| / h`` (1 if that is
   0) and ``xi = U - 1/2`` with stochastic rounding, else 0. aihwkit 1.1.0's CPU code for *one* of the two bins set
   indexes the quantised d at the x index (a bug that fills one garbage row); here the one-sided case quantises
   only the vector that has bins, which is what aihwkit intends.
2. Transfer test, with ``k`` the vectors seen before this one: if ``k > 0`` and ``k % (transfer_every * batch) == 0``
   (``batch`` the samples of the current update call), ``n_rows_per_transfer`` rows (all with -1; 0: never), from a
   pointer that wraps (or from a random row with ``random_row``), are transferred: per row ``i``,
   ``n_ij = trunc(chi_ij / eps)``, ``chi_ij -= n_ij eps``, then one pulsed update of the analog array with
   ``x = n_i`` (the integer row), ``d = e_i``, learning rate ``eps * transfer_lr``, the tile's update parameters
   with update and update-BL management forced on (so the row's largest ``|n|`` gets ``min(transfer_lr |n|, BL)``
   pulses and the others proportionally; expected change ``-transfer_lr eps n_ij``). chi is reduced by ``n eps``
   whatever the pulses did (saturated pulses are lost), as aihwkit. So the first transfer comes after the first
   sample of the second mini-batch, as aihwkit's.
3. ``k += 1``.

``eps`` is ``granularity``, or the analog device's granularity when that is 0 (a unit cell: the mean of its devices).
``set_weights`` writes the analog array and zeroes chi, the vector counter and the row pointer (aihwkit
``onSetWeights``). Decay and diffusion act on the analog array (``post_update_step``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import validation as V
from ..config import Config
from ..errors import ConfigError, ShapeError
from ..rng import make_seedseq
from .analog import TileBase, check_state
from .params import IOParameters, UpdateParameters


def _default_device():
    from crossbar_sim.device_models import ConstantStepDevice

    return ConstantStepDevice()


@dataclass(frozen=True, repr=False)
class MixedPrecisionCompound(Config):
    """Digital rank update with analog transfer (aihwkit ``MixedPrecisionCompound``; names and defaults are
    aihwkit's; see the module docstring).

    Parameters
    ----------
    device : PulsedDevice, OneSidedUnitCell or VectorUnitCell
        Device of the analog array.
    transfer_every : int
        Transfer every ``transfer_every`` mini-batches of update vectors (0: never).
    n_rows_per_transfer : int
        Rows written per transfer (-1: all rows; 0: none).
    random_row : bool
        Start each transfer at a random row (only when fewer rows than ``out_size`` are written).
    granularity : float
        ``eps`` of the transfer (0: the analog device's granularity).
    transfer_lr : float
        Scale of the write.
    n_x_bins, n_d_bins : int
        Quantisation bins of x and d (0: no quantisation).
    stoc_round_x, stoc_round_d : bool
        Stochastic rounding in the quantisation.
    """

    device: Config = field(default_factory=_default_device)
    transfer_every: int = 1
    n_rows_per_transfer: int = -1
    random_row: bool = False
    granularity: float = 0.0
    transfer_lr: float = 1.0
    n_x_bins: int = 0
    n_d_bins: int = 0
    stoc_round_x: bool = True
    stoc_round_d: bool = True

    def validate(self) -> None:
        from .onesided import check_array_device

        owner = type(self).__name__
        check_array_device(self.device, "device", owner)
        V.check_int(self.transfer_every, "transfer_every", owner, 0, 2**31 - 1)
        V.check_int(self.n_rows_per_transfer, "n_rows_per_transfer", owner, -1, 2**31 - 1)
        V.check_bool(self.random_row, "random_row", owner)
        V.check_float(self.granularity, "granularity", owner, 0.0)
        V.check_float(self.transfer_lr, "transfer_lr", owner, 0.0)
        V.check_int(self.n_x_bins, "n_x_bins", owner, 0, 2**31 - 1)
        V.check_int(self.n_d_bins, "n_d_bins", owner, 0, 2**31 - 1)
        V.check_bool(self.stoc_round_x, "stoc_round_x", owner)
        V.check_bool(self.stoc_round_d, "stoc_round_d", owner)
        for name in ("n_x_bins", "n_d_bins"):
            if getattr(self, name) == 1:
                raise ConfigError(f"The '{name}' parameter of {owner} must be 0 (no quantisation) or >= 2 (1 bin has "
                                  f"no level besides 0: aihwkit divides by floor(1/2) = 0). Got 1.")

    def eps(self) -> float:
        """The transfer granularity ``eps``."""
        return float(self.granularity) if self.granularity > 0 else float(self.device.granularity())


@dataclass(frozen=True, repr=False)
class MixedPrecisionTileConfig(Config):
    """A mixed-precision tile: the compound plus the tile's update and periphery (aihwkit
    ``DigitalRankUpdateRPUConfig``). ``update`` is used by the transfer writes (with update and update-BL
    management forced on)."""

    device: MixedPrecisionCompound = field(default_factory=MixedPrecisionCompound)
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)

    def validate(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.device, MixedPrecisionCompound):
            raise ConfigError(f"The 'device' parameter of {owner} must be a MixedPrecisionCompound. Got "
                              f"{self.device!r}.")
        for name, typ in (("update", UpdateParameters), ("forward", IOParameters), ("backward", IOParameters)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a {typ.__name__}. Got "
                                  f"{getattr(self, name)!r}.")


class MixedPrecisionTile(TileBase):
    """Mixed-precision tile (see the module docstring): the analog array ``W`` and the digital matrix ``chi``.

    Same interface as :class:`~crossbar_sim.tiles.analog.AnalogTile`. ``arrays()`` returns ``W`` and ``chi``.
    """

    def __init__(self, out_size: int, in_size: int, config: MixedPrecisionTileConfig | None = None, seed=None,
                 threads=None):
        from .onesided import make_array

        if config is None:
            config = MixedPrecisionTileConfig()
        if not isinstance(config, MixedPrecisionTileConfig):
            raise ConfigError(f"The 'config' parameter of MixedPrecisionTile must be a MixedPrecisionTileConfig. Got "
                              f"{config!r}.")
        self.config = config
        ss = make_seedseq(seed)
        s_w, s_q = ss.spawn(2)
        up = config.update.replace(update_management=True, update_bl_management=True)
        self.array = make_array(out_size, in_size, config.device.device, up, config.forward, config.backward, seed=s_w,
                            threads=threads)
        self.out_size, self.in_size = self.array.out_size, self.array.in_size
        self.rng = np.random.default_rng(s_q)  # stochastic rounding and random rows
        self.chi = np.zeros((self.out_size, self.in_size), np.float32)
        self.vectors_seen = 0
        self.row = 0
        self._eps = np.float32(config.device.eps())
        if not self._eps > 0:
            raise ConfigError("The granularity of MixedPrecisionCompound's device must be > 0 (aihwkit: 'Granularity "
                              "cannot be zero!'); set 'granularity'.")
        self.counters_mp = {"n_transfers": 0, "n_transfer_rows": 0}

    # ------------------------------------------------------------------ the array's interface
    @property
    def shape(self):
        return (self.out_size, self.in_size)

    @property
    def tiles(self) -> dict:
        return {"W": self.array}

    @property
    def counters(self) -> dict:
        out = dict(self.array.counters)
        out.update(self.counters_mp)
        return out

    @property
    def granularity(self) -> float:
        return float(self._eps)

    @property
    def _keys(self):  # forward / backward streams are the analog array's
        return self.array._keys

    @property
    def _t(self):
        return self.array._t

    @property
    def _w_app(self):
        return self.array._w_app

    def _mvm_weights(self):
        return self.array._mvm_weights()

    def _mvm_counters(self):
        return self.array._mvm_counters()

    def read_weights(self) -> np.ndarray:
        return self.array.read_weights()

    def hidden_weights(self) -> np.ndarray:
        return self.array.hidden_weights()

    def arrays(self) -> dict:
        return {"W": self.array.read_weights(), "chi": self.chi.copy()}

    def set_weights(self, w) -> None:
        """Write the analog array; chi, the vector counter and the row pointer restart (aihwkit)."""
        w = np.asarray(w)
        if w.shape != self.shape:
            raise ShapeError(f"'w' must have shape {self.shape}. Got shape {w.shape} instead.")
        self.array.set_weights(w)
        self.chi[...] = 0.0
        self.vectors_seen = 0
        self.row = 0

    # ------------------------------------------------------------------ update
    def update(self, x, d, lr: float) -> None:
        """Accumulate ``lr d x^T`` in chi, sample by sample, transferring whole steps on schedule."""
        X, D, lr = self._update_args(x, d, lr)
        self._update(X, D, lr)

    def _quantise(self, v, bins: int, stochastic: bool) -> np.ndarray:
        f = np.float32
        half = f(bins // 2)
        amax = f(np.abs(v).max()) if v.size else f(0.0)
        width = f(amax / half)
        width = f(1.0) if width == 0 else width
        xi = (self.rng.random(v.shape).astype(f) - f(0.5)) if stochastic else f(0.0)
        q = np.rint((v / width + xi).astype(f))
        return (np.clip(q, -half, half) * width).astype(f)

    def _update(self, X, D, lr: float) -> None:
        mp = self.config.device
        B = X.shape[0]
        every = mp.transfer_every * B
        lr32 = np.float32(lr)
        for s in range(B):
            x, d = X[s], D[s]
            if mp.n_x_bins > 0:
                x = self._quantise(x, mp.n_x_bins, mp.stoc_round_x)
            if mp.n_d_bins > 0:
                d = self._quantise(d, mp.n_d_bins, mp.stoc_round_d)
            self.chi += (lr32 * d)[:, None] * x[None, :]
            if every > 0 and self.vectors_seen > 0 and self.vectors_seen % every == 0:
                self.transfer()
            self.vectors_seen += 1

    def transfer(self) -> None:
        """Write the whole steps of the next rows of chi onto the analog array (see the module docstring)."""
        mp = self.config.device
        n = self.out_size if mp.n_rows_per_transfer < 0 else min(mp.n_rows_per_transfer, self.out_size)
        if n == 0 or mp.transfer_lr == 0:
            return
        start = self.row
        if mp.random_row and n < self.out_size:
            start = min(int(np.floor(self.rng.random() * self.out_size)), self.out_size - 1)
        rows = (start + np.arange(n)) % self.out_size
        eps = self._eps
        steps = np.trunc(self.chi[rows] / eps).astype(np.float32)
        self.chi[rows] = self.chi[rows] - steps * eps
        E = np.zeros((n, self.out_size), np.float32)
        E[np.arange(n), rows] = 1.0
        # W <- W - (eps transfer_lr) e_i n_i^T, with the tile's pulses (update management forced on)
        self.array._update(np.ascontiguousarray(steps), E, float(np.float32(eps * np.float32(mp.transfer_lr))))
        self.row = int((start + n) % self.out_size)
        self.counters_mp["n_transfers"] += 1
        self.counters_mp["n_transfer_rows"] += n

    # ------------------------------------------------------------------ state
    def post_update_step(self) -> None:
        self.array.post_update_step()

    def total_counters(self) -> dict:
        return self.counters

    def get_state(self) -> dict:
        return {
            "kind": "MixedPrecisionTile",
            "shape": list(self.shape),
            "config": self.config.to_json(),
            "W": self.array.get_state(),
            "chi": self.chi.copy(),
            "vectors_seen": int(self.vectors_seen),
            "row": int(self.row),
            "rng_q": self.rng.bit_generator.state,
            "counters_mp": dict(self.counters_mp),
        }

    def set_state(self, state: dict) -> None:
        self.config = check_state(state, self.shape)
        self.array.set_state(state["W"])
        self.chi = np.asarray(state["chi"], np.float32).copy()
        self.vectors_seen = int(state["vectors_seen"])
        self.row = int(state["row"])
        self.rng.bit_generator.state = state["rng_q"]
        self.counters_mp = {k: int(v) for k, v in state["counters_mp"].items()}

    def __repr__(self) -> str:
        return f"MixedPrecisionTile({self.out_size}, {self.in_size}, {self.config.device!r})"
