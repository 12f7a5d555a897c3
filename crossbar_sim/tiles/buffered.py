"""Tiki-Taka v2, chopped TTv2 and AGAD: a digital buffer H between the fast array A and the slow array C.

Gokmen, "Enabling training of neural networks on noisy hardware", Front. Artif. Intell. 4:699148 (2021)
(TTv2); Rasch, Carta, Fagbohungbe, Gokmen, "Fast offset corrected in-memory training", arXiv 2303.04721
(2023/2024) (chopped TTv2 and AGAD). Semantics follow aihwkit 1.1.0's ``BufferedTransferCompound``,
``ChoppedTransferCompound`` and ``DynamicTransferCompound`` (``rpu_buffered_transfer_device.cpp``,
``rpu_chopped_transfer_device.cpp``, ``rpu_dynamic_transfer_device.cpp``; read, not copied):

* The gradient of every sample is pulsed onto A with ``fast_lr`` (as Tiki-Taka v1). With choppers, the sign
  of the coincidences of device ``(i, j)`` is flipped when ``in_chop[j] != out_chop[i]``: that is exactly a
  pulsed update of ``(t * d) (s * x)^T`` with ``s_j, t_i = +-1``, which is how it is applied here (magnitudes,
  pulse-train lengths and probabilities are unchanged).
* Every transfer period the next column ``i`` of A is read through ``transfer_forward`` (noise and bound
  management forced off, as Tiki-Taka v1) and accumulated into the digital buffer column ``H[:, i]``:

  - **TTv2** (``BufferedTransfer``): ``H += lr_t * y``; ``n = clip(trunc(H / (thres_scale g_C)), +-BL_t)``;
  - **c-TTv2** (``ChoppedTransfer``): ``H += sign * y * lr_t / (buffer_granularity g_A)`` with ``sign = -1``
    when ``in_chop[i] != out_chop[row]``; ``n = clip(trunc(H), +-BL_t)`` where ``|H| >= 1``;
  - **AGAD** (``DynamicTransfer``): no reference array: each read is compared with ``mu_past``, the leaky
    running mean of the reads of the previous chopper period (``sample_momentum = min(tail_weightening /
    n_samples, 1)``), ``H += sign * (y - mu_past) * lr_t / (buffer_granularity g_A)``; writes begin after
    ``n_samples`` full sweeps; the choppers switch regularly every ``n_samples = max(ceil(1/in_chop_prob), 2)``
    sweeps (or at random).

  Where ``n != 0`` the buffer forgets (``H *= momentum``, ``forget_buffer``) or subtracts what was written
  (``H -= (1 - momentum) n`` in buffer units), and C receives ``n`` whole pulses through a pulsed update with
  ``x = e_i``, ``d = -n`` and learning rate ``step * g_C`` using ``transfer_update`` (aihwkit's default: BL 1
  without update management, so exactly one pulse per non-zero ``n``).
* ``lr_t = transfer_lr * lr`` (``scale_transfer_lr``), ``lr`` the current SGD learning rate. The input choppers
  switch after the column's read (with probability ``in_chop_prob``, or regularly); the output choppers after a
  full sweep of the columns, each with probability ``out_chop_prob``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .. import validation as V
from .tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound
from ..errors import ConfigError, FormatError
from .params import UpdateParameters
from .periphery import read_columns
from ..rng import make_seedseq
from .analog import check_state, state_array, state_int, zig_tables


def _bl1_update():
    return UpdateParameters(desired_bl=1, update_bl_management=False, update_management=False)


@dataclass(frozen=True, repr=False)
class BufferedTransfer(TransferCompound):
    """Tiki-Taka v2 (aihwkit ``BufferedTransferCompound``): digital buffer, threshold transfer of whole pulses.

    Parameters (besides :class:`~crossbar_sim.tiles.tiki_taka.TransferCompound`)
    ----------
    thres_scale : float
        Buffer threshold in units of C's weight granularity.
    step : float
        Pulse count scale of the write onto C (the write learning rate is ``step * g_C``).
    momentum : float
        Fraction of the buffer kept after a transfer, in [0, 1].
    forget_buffer : bool
        Reset the buffer to ``momentum * H`` after a transfer (True) or subtract what was written.
    """

    thres_scale: float = 1.0
    step: float = 1.0
    momentum: float = 0.1
    forget_buffer: bool = True
    transfer_update: UpdateParameters = field(default_factory=_bl1_update)

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.thres_scale, "thres_scale", owner, 0.0, 1e12, closed_lo=False)
        V.check_float(self.step, "step", owner, 0.0, 1e12, closed_lo=False)
        V.check_float(self.momentum, "momentum", owner, 0.0, 1.0)
        V.check_bool(self.forget_buffer, "forget_buffer", owner)


@dataclass(frozen=True, repr=False)
class ChoppedTransfer(BufferedTransfer):
    """Chopped TTv2 (aihwkit ``ChoppedTransferCompound``).

    Parameters (besides :class:`BufferedTransfer`; ``thres_scale`` is not used)
    ----------
    in_chop_prob : float
        Probability (``in_chop_random``) or frequency of switching a column's input chopper after its read.
    in_chop_random : bool
        Random (True) or regular switching.
    out_chop_prob : float
        Probability of switching each output chopper after a full sweep of the columns.
    buffer_granularity : float
        Buffer unit in multiples of A's weight granularity.
    """

    momentum: float = 0.0
    in_chop_prob: float = 0.1
    in_chop_random: bool = True
    out_chop_prob: float = 0.0
    buffer_granularity: float = 1.0
    units_in_mbatch: bool = False

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.in_chop_prob, "in_chop_prob", owner, 0.0, 1.0)
        V.check_bool(self.in_chop_random, "in_chop_random", owner)
        V.check_float(self.out_chop_prob, "out_chop_prob", owner, 0.0, 1.0)
        V.check_float(self.buffer_granularity, "buffer_granularity", owner, 0.0, 1e12, closed_lo=False)
        if self.n_reads_per_transfer != 1:
            raise ConfigError(f"The 'n_reads_per_transfer' parameter of {owner} must be 1 (one column per "
                              f"transfer, as aihwkit). Got {self.n_reads_per_transfer} instead.")

    def n_chop_samples(self) -> int:
        """Sweeps per regular chopper period: ``max(ceil(1 / in_chop_prob), 2)``."""
        if self.in_chop_prob <= 0.0:
            return 2
        return max(int(math.ceil(np.float32(1.0) / np.float32(self.in_chop_prob))), 2)


@dataclass(frozen=True, repr=False)
class DynamicTransfer(ChoppedTransfer):
    """AGAD (aihwkit ``DynamicTransferCompound``): chopped transfer against a leaky average of past reads.

    Parameters (besides :class:`ChoppedTransfer`)
    ----------
    tail_weightening : float
        Running-mean momentum of the reads is ``min(tail_weightening / n_samples, 1)``.
    buffer_cap : float
        With ``forget_buffer=False``, clip the buffer to ``+-buffer_cap * BL_t`` (0: no cap).
    """

    in_chop_random: bool = False
    tail_weightening: float = 5.0
    buffer_cap: float = 0.0

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.tail_weightening, "tail_weightening", owner, 0.0, 1e12, closed_lo=False)
        V.check_float(self.buffer_cap, "buffer_cap", owner, 0.0, 1e12)
        if self.in_chop_prob <= 0.0:
            raise ConfigError(f"The 'in_chop_prob' parameter of {owner} must be a float in (0, 1]. "
                              f"Got {self.in_chop_prob!r} instead.")


class BufferedTransferTile(TikiTakaTile):
    """A Tiki-Taka v2 / chopped TTv2 / AGAD tile: A, C, the digital buffer H and the choppers.

    Same interface as :class:`~crossbar_sim.tiles.tiki_taka.TikiTakaTile` (``config.device`` is a
    :class:`BufferedTransfer`, :class:`ChoppedTransfer` or :class:`DynamicTransfer`). ``arrays()`` returns A,
    C, H (and AGAD's running and past means) for dumps.
    """

    def __init__(self, out_size, in_size, config: CompoundTileConfig | None = None, seed=None, threads=None):
        if config is None:
            config = CompoundTileConfig(device=BufferedTransfer())
        if not isinstance(config, CompoundTileConfig) or not isinstance(config.device, BufferedTransfer):
            raise ConfigError("The 'config' parameter of BufferedTransferTile must be a CompoundTileConfig whose "
                              f"device is a BufferedTransfer, ChoppedTransfer or DynamicTransfer. Got {config!r}.")
        ss = make_seedseq(seed)
        s_base, s_chop = ss.spawn(2)
        super().__init__(out_size, in_size, config, seed=s_base, threads=threads)
        self.chop_rng = np.random.default_rng(s_chop)
        self.H = np.zeros((self.out_size, self.in_size), np.float32)
        self.in_chop = np.ones(self.in_size, bool)    # aihwkit starts with in choppers set, out choppers not
        self.out_chop = np.zeros(self.out_size, bool)
        self.transfer_counter = 0
        self.dynamic = isinstance(config.device, DynamicTransfer)
        self.chopped = isinstance(config.device, ChoppedTransfer)
        if self.dynamic:
            self.running_mean = np.zeros((self.out_size, self.in_size), np.float32)
            self.past_mean = np.zeros((self.out_size, self.in_size), np.float32)
            self.in_switched = np.zeros(self.in_size, bool)
        self.counters.update({"n_transfer_writes": 0})

    # ------------------------------------------------------------------ arrays
    @property
    def tiles(self) -> dict:
        return {"A": self.a, "C": self.c}

    def arrays(self) -> dict:
        """Every array of this tile (analog A, C; digital buffers), as float32 copies."""
        out = {"A": self.a.read_weights(), "C": self.c.read_weights(), "H": self.H.copy()}
        if self.dynamic:
            out["running_mean"] = self.running_mean.copy()
            out["past_mean"] = self.past_mean.copy()
        return out

    def set_weights(self, w) -> None:
        super().set_weights(w)
        self.H[...] = 0.0
        self.transfer_counter = 0

    # ------------------------------------------------------------------ update
    def _signs(self):
        s = np.where(self.in_chop, -1.0, 1.0).astype(np.float32)
        t = np.where(self.out_chop, -1.0, 1.0).astype(np.float32)
        return s, t

    def update(self, x, d, lr: float) -> None:
        """Pulse the (chopped) gradient onto A with ``fast_lr``; transfer through H on schedule."""
        X, D, lr = self._update_args(x, d, lr)
        self._update(X, D, lr)

    def _update(self, X, D, lr: float) -> None:
        """:meth:`update` of validated arrays (the internal fast path)."""
        tc = self.config.device
        fast_lr = tc.fast_lr if tc.fast_lr > 0 else lr
        every = tc.transfer_period(X.shape[0])
        B = X.shape[0]
        s0 = 0
        while s0 < B:
            s1 = min(B, s0 + every - (self.samples_seen % every)) if every > 0 else B
            Xs, Ds = X[s0:s1], D[s0:s1]
            if self.chopped:
                # in_chop[j] != out_chop[i] flips the coincidence sign: (t d)(s x)^T with s, t = -1 where set
                s, t = self._signs()
                Xs = np.ascontiguousarray(Xs * s)
                Ds = np.ascontiguousarray(Ds * t)
            self.a._update(Xs, Ds, fast_lr)
            self.samples_seen += s1 - s0
            if every > 0 and self.samples_seen % every == 0:
                self.transfer(lr)
            s0 = s1

    def _read_column(self, i):
        E = np.zeros((1, self.in_size), np.float32)
        E[0, i] = 1.0
        y = read_columns(self.a._w_app, [i], self.transfer_io, self._keys["transfer"], self._t["transfer"],
                         zig_tables(), counters=self.counters, allow_bm=False)
        self._t["transfer"] += 1
        self.counters["n_transfer_reads"] += 1
        return E, y[0]

    def _write(self, E, n, g_c):
        if np.any(n != 0):
            tc = self.config.device
            self.c._update(E, np.ascontiguousarray((-n)[None, :], np.float32), float(tc.step * g_c))
            self.counters["n_transfer_writes"] += 1

    def transfer(self, lr: float) -> None:
        """Read the next column(s) of A into the buffer and write whole pulses onto C."""
        tc = self.config.device
        lr_t = tc.transfer_lr * lr if tc.scale_transfer_lr else tc.transfer_lr
        if lr_t == 0.0:
            return
        max_steps = np.float32(self.c.config.update.desired_bl)
        g_a = np.float32(self.a.granularity)
        g_c = np.float32(self.c.granularity)
        n_cols = 1 if self.chopped else min(tc.n_reads_per_transfer, self.in_size)
        for _ in range(n_cols):
            i = self.pointer
            E, y = self._read_column(i)
            if not self.chopped:
                self._transfer_v2(i, E, y, np.float32(lr_t), g_c, max_steps)
            elif self.dynamic:
                self._transfer_agad(i, E, y, np.float32(lr_t), g_a, g_c, max_steps)
            else:
                self._transfer_chopped(i, E, y, np.float32(lr_t), g_a, g_c, max_steps)
            self.pointer = int((self.pointer + 1) % self.in_size)
        self.counters["n_transfers"] += 1

    def _forget(self, omega, n, unit):
        tc = self.config.device
        hit = n != 0
        if tc.forget_buffer:
            return np.where(hit, omega * np.float32(tc.momentum), omega).astype(np.float32)
        return np.where(hit, omega - np.float32(1.0 - tc.momentum) * n * unit, omega).astype(np.float32)

    def _transfer_v2(self, i, E, y, lr_t, g_c, max_steps):
        tc = self.config.device
        thr = np.float32(tc.thres_scale) * g_c
        omega = self.H[:, i] + y * lr_t
        n = np.clip(np.trunc(omega / thr), -max_steps, max_steps).astype(np.float32)
        self.H[:, i] = self._forget(omega, n, thr)
        self._write(E, n, g_c)

    def _chop_sign(self, i):
        return np.where(self.in_chop[i] != self.out_chop, np.float32(-1.0), np.float32(1.0))

    def _transfer_chopped(self, i, E, y, lr_t, g_a, g_c, max_steps):
        tc = self.config.device
        lr_scale = np.float32(lr_t / (np.float32(tc.buffer_granularity) * g_a))
        omega = self.H[:, i] + self._chop_sign(i) * (y * lr_scale)
        n = np.where(np.abs(omega) >= 1.0, np.clip(np.trunc(omega), -max_steps, max_steps), 0.0).astype(np.float32)
        self.H[:, i] = self._forget(omega, n, np.float32(1.0))
        self._write(E, n, g_c)
        self._switch_choppers(i)

    def _transfer_agad(self, i, E, y, lr_t, g_a, g_c, max_steps):
        tc = self.config.device
        n_samples = tc.n_chop_samples()
        current = (self.transfer_counter % n_samples) + 1
        mom = np.float32(min(tc.tail_weightening / n_samples, 1.0))
        if self.in_switched[i]:
            # a new chopper period begins for this column: the running mean becomes the reference
            self.past_mean[:, i] = self.running_mean[:, i]
        self.in_switched[i] = False
        lr_scale = np.float32(lr_t / (np.float32(tc.buffer_granularity) * g_a))
        dw = (y - self.past_mean[:, i]) * self._chop_sign(i)
        omega = self.H[:, i] + dw * lr_scale
        n = np.where(np.abs(omega) >= 1.0, np.clip(np.trunc(omega), -max_steps, max_steps), 0.0).astype(np.float32)
        omega = self._forget(omega, n, np.float32(1.0))
        if not tc.forget_buffer and tc.buffer_cap > 0:
            cap = np.float32(tc.buffer_cap) * max_steps
            omega = np.clip(omega, -cap, cap)
        self.H[:, i] = omega
        self.running_mean[:, i] = self.running_mean[:, i] * (np.float32(1.0) - mom) + y * mom
        if self.transfer_counter > n_samples:
            self._write(E, n, g_c)
        switch = current == n_samples and not tc.in_chop_random
        if tc.in_chop_random and self.chop_rng.random() < tc.in_chop_prob:
            switch = True
        if switch:
            self.in_chop[i] = not self.in_chop[i]
            self.in_switched[i] = True
        self._end_sweep(i)

    def _switch_choppers(self, i):
        tc = self.config.device
        if tc.in_chop_prob > 0.0:
            if tc.in_chop_random:
                if self.chop_rng.random() < tc.in_chop_prob:
                    self.in_chop[i] = not self.in_chop[i]
            elif (self.transfer_counter % tc.n_chop_samples()) + 1 == tc.n_chop_samples():
                self.in_chop[i] = not self.in_chop[i]
        self._end_sweep(i)

    def _end_sweep(self, i):
        tc = self.config.device
        if i == self.in_size - 1:
            if tc.out_chop_prob > 0.0:
                flip = self.chop_rng.random(self.out_size) < tc.out_chop_prob
                self.out_chop ^= flip
            self.transfer_counter += 1

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        st = super().get_state()
        st["kind"] = "BufferedTransferTile"
        st["H"] = self.H.copy()
        st["in_chop"] = self.in_chop.copy()
        st["out_chop"] = self.out_chop.copy()
        st["transfer_counter"] = int(self.transfer_counter)
        st["chop_rng"] = self.chop_rng.bit_generator.state
        if self.dynamic:
            st["running_mean"] = self.running_mean.copy()
            st["past_mean"] = self.past_mean.copy()
            st["in_switched"] = self.in_switched.copy()
        return st

    STATE_KEYS = TikiTakaTile.STATE_KEYS + ("H", "in_chop", "out_chop", "transfer_counter", "chop_rng")

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` (shapes must match).

        Raises :class:`FormatError` (and changes nothing) for a partial or foreign dict."""
        if self.dynamic and isinstance(state, dict):
            check_state(state, self.shape, ("running_mean", "past_mean", "in_switched"),
                        "BufferedTransferTile.set_state")
        super().set_state(state)

    def _restore(self, state: dict) -> None:
        owner = "BufferedTransferTile.set_state"
        shape, o, i = self.shape, (self.out_size,), (self.in_size,)
        arrays = {k: state_array(state, k, sh, dt, owner) for k, sh, dt in (
            ("H", shape, np.float32), ("in_chop", i, bool), ("out_chop", o, bool))}
        if self.dynamic:
            arrays.update({k: state_array(state, k, sh, dt, owner) for k, sh, dt in (
                ("running_mean", shape, np.float32), ("past_mean", shape, np.float32), ("in_switched", i, bool))})
        transfer_counter = state_int(state, "transfer_counter", owner)
        chop_rng = np.random.default_rng()
        try:
            chop_rng.bit_generator.state = state["chop_rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise FormatError(f"'chop_rng' of the tile state given to {owner} is not a "
                              f"{type(chop_rng.bit_generator).__name__} state ({exc}).") from None
        super()._restore(state)
        for k, v in arrays.items():
            setattr(self, k, v)
        self.transfer_counter = transfer_counter
        self.chop_rng = chop_rng

    def __repr__(self) -> str:
        return f"BufferedTransferTile({self.out_size}, {self.in_size}, {self.config.device!r})"


def with_transfer_params(cls, params, device_a, device_c=None, **kw):
    """``cls`` (a BufferedTransfer subclass) with the v1 hyper-parameters of ``params`` and the given devices."""
    from .tiki_taka import TransferParams

    base = {f.name: getattr(params, f.name) for f in dataclasses.fields(TransferParams)}
    base.update(kw)
    return cls(device_a=device_a, device_c=device_a if device_c is None else device_c, **base)
