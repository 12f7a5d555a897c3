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
  - **c-TTv2** (``ChoppedTransfer``): ``H += sign * y * lr_t / u`` (``u = buffer_granularity g_A`` by default,
    :meth:`BufferedTransferTile.buffer_unit`) with ``sign = -1`` when ``in_chop[i] != out_chop[row]``;
    ``n = clip(trunc(H), +-BL_t)`` where ``|H| >= 1``;
  - **AGAD** (``DynamicTransfer``): no reference array: each read is compared with ``mu_past``, the leaky
    running mean of the reads of the previous chopper period (``sample_momentum = min(tail_weightening /
    n_samples, 1)``), ``H += sign * (y - mu_past) * lr_t / (buffer_granularity g_A)``; writes begin after
    ``n_samples`` full sweeps; the choppers switch regularly every ``n_samples = max(ceil(1/in_chop_prob), 2)``
    sweeps (or at random).

  Where ``n != 0`` the buffer forgets (``H *= momentum``, ``forget_buffer``) or subtracts what was written
  (``H -= (1 - momentum) n`` in buffer units), and C receives ``n`` whole pulses through a pulsed update with
  ``x = e_i``, ``d = -n`` and learning rate ``step * g_C`` using ``transfer_update`` (aihwkit's default: BL 1
  without update management, so exactly one pulse per non-zero ``n``).
* ``lr_t = transfer_lr * lr`` (``scale_transfer_lr``), ``lr`` the current SGD learning rate (times ``gamma`` when
  A is part of the weights). The input choppers switch after the column's read (with probability
  ``in_chop_prob``, or regularly; AGAD switches regularly *and*, with ``in_chop_random``, at random); c-TTv2's
  output choppers after a full sweep of the columns, each with probability ``out_chop_prob``; AGAD never switches
  output choppers. Every chopper starts unset (aihwkit 1.1.0).
* The pulsed update onto A uses the compound's granularity, the mean of A's and C's (aihwkit CPU); the buffer
  unit and the auto-scaled count learning rate use A's own, the write onto C uses C's.
* Options of the chopped family (aihwkit names and semantics): ``auto_scale`` / ``auto_momentum`` (the fast
  learning rate follows running means of ``max|x|``, ``max|d|``), ``auto_granularity``,
  ``correct_gradient_magnitudes``, ``no_buffer``, row transfer (``transfer_columns=False``: rows of A are read
  through the backward pass and the choppers swap roles) and the automatic transfer period (``transfer_every < 0``).
  See :class:`ChoppedTransfer`.
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
from ..rng import make_seedseq
from .analog import check_state, state_array, state_int


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
        Probability (``in_chop_random``) or frequency of switching a transfer vector's input chopper after its
        read (regular: every ``max(ceil(1 / in_chop_prob), 2)`` sweeps; 0: the choppers never switch).
    in_chop_random : bool
        Random (True) or regular switching.
    out_chop_prob : float
        Probability of switching each output chopper after a full sweep (not used by AGAD, as aihwkit).
    buffer_granularity : float
        Buffer unit in multiples of A's weight granularity.
    auto_scale : bool
        Scale the fast learning rate by running means of ``max|x|`` and ``max|d|``: the pulse-count learning rate
        of the update onto A is ``fast_lr * BL * g_A / (m_x * m_d)`` (``BL`` the tile's ``desired_bl``), so the
        largest coincidence count of a sample of average size is about ``fast_lr * BL`` whatever the gradient's
        scale. Needs ``fast_lr > 0`` (else the SGD learning rate is used, as aihwkit does).
    auto_momentum : float
        Momentum of those running means per mini-batch: each sample mixes in ``(1 - auto_momentum) / batch``.
    auto_granularity : float
        If > 0, the buffer unit is also multiplied by ``auto_granularity / (n_vectors * |transfer_every|)``
        (``n_vectors``: columns, or rows for row transfer): about ``auto_granularity`` samples of gradient fill
        one unit.
    correct_gradient_magnitudes : bool
        Count the buffer in C's granularity and divide the read by the fast count learning rate, so that H holds
        C-pulses of ``lr * gradient`` (as aihwkit codes it; ``auto_granularity`` still applies).
    no_buffer : bool
        Ignore the buffer's content at every read (a Tiki-Taka v1-like threshold of each read).
    """

    _auto_period = True

    momentum: float = 0.0
    in_chop_prob: float = 0.1
    in_chop_random: bool = True
    out_chop_prob: float = 0.0
    buffer_granularity: float = 1.0
    units_in_mbatch: bool = False
    auto_scale: bool = False
    auto_momentum: float = 0.99
    auto_granularity: float = 0.0
    correct_gradient_magnitudes: bool = False
    no_buffer: bool = False

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.in_chop_prob, "in_chop_prob", owner, 0.0, 1.0)
        V.check_bool(self.in_chop_random, "in_chop_random", owner)
        V.check_float(self.out_chop_prob, "out_chop_prob", owner, 0.0, 1.0)
        V.check_float(self.buffer_granularity, "buffer_granularity", owner, 0.0, 1e12, closed_lo=False)
        V.check_bool(self.auto_scale, "auto_scale", owner)
        V.check_float(self.auto_momentum, "auto_momentum", owner, 0.0, 1.0, closed_hi=False)
        V.check_float(self.auto_granularity, "auto_granularity", owner, 0.0, 1e12)
        V.check_bool(self.correct_gradient_magnitudes, "correct_gradient_magnitudes", owner)
        V.check_bool(self.no_buffer, "no_buffer", owner)
        if self.n_reads_per_transfer != 1:
            raise ConfigError(f"The 'n_reads_per_transfer' parameter of {owner} must be 1 (one vector per "
                              f"transfer, as aihwkit: 'Only 1 read per transfer supported'). Got "
                              f"{self.n_reads_per_transfer} instead.")
        if self.auto_granularity > 0 and self.transfer_every == 0:
            raise ConfigError(f"The 'auto_granularity' parameter of {owner} divides by |transfer_every|, which is 0; "
                              f"set transfer_every or auto_granularity=0.")

    def n_chop_samples(self) -> int:
        """Sweeps per regular chopper period: ``max(ceil(1 / in_chop_prob), 2)``."""
        if self.in_chop_prob <= 0.0:
            return 2
        return max(int(math.ceil(np.float32(1.0) / np.float32(self.in_chop_prob))), 2)


@dataclass(frozen=True, repr=False)
class DynamicTransfer(ChoppedTransfer):
    """AGAD (aihwkit ``DynamicTransferCompound``): chopped transfer against a leaky average of past reads.

    Parameters (besides :class:`ChoppedTransfer`; ``out_chop_prob`` must be 0: AGAD never switches output
    choppers)
    ----------
    tail_weightening : float
        Running-mean momentum of the reads is ``min(tail_weightening / n_samples, 1)``.
    buffer_cap : float
        With ``forget_buffer=False``, clip the buffer of a written entry to ``+-buffer_cap * BL_t`` (0: no cap).
    experimental_correct_accumulation : bool
        Divide the read scale by ``min(q, 1 / g_A)``, ``q`` the sweep's position in the chopper period (aihwkit's
        experimental option).
    """

    in_chop_random: bool = False
    tail_weightening: float = 5.0
    buffer_cap: float = 0.0
    experimental_correct_accumulation: bool = False

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        V.check_float(self.tail_weightening, "tail_weightening", owner, 0.0, 1e12, closed_lo=False)
        V.check_float(self.buffer_cap, "buffer_cap", owner, 0.0, 1e12)
        V.check_bool(self.experimental_correct_accumulation, "experimental_correct_accumulation", owner)
        if self.in_chop_prob <= 0.0:
            raise ConfigError(f"The 'in_chop_prob' parameter of {owner} must be a float in (0, 1]. "
                              f"Got {self.in_chop_prob!r} instead.")
        if self.out_chop_prob != 0.0:
            raise ConfigError(f"The 'out_chop_prob' parameter of {owner} must be 0: AGAD never switches output "
                              f"choppers (aihwkit ignores it). Got {self.out_chop_prob!r} instead.")


def _round_half_away(v: float) -> int:
    """C ``roundf``: halves away from zero."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def _n_states(device) -> float:
    """aihwkit ``calcNumStates``: ``(w_max - w_min) / granularity`` of the mean device."""
    from crossbar_sim.device_models import PulsedDevice

    if isinstance(device, PulsedDevice):
        return (device.w_max - device.w_min) / device.granularity()
    return float(device.n_states)


class BufferedTransferTile(TikiTakaTile):
    """A Tiki-Taka v2 / chopped TTv2 / AGAD tile: A, C, the digital buffer H and the choppers.

    Same interface as :class:`~crossbar_sim.tiles.tiki_taka.TikiTakaTile` (``config.device`` is a
    :class:`BufferedTransfer`, :class:`ChoppedTransfer` or :class:`DynamicTransfer`). ``arrays()`` returns A,
    C, H (and AGAD's running and past means) for dumps.

    Every in- and out-chopper starts unset (no sign flip), as aihwkit 1.1.0 (``rpu_chopped_transfer_device.cpp``
    populate; its Python reference tile and CUDA choppers of +1 agree). ``set_weights`` writes C and zeroes A and
    restarts the transfer pointer and the sample counter; the buffer, the choppers, the chopper counter and the
    auto-scale statistics are kept, as in aihwkit (its ``onSetWeights`` resets only those two).
    """

    def __init__(self, out_size, in_size, config: CompoundTileConfig | None = None, seed=None, threads=None):
        if config is None:
            config = CompoundTileConfig(device=BufferedTransfer())
        if not isinstance(config, CompoundTileConfig) or not isinstance(config.device, BufferedTransfer):
            raise ConfigError("The 'config' parameter of BufferedTransferTile must be a CompoundTileConfig whose "
                              f"device is a BufferedTransfer, ChoppedTransfer or DynamicTransfer. Got {config!r}.")
        ss = make_seedseq(seed)
        s_base, s_chop = ss.spawn(2)
        self.H = None
        super().__init__(out_size, in_size, config, seed=s_base, threads=threads)
        self.chop_rng = np.random.default_rng(s_chop)
        self.H = np.zeros((self.out_size, self.in_size), np.float32)
        n_vec = self.n_slices
        m_vec = self.out_size if config.device.transfer_columns else self.in_size
        # in-choppers sit on the transfer vectors (columns, or rows for row transfer), out-choppers on the elements
        # of a read; all start unset (aihwkit 1.1.0 CPU populate: vectors of false)
        self.in_chop = np.zeros(n_vec, bool)
        self.out_chop = np.zeros(m_vec, bool)
        self.transfer_counter = 0
        self.m_x = np.float32(0.0)    # auto_scale: running means of max|x| and max|d|
        self.m_d = np.float32(0.0)
        self.count_lr = 0.0           # the last pulse-count learning rate of the update onto A
        self.dynamic = isinstance(config.device, DynamicTransfer)
        self.chopped = isinstance(config.device, ChoppedTransfer)
        if self.dynamic:
            self.running_mean = np.zeros((self.out_size, self.in_size), np.float32)
            self.past_mean = np.zeros((self.out_size, self.in_size), np.float32)
            self.in_switched = np.zeros(n_vec, bool)
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

    def _slice(self, M, i):
        """View of transfer vector ``i`` of an (out, in) buffer: column ``i``, or row ``i`` for row transfer."""
        return M[:, i] if self.config.device.transfer_columns else M[i, :]

    # ------------------------------------------------------------------ update
    def _signs(self):
        """Chopper signs of the inputs ``s`` (in_size) and of the errors ``t`` (out_size): -1 where set."""
        cols = self.config.device.transfer_columns
        x_chop, d_chop = (self.in_chop, self.out_chop) if cols else (self.out_chop, self.in_chop)
        s = np.where(x_chop, -1.0, 1.0).astype(np.float32)
        t = np.where(d_chop, -1.0, 1.0).astype(np.float32)
        return s, t

    def transfer_every_samples(self, batch: int) -> int:
        """Samples between transfers for update calls of ``batch`` samples (0: never).

        A negative ``transfer_every`` (chopped TTv2, AGAD) is aihwkit's automatic period
        ``max(1, round(n_states_A / n_vectors * |transfer_every|))``; one transfer per event (aihwkit 1.1.0 also
        lets C "transfer to itself" in this mode, which reads a second vector of A per event: not reproduced).
        """
        tc = self.config.device
        if tc.transfer_every < 0:
            return max(1, _round_half_away(_n_states(tc.device_a) / self.n_slices * abs(tc.transfer_every)))
        return tc.transfer_period(batch)

    def update(self, x, d, lr: float) -> None:
        """Pulse the (chopped) gradient onto A with ``fast_lr``; transfer through H on schedule."""
        X, D, lr = self._update_args(x, d, lr)
        self._update(X, D, lr)

    def _update(self, X, D, lr: float) -> None:
        """:meth:`update` of validated arrays (the internal fast path)."""
        tc = self.config.device
        every = self.transfer_every_samples(X.shape[0])
        B = X.shape[0]
        auto = self.chopped and tc.auto_scale
        s0 = 0
        while s0 < B:
            s1 = min(B, s0 + every - (self.samples_seen % every)) if every > 0 else B
            Xs, Ds = X[s0:s1], D[s0:s1]
            if self.chopped:
                # in_chop[j] != out_chop[i] flips the coincidence sign: (t d)(s x)^T with s, t = -1 where set
                s, t = self._signs()
                Xs = np.ascontiguousarray(Xs * s)
                Ds = np.ascontiguousarray(Ds * t)
            if auto:
                self._fast_update_auto(Xs, Ds, lr, B)
            else:
                self.count_lr = tc.fast_lr if tc.fast_lr > 0 else lr
                self.a._update(Xs, Ds, self.count_lr, self.fast_granularity)
            self.samples_seen += s1 - s0
            if every > 0 and self.samples_seen % every == 0:
                self.transfer(lr)
            s0 = s1

    def _fast_update_auto(self, X, D, lr: float, batch: int) -> None:
        """The update onto A with ``auto_scale``: per sample, the running maxima, then that sample's count lr.

        ``m <- m + tau (v - m)`` with ``tau = (1 - auto_momentum) / batch``, initialised by the first non-zero
        value (aihwkit ``updateAutoScale``, float32); count lr ``fast_lr * BL * g_A / (m_x m_d)``.
        """
        tc = self.config.device
        f = np.float32
        tau = f(f(1.0 - f(tc.auto_momentum)) / f(batch))
        base = f(f(tc.fast_lr) * f(f(self.config.update.desired_bl) * f(self.a.granularity)))
        ax = np.abs(X).max(axis=1) if X.shape[1] else np.zeros(X.shape[0], np.float32)
        ad = np.abs(D).max(axis=1) if D.shape[1] else np.zeros(D.shape[0], np.float32)
        g = self.fast_granularity
        for k in range(X.shape[0]):
            self.m_x = _auto_scale_step(self.m_x, f(ax[k]), tau)
            self.m_d = _auto_scale_step(self.m_d, f(ad[k]), tau)
            if tc.fast_lr > 0:
                c = base / (self.m_x * self.m_d) if (self.m_x > 0 and self.m_d > 0) else base
                self.count_lr = float(f(c))
            else:
                self.count_lr = lr
            self.a._update(X[k:k + 1], D[k:k + 1], self.count_lr, g)

    # ------------------------------------------------------------------ transfer
    def _write(self, i, n, g_c):
        if np.any(n != 0):
            tc = self.config.device
            self._write_slices([i], n[None, :], float(np.float32(tc.step) * np.float32(g_c)))
            self.counters["n_transfer_writes"] += 1

    def _transfer_lr(self, lr: float) -> float:
        """``transfer_lr * lr`` (``scale_transfer_lr``), times ``gamma_A / gamma_C`` when A contributes to the
        weights (aihwkit ``BufferedTransferRPUDeviceMetaParameter::getTransferLR``)."""
        tc = self.config.device
        lr_t = tc.transfer_lr * lr if tc.scale_transfer_lr else tc.transfer_lr
        if tc.gamma > 0:
            lr_t *= tc.gamma  # gamma_vec = [gamma, 1]
        return lr_t

    def transfer(self, lr: float) -> None:
        """Read the next vector(s) of A into the buffer and write whole pulses onto C."""
        tc = self.config.device
        lr_t = self._transfer_lr(lr)
        if lr_t == 0.0:
            return
        max_steps = np.float32(self.c.config.update.desired_bl)
        g_a = np.float32(self.a.granularity)
        g_c = np.float32(self.c.granularity)
        n_sl = self.n_slices
        n_vec = 1 if self.chopped else min(tc.n_reads_per_transfer, n_sl)
        for _ in range(n_vec):
            i = self.pointer
            y = self._read_slices([i])[0]
            self.counters["n_transfer_reads"] += 1
            if not self.chopped:
                self._transfer_v2(i, y, np.float32(lr_t), g_c, max_steps)
            elif self.dynamic:
                self._transfer_agad(i, y, np.float32(lr_t), g_a, g_c, max_steps)
            else:
                self._transfer_chopped(i, y, np.float32(lr_t), g_a, g_c, max_steps)
            self.pointer = int((self.pointer + 1) % n_sl)
        self.counters["n_transfers"] += 1

    def _forget(self, omega, n, unit):
        tc = self.config.device
        hit = n != 0
        if tc.forget_buffer:
            return np.where(hit, omega * np.float32(tc.momentum), omega).astype(np.float32)
        sub = np.float32(1.0 - min(max(tc.momentum, 0.0), 1.0))
        return np.where(hit, omega - sub * n * unit, omega).astype(np.float32)

    def _transfer_v2(self, i, y, lr_t, g_c, max_steps):
        tc = self.config.device
        thr = np.float32(tc.thres_scale) * g_c
        Hi = self._slice(self.H, i)
        omega = Hi + y * lr_t
        n = np.clip(np.trunc(omega / thr), -max_steps, max_steps).astype(np.float32)
        Hi[...] = self._forget(omega, n, thr)
        self._write(i, n, g_c)

    def buffer_unit(self) -> float:
        """The buffer unit ``u`` of a chopped / AGAD read: ``buffer_granularity * g_A``, times
        ``auto_granularity / (n_vectors |transfer_every|)`` if that is set, times ``g_C / g_A`` with
        ``correct_gradient_magnitudes`` (aihwkit ``getBufferGranularity``, ``getTransferLRScale``)."""
        tc = self.config.device
        f = np.float32
        g_a = f(self.a.granularity)
        bg = f(tc.buffer_granularity if tc.buffer_granularity > 0 else 1.0)
        if tc.auto_granularity > 0:
            period = f(f(self.n_slices) * f(abs(tc.transfer_every)))
            bg = f(bg * f(f(g_a * f(tc.auto_granularity)) / period))
        else:
            bg = f(bg * g_a)
        if tc.correct_gradient_magnitudes:
            bg = f(bg * f(f(self.c.granularity) / g_a))
        return float(bg)

    def _lr_scale(self, lr_t) -> np.float32:
        """``|lr_t| / u`` (divided by the fast count lr with ``correct_gradient_magnitudes``)."""
        tc = self.config.device
        f = np.float32
        u = f(self.buffer_unit())
        if tc.correct_gradient_magnitudes:
            return f(f(f(abs(lr_t)) / f(self.count_lr)) / u)
        return f(f(abs(lr_t)) / u)

    def _chop_sign(self, i):
        return np.where(self.in_chop[i] != self.out_chop, np.float32(-1.0), np.float32(1.0))

    def _transfer_chopped(self, i, y, lr_t, g_a, g_c, max_steps):
        tc = self.config.device
        lr_scale = self._lr_scale(lr_t)
        Hi = self._slice(self.H, i)
        start = np.zeros_like(y) if tc.no_buffer else Hi
        omega = (start + self._chop_sign(i) * (y * lr_scale)).astype(np.float32)
        n = np.where(np.abs(omega) >= 1.0, np.clip(np.trunc(omega), -max_steps, max_steps), 0.0).astype(np.float32)
        Hi[...] = self._forget(omega, n, np.float32(1.0))
        self._write(i, n, g_c)
        if tc.in_chop_prob > 0.0:
            if tc.in_chop_random:
                if self.chop_rng.random() < tc.in_chop_prob:
                    self.in_chop[i] = not self.in_chop[i]
            elif (self.transfer_counter % tc.n_chop_samples()) + 1 == tc.n_chop_samples():
                self.in_chop[i] = not self.in_chop[i]
        if i == self.n_slices - 1:
            if tc.out_chop_prob > 0.0:
                self.out_chop ^= self.chop_rng.random(self.out_chop.size) < tc.out_chop_prob
            self.transfer_counter += 1

    def _transfer_agad(self, i, y, lr_t, g_a, g_c, max_steps):
        tc = self.config.device
        n_samples = tc.n_chop_samples()
        current = (self.transfer_counter % n_samples) + 1
        mom = np.float32(min(tc.tail_weightening / n_samples, 1.0))
        past, run = self._slice(self.past_mean, i), self._slice(self.running_mean, i)
        if self.in_switched[i]:
            # a new chopper period begins for this vector: the running mean becomes the reference (not reset)
            past[...] = run
        self.in_switched[i] = False
        lr_scale = self._lr_scale(lr_t)
        if tc.experimental_correct_accumulation:
            lr_scale = np.float32(lr_scale / min(float(current), 1.0 / float(g_a)))
        Hi = self._slice(self.H, i)
        dw = (y - past) * self._chop_sign(i)
        omega = (Hi + dw * lr_scale).astype(np.float32)
        hit = np.abs(omega) >= 1.0
        n = np.where(hit, np.clip(np.trunc(omega), -max_steps, max_steps), 0.0).astype(np.float32)
        omega = self._forget(omega, n, np.float32(1.0))
        if not tc.forget_buffer and tc.buffer_cap > 0:
            cap = np.float32(tc.buffer_cap) * max_steps
            omega = np.where(hit, np.clip(omega, -cap, cap), omega)  # only entries that wrote (aihwkit)
        Hi[...] = omega
        run[...] = run * (np.float32(1.0) - mom) + y * mom
        if self.transfer_counter > n_samples:
            self._write(i, n, g_c)
        # aihwkit switches regularly at the end of each period, and also at random with in_chop_random
        switch = current == n_samples
        if tc.in_chop_random and self.chop_rng.random() < tc.in_chop_prob:
            switch = True
        if switch:
            self.in_chop[i] = not self.in_chop[i]
            self.in_switched[i] = True
        if i == self.n_slices - 1:  # AGAD never switches out-choppers
            self.transfer_counter += 1

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        st = super().get_state()
        st["kind"] = "BufferedTransferTile"
        st["H"] = self.H.copy()
        st["in_chop"] = self.in_chop.copy()
        st["out_chop"] = self.out_chop.copy()
        st["transfer_counter"] = int(self.transfer_counter)
        st["auto_scale"] = [float(self.m_x), float(self.m_d), float(self.count_lr)]
        st["chop_rng"] = self.chop_rng.bit_generator.state
        if self.dynamic:
            st["running_mean"] = self.running_mean.copy()
            st["past_mean"] = self.past_mean.copy()
            st["in_switched"] = self.in_switched.copy()
        return st

    STATE_KEYS = TikiTakaTile.STATE_KEYS + ("H", "in_chop", "out_chop", "transfer_counter", "auto_scale", "chop_rng")

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
        auto = state["auto_scale"]  # running max|x|, max|d| and the count-LR (auto_scale)
        try:
            m_x, m_d, count_lr = (float(v) for v in auto)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"'auto_scale' of the tile state given to {owner} must be three numbers "
                              f"[m_x, m_d, count_lr]. Got {auto!r} ({exc}).") from None
        super()._restore(state)
        for k, v in arrays.items():
            setattr(self, k, v)
        self.transfer_counter = transfer_counter
        self.chop_rng = chop_rng
        self.m_x, self.m_d, self.count_lr = np.float32(m_x), np.float32(m_d), count_lr

    def __repr__(self) -> str:
        return f"BufferedTransferTile({self.out_size}, {self.in_size}, {self.config.device!r})"


def _auto_scale_step(m, v, tau):
    """aihwkit ``updateAutoScale`` (float32): the first non-zero value initialises ``m``; zeros are skipped."""
    f = np.float32
    if m <= 0:
        return f(v)
    if v <= 0:
        return f(m)
    return f(f(f(1.0) - tau) * m + f(tau * v))


def with_transfer_params(cls, params, device_a, device_c=None, **kw):
    """``cls`` (a BufferedTransfer subclass) with the v1 hyper-parameters of ``params`` and the given devices."""
    from .tiki_taka import TransferParams

    base = {f.name: getattr(params, f.name) for f in dataclasses.fields(TransferParams)}
    base.update(kw)
    return cls(device_a=device_a, device_c=device_a if device_c is None else device_c, **base)
