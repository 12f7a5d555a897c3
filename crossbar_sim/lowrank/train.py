"""Training the small LLaMA on Shakespeare with full-rank AdamW, GaLore, OSD or Tiki-Taka, digital or on tiles.

One step reads top to bottom: a batch of windows -> forward (every weight-matrix MVM through its holder) ->
backward (``W^T d`` through the holders) -> the digital parameters' AdamW step -> for every weight matrix either
the optimiser (gradient ``G = dY^T X`` formed digitally, optimiser step, the update written to the holder: on a
tile as pulses) or, for Tiki-Taka, the ``n_tokens`` rank-1 terms pulsed onto A and transferred to C -> log.
Every ``eval_every`` steps the validation perplexity is measured on a fixed set of held-out windows (through
the tiles, whose read counters are restored afterwards: the budget is the training's alone).

Learning-rate schedule (GaLore / OSD runs): linear warm-up over ``warmup_fraction`` of the steps, then cosine
decay to ``min_lr_ratio`` of the peak; OSD's P learning rate follows the same ratio (its reference code does).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import validation as V
from ..tiles.tiki_taka import CompoundTileConfig, TransferCompound, TransferParams
from ..config import Config
from ..energy import Budget, EnergyConstants, EventCounts, compute_budget
from ..errors import ConfigError, DivergenceError
from ..tiles.params import IOParameters, TileConfig, UpdateParameters
from ..parallel import blas_threads
from ..rng import make_seedseq
from .backends import AnalogMatrix, DigitalMatrix, TikiTakaMatrix
from .lm import LMConfig, TinyLlama
from .optim import AdamWConfig, GaLoreConfig, OptimizerConfig, OSDConfig
from .text import CharCorpus, ShakespeareText, load_shakespeare

METHODS = ("adamw", "galore", "osd", "tiki_taka")
BACKENDS = ("digital", "analog")
_OPTIM_TYPES = {"adamw": AdamWConfig, "galore": GaLoreConfig, "osd": OSDConfig}

METRIC_UNITS = {
    "train_loss": "mean cross-entropy of the training batches since the previous record (nats per character)",
    "val_loss": "mean cross-entropy on the held-out windows (nats per character)",
    "val_ppl": "validation perplexity exp(val_loss) (per character)",
    "pulses": "device pulses applied so far (all tiles, training only)",
    "pulse_cycles": "rank-1 pulse cycles so far (all tiles, training only)",
    "wall_time_s": "seconds since the start of the run",
}


def _default_device():
    from crossbar_sim.device_models import SoftBoundsDevice

    return SoftBoundsDevice()


def _default_transfer():
    return TransferParams(fast_lr=0.1, transfer_every=1.0, n_reads_per_transfer=1)


@dataclass(frozen=True, repr=False)
class LowRankRunConfig(Config):
    """One training run of the language model.

    Parameters
    ----------
    method : str
        ``adamw`` (full rank), ``galore``, ``osd`` or ``tiki_taka`` (analog only).
    backend : str
        ``digital`` (float32 weights) or ``analog`` (weight matrices on tiles, updates written as pulses).
    optim : OptimizerConfig or None
        The optimiser of the weight matrices (AdamWConfig / GaLoreConfig / OSDConfig, matching ``method``; None:
        its defaults). Ignored by Tiki-Taka.
    lr : float
        Peak learning rate of the weight matrices (AdamW-type methods); for Tiki-Taka the SGD learning rate
        that scales the transfer onto C (``transfer_lr * lr``).
    lr_other : float
        Peak AdamW learning rate of the digital parameters (embedding, LM head, RMSNorm gains).
    steps, batch_size : int
        Training steps and windows per step (``batch_size * lm.seq_len`` tokens).
    warmup_fraction, min_lr_ratio : float
        Schedule: linear warm-up, then cosine to ``min_lr_ratio`` of the peak.
    eval_every : int
        Steps between validation measurements (the first and last steps are always measured).
    eval_tokens : int
        Held-out tokens per measurement (fixed windows, evenly spaced over the validation plays).
    lm : LMConfig
    data : ShakespeareText
    tile : TileConfig
        Device, pulse scheme and periphery of the weight tiles (analog backend).
    tile_weight_scale : float
        alpha of ``W = alpha W_tile``, the fixed digital scale between model weights and device weights
        (:mod:`crossbar_sim.lowrank.backends`).
    transfer : TransferParams
        Tiki-Taka's transfer (``fast_lr``, ``transfer_every``, ...); A and C use ``tile.device``.
    energy : EnergyConstants
        Constants of the energy budget.
    """

    method: str = "osd"
    backend: str = "analog"
    optim: Any = None
    lr: float = 0.01
    lr_other: float = 0.003
    steps: int = 600
    batch_size: int = 16
    warmup_fraction: float = 0.1
    min_lr_ratio: float = 0.1
    eval_every: int = 100
    eval_tokens: int = 16384
    lm: LMConfig = field(default_factory=LMConfig)
    data: ShakespeareText = field(default_factory=ShakespeareText)
    tile: TileConfig = field(default_factory=lambda: TileConfig(device=_default_device()))
    tile_weight_scale: float = 0.2
    transfer: TransferParams = field(default_factory=_default_transfer)
    energy: EnergyConstants = field(default_factory=EnergyConstants)

    def validate(self) -> None:
        o = type(self).__name__
        V.check_choice(self.method, "method", o, METHODS)
        V.check_choice(self.backend, "backend", o, BACKENDS)
        if self.method == "tiki_taka" and self.backend != "analog":
            raise ConfigError("The 'tiki_taka' method needs backend='analog' (Tiki-Taka is an analog algorithm).")
        if self.optim is not None:
            want = _OPTIM_TYPES.get(self.method)
            if want is None or type(self.optim) is not want:
                raise ConfigError(f"The 'optim' parameter of {o} must be a {want.__name__ if want else 'None'} for "
                                  f"method {self.method!r}. Got {type(self.optim).__name__}.")
        V.check_float(self.lr, "lr", o, 0.0, closed_lo=False)
        V.check_float(self.lr_other, "lr_other", o, 0.0)
        V.check_int(self.steps, "steps", o, 1, 10**9)
        V.check_int(self.batch_size, "batch_size", o, 1, 1 << 20)
        V.check_float(self.warmup_fraction, "warmup_fraction", o, 0.0, 1.0, closed_hi=False)
        V.check_float(self.min_lr_ratio, "min_lr_ratio", o, 0.0, 1.0)
        V.check_int(self.eval_every, "eval_every", o, 1, 10**9)
        V.check_int(self.eval_tokens, "eval_tokens", o, 1, 10**9)
        V.check_float(self.tile_weight_scale, "tile_weight_scale", o, 0.0, closed_lo=False)
        for name, typ in (("lm", LMConfig), ("data", ShakespeareText), ("tile", TileConfig),
                          ("transfer", TransferParams), ("energy", EnergyConstants)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {o} must be a {typ.__name__}.")
        opt = self.optimizer()
        if self.backend == "analog" and opt is not None and opt.weight_decay > 0:
            raise ConfigError("Analog weights cannot take weight decay (it needs every device read and rewritten "
                              "each step); set optim.weight_decay = 0 or use backend='digital'.")

    def optimizer(self) -> OptimizerConfig | None:
        if self.method == "tiki_taka":
            return None
        return self.optim if self.optim is not None else _OPTIM_TYPES[self.method]()

    @property
    def rank(self) -> int | None:
        opt = self.optimizer()
        return getattr(opt, "rank", None)

    @property
    def label(self) -> str:
        r = self.rank
        return f"{self.method}" + (f" r={r}" if r is not None else "") + f" ({self.backend})"


def lr_ratio(step: int, total: int, warmup_fraction: float, min_ratio: float) -> float:
    """Schedule factor of step ``step`` (0-based) of ``total``: linear warm-up, then cosine to ``min_ratio``."""
    warm = int(round(warmup_fraction * total))
    if step < warm:
        return (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(prog, 1.0)))


@dataclass
class LowRankResult:
    """What one run returns (picklable; written to HDF5 by the parent).

    Attributes
    ----------
    config : dict
    seed : int
    steps : ndarray
        Steps at which the metrics were recorded.
    metrics : dict of str -> ndarray
        See :data:`METRIC_UNITS`.
    budget : Budget or None
        Energy by category, event counts, memory (bytes) and the constants used.
    memory : dict
        Digital optimiser-state bytes by part (``matrices``, ``other``, ``total``, ``transient_peak``) and
        analog state devices (Tiki-Taka's A).
    tiles : dict
        Per weight matrix: ``{"kind", "shape", "counters"}`` of every array.
    final_val_ppl : float
    wall_time_s : float
    status, error : str
    """

    config: dict
    seed: int
    steps: np.ndarray
    metrics: dict
    budget: Budget | None = None
    memory: dict = field(default_factory=dict)
    tiles: dict = field(default_factory=dict)
    final_val_ppl: float = float("nan")
    wall_time_s: float = 0.0
    status: str = "complete"
    error: str = ""


class LowRankTrainer:
    """One run. ``corpus`` may be passed to share a loaded corpus between runs."""

    def __init__(self, cfg: LowRankRunConfig, seed: int = 0, corpus: CharCorpus | None = None):
        self.cfg = cfg
        self.seed = seed
        self.corpus = corpus if corpus is not None else load_shakespeare(cfg.data)
        vocab = cfg.lm.vocab_size or self.corpus.vocab_size
        if vocab < self.corpus.vocab_size:
            raise ConfigError(f"lm.vocab_size ({vocab}) is smaller than the corpus vocabulary "
                              f"({self.corpus.vocab_size}).")
        need = cfg.lm.seq_len + 1
        if len(self.corpus.train) < need or len(self.corpus.val) < need:
            raise ConfigError(f"The corpus slices are shorter than one window of {need} characters.")
        s_init, s_data, s_tiles = make_seedseq(seed).spawn(3)
        self.rng = np.random.default_rng(s_data)
        tile_seeds = iter(s_tiles.spawn(len(cfg.lm.matrix_shapes())))
        self.model = TinyLlama(cfg.lm, vocab, np.random.default_rng(s_init),
                               holder_factory=lambda name, w: self._holder(w, next(tile_seeds)))
        opt = cfg.optimizer()
        self.opts = {} if opt is None else {n: opt.build(h.shape, n) for n, h in self.model.mats.items()}
        other = AdamWConfig()
        self.other_opts = {k: other.build((1, v.size) if v.ndim == 1 else v.shape, k)
                           for k, v in self.model.params.items()}
        self.step = 0
        self.gradient_flops = 0
        self.rec_steps: list[int] = []
        self.rec: dict[str, list[float]] = {k: [] for k in METRIC_UNITS}
        self._train_losses: list[float] = []
        #: training time so far (s), summed over the segments of a run continued from checkpoints
        self.elapsed_s = 0.0
        self._t0 = time.perf_counter()
        self._eval_windows = self._make_eval_windows()

    def attach_corpus(self, corpus: CharCorpus | None = None) -> None:
        """Give a trainer restored from a checkpoint (which does not carry the corpus) its text again."""
        self.corpus = corpus if corpus is not None else load_shakespeare(self.cfg.data)
        self._t0 = time.perf_counter()

    # -------------------------------------------------------------------- construction
    def _holder(self, w, seed):
        cfg = self.cfg
        if cfg.backend == "digital":
            return DigitalMatrix(w, np.float32)
        if cfg.method == "tiki_taka":
            comp = TransferCompound.from_params(cfg.transfer, cfg.tile.device)
            cc = CompoundTileConfig(device=comp, update=cfg.tile.update, forward=cfg.tile.forward,
                                    backward=cfg.tile.backward)
            return TikiTakaMatrix(w, cc, seed=seed, weight_scale=cfg.tile_weight_scale)
        return AnalogMatrix(w, cfg.tile, seed=seed, weight_scale=cfg.tile_weight_scale)

    def _make_eval_windows(self) -> np.ndarray:
        T = self.cfg.lm.seq_len
        val = self.corpus.val
        n = max(1, min(self.cfg.eval_tokens // T, (len(val) - 1) // T))
        starts = np.linspace(0, len(val) - T - 1, n).astype(np.int64)
        return np.stack([val[s:s + T + 1] for s in starts])

    # -------------------------------------------------------------------- one step
    def _batch(self):
        T = self.cfg.lm.seq_len
        train = self.corpus.train
        starts = self.rng.integers(0, len(train) - T - 1, self.cfg.batch_size)
        w = np.stack([train[s:s + T + 1] for s in starts])
        return w[:, :-1], w[:, 1:]

    def train_step(self) -> float:
        cfg = self.cfg
        ratio = lr_ratio(self.step, cfg.steps, cfg.warmup_fraction, cfg.min_lr_ratio)
        X, Y = self._batch()
        _, loss = self.model.forward(X, Y)                    # forward through the tiles
        if not math.isfinite(loss):
            raise DivergenceError(f"training loss became {loss} at step {self.step}; the run is stopped.")
        grads = self.model.backward()                          # backward through the tiles
        for k, g in grads.items():                             # digital parameters: AdamW
            p = self.model.params[k]
            upd = self.other_opts[k].step(g.reshape(self.other_opts[k].shape), cfg.lr_other * ratio, ratio)
            if upd is not None:
                p -= upd.delta().reshape(p.shape).astype(p.dtype)
        lr = cfg.lr * ratio
        for name, holder in self.model.mats.items():           # weight matrices
            if cfg.method == "tiki_taka":
                Xi, dY = self.model.io[name]
                holder.apply_rank1(Xi, dY, lr)                 # n_tokens rank-1 terms onto A, transfer to C
                continue
            G = self.model.weight_grad(name)                   # digital G = dY^T X
            self.gradient_flops += self.model.weight_grad_flops(name)
            upd = self.opts[name].step(G, lr, ratio)
            if upd is not None:
                holder.apply(upd)                              # pulses (tiles) or exact (digital)
        self.step += 1
        return loss

    # -------------------------------------------------------------------- evaluation and records
    def _save_counters(self):
        saved = []
        for h in self.model.mats.values():
            for t in _all_counter_dicts(h):
                saved.append((t, dict(t)))
            if isinstance(h, DigitalMatrix):
                saved.append((h, h.flops))
        return saved, self.model.flops

    @staticmethod
    def _restore_counters(saved):
        items, model_flops = saved
        for obj, val in items:
            if isinstance(obj, DigitalMatrix):
                obj.flops = val
            else:
                obj.clear()
                obj.update(val)
        return model_flops

    def evaluate(self) -> float:
        """Mean validation cross-entropy (nats/char) on the fixed windows; training budgets are not charged."""
        saved = self._save_counters()
        W = self._eval_windows
        B = max(1, self.cfg.batch_size)
        tot = 0.0
        for i in range(0, len(W), B):
            w = W[i:i + B]
            _, loss = self.model.forward(w[:, :-1], w[:, 1:])
            tot += loss * len(w)
        self.model.flops = self._restore_counters(saved)
        return tot / len(W)

    def record(self) -> None:
        vl = self.evaluate()
        tl = float(np.mean(self._train_losses)) if self._train_losses else float("nan")
        self._train_losses = []
        ev = self.event_counts()
        self.rec_steps.append(self.step)
        self.rec["train_loss"].append(tl)
        self.rec["val_loss"].append(vl)
        self.rec["val_ppl"].append(float(math.exp(vl)) if vl < 700 else float("inf"))
        self.rec["pulses"].append(float(ev.n_pulses))
        self.rec["pulse_cycles"].append(float(ev.n_pulse_cycles))
        self.rec["wall_time_s"].append(self.elapsed_s + time.perf_counter() - self._t0)
        if not math.isfinite(vl):
            raise DivergenceError(f"validation loss became {vl} at step {self.step}; the run is stopped.")

    def run(self, progress: Callable[[int, dict], None] | None = None,
            step_hook: Callable[["LowRankTrainer"], None] | None = None) -> None:
        """Train up to ``cfg.steps`` (continuing a restored trainer). ``progress(step, info)`` and
        ``step_hook(trainer)`` (the engine saves checkpoints there) after every step."""
        cfg = self.cfg
        self._t0 = time.perf_counter()
        try:
            if not self.rec_steps:
                self.record()
            while self.step < cfg.steps:
                self._train_losses.append(self.train_step())
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self.record()
                if progress is not None:
                    progress(self.step, {"loss": self._train_losses[-1] if self._train_losses else None,
                                         "val_ppl": self.rec["val_ppl"][-1]})
                if step_hook is not None:
                    now = time.perf_counter()
                    self.elapsed_s += now - self._t0
                    self._t0 = now
                    step_hook(self)
        finally:
            self.elapsed_s += time.perf_counter() - self._t0
            self._t0 = time.perf_counter()

    # -------------------------------------------------------------------- budgets
    def event_counts(self) -> EventCounts:
        ev = EventCounts()
        for h in self.model.mats.values():
            for counters, shape in _event_arrays(h):
                ev.add_tile(counters, shape)
        opts = list(self.opts.values()) + list(self.other_opts.values())
        ev.optimizer_flops = int(sum(sum(o.flops.values()) for o in opts))
        ev.state_bytes_moved = int(sum(o.bytes_moved for o in opts))
        ev.gradient_flops = int(self.gradient_flops)
        ev.model_flops = int(self.model.flops + sum(h.flops for h in self.model.mats.values()
                                                    if isinstance(h, DigitalMatrix)))
        return ev

    def memory(self) -> dict:
        """Digital optimiser-state bytes (float32) and analog state devices."""
        mats = sum(o.state_bytes() for o in self.opts.values())
        other = sum(o.state_bytes() for o in self.other_opts.values())
        peak = max([4 * sum(o.transient_floats().values()) for o in self.opts.values()] or [0])
        analog_state = 0
        if self.cfg.method == "tiki_taka":
            analog_state = int(sum(np.prod(h.shape) for h in self.model.mats.values()))
        return {"optimizer_state_matrices": mats, "optimizer_state_other": other,
                "optimizer_state_total": mats + other, "transient_peak": peak,
                "analog_state_devices": analog_state, "weights_matrices": 4 * self.model.n_params()["matrices"],
                "weights_other": 4 * self.model.n_params()["digital"]}

    def budget(self) -> Budget:
        return compute_budget(self.event_counts(), self.cfg.energy, self.memory())

    def tile_summary(self) -> dict:
        out = {}
        for name, h in self.model.mats.items():
            out[name] = {"kind": h.kind, "shape": list(h.shape), "counters": h.counters,
                         "arrays": {a: dict(t.counters) for a, t in h.arrays.items()}}
        return out

    def result(self, wall, status="complete", error="") -> LowRankResult:
        vp = self.rec["val_ppl"]
        return LowRankResult(
            config=self.cfg.to_dict(), seed=int(self.seed) if isinstance(self.seed, (int, np.integer)) else 0,
            steps=np.asarray(self.rec_steps, np.int64),
            metrics={k: np.asarray(v, np.float64) for k, v in self.rec.items()},
            budget=self.budget(), memory=self.memory(), tiles=self.tile_summary(),
            final_val_ppl=float(vp[-1]) if vp else float("nan"), wall_time_s=wall, status=status, error=error)


def _event_arrays(holder):
    """(counters, shape) of every physical array of a holder, with read and pulse counters."""
    if isinstance(holder, TikiTakaMatrix):
        t = holder.tile
        reads = {k: t.counters.get(k, 0) for k in ("mvm", "dac", "adc")}  # forward/backward of C, transfer reads of A
        return [(reads, t.shape), (t.a.counters, t.a.shape), (t.c.counters, t.c.shape)]
    if isinstance(holder, AnalogMatrix):
        return [(holder.tile.counters, holder.tile.shape)]
    return []


def _all_counter_dicts(holder):
    if isinstance(holder, TikiTakaMatrix):
        return [holder.tile.counters, holder.tile.a.counters, holder.tile.c.counters]
    if isinstance(holder, AnalogMatrix):
        return [holder.tile.counters]
    return []


def train_lm(cfg: LowRankRunConfig, seed: int = 0, corpus: CharCorpus | None = None,
             progress=None, threads: int | None = 1) -> LowRankResult:
    """Run ``cfg`` and return its :class:`LowRankResult` (a diverging run stops with status ``diverged``).

    ``threads``: BLAS threads during the run (see :func:`blas_threads`; BLAS may round the last bits
    differently with another thread count).
    """
    t0 = time.perf_counter()
    with blas_threads(threads):
        tr = LowRankTrainer(cfg, seed, corpus)
        try:
            tr.run(progress)
        except DivergenceError as exc:
            return tr.result(time.perf_counter() - t0, status="diverged", error=str(exc))
        return tr.result(time.perf_counter() - t0)


def perfect_tile(device=None, update: UpdateParameters | None = None) -> TileConfig:
    """A tile config with perfect periphery (exact MVMs), for isolating the update's effects."""
    kw = {"forward": IOParameters(is_perfect=True), "backward": IOParameters(is_perfect=True)}
    if device is not None:
        kw["device"] = device
    if update is not None:
        kw["update"] = update
    return TileConfig(**kw)
