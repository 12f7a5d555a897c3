"""Training loops on simulated tiles: digital SGD, analog SGD and Tiki-Taka on least squares.

One step reads top to bottom (nanoGPT style): forward through the tile -> error signal (with gradient
noise) -> pulsed update (analog SGD: onto W; Tiki-Taka: onto A, then transfer A -> C on schedule) -> log.
Digital SGD is the floating-point reference with the same error signals.

>>> from crossbar_sim.least_squares.training import TrainConfig, train
>>> from crossbar_sim.least_squares.task import LeastSquaresTask
>>> res = train(LeastSquaresTask(noise_std=0.0), TrainConfig(algorithm="digital_sgd", steps=20), seed=0)
>>> res.metrics["loss"][-1] < res.metrics["loss"][0]
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..validation import check_choice, check_float, check_int
from ..tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound, TransferParams
from ..config import Config
from ..errors import DivergenceError
from ..tiles.onesided import check_array_device, make_array
from ..tiles.params import IOParameters, UpdateParameters
from ..rng import make_seedseq
from .task import LeastSquares
from ..tiles.analog import AnalogTile

ALGORITHMS = ("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad")

#: units of the recorded metrics (stored as HDF5 attributes)
METRIC_UNITS = {
    "loss": "f(W) = 1/2 ||A W^T - B||^2 (dimensionless, weight units squared)",
    "grad_norm2": "||grad f(W)||_F^2",
    "dist2": "||W - W*||_F^2",
    "pulses": "device pulses applied so far (all arrays of the tile)",
    "w_inf": "|W|_inf = max_ij |W_ij| of the weights the task sees (weight units; Theorem 2's S_K uses it)",
}


def _default_ls_device():
    from crossbar_sim.device_models import asymmetric_linear_device

    return asymmetric_linear_device(tau=1.0)


def _perfect_io():
    return IOParameters(is_perfect=True)


@dataclass(frozen=True, repr=False)
class TrainConfig(Config):
    """One training run on least squares.

    Parameters
    ----------
    algorithm : str
        ``digital_sgd`` (floating point), ``analog_sgd`` (gradient pulsed onto W), ``tiki_taka`` (v1), or
        the buffered variants ``ttv2``, ``chopped_ttv2`` and ``agad`` (:mod:`crossbar_sim.tiles.buffered`, with
        their default buffer/chopper parameters and the v1 hyper-parameters of ``transfer``).
    device : PulsedDevice or OneSidedUnitCell
        Device of the weight tile (and of Tiki-Taka's A and C unless ``device_c`` is set); a
        :class:`~crossbar_sim.tiles.onesided.OneSidedUnitCell` (the ``PCM`` preset) makes each array a one-sided pair
        with refresh. Default: the paper's asymmetric linear device with tau = 1 and no variation.
    device_c : PulsedDevice, OneSidedUnitCell or None
        Device of Tiki-Taka's C array (None: same as ``device``).
    lr : float
        SGD learning rate (> 0).
    steps : int
        Training steps (one gradient each, written as ``out_size`` or ``n_samples`` rank-1 pulsed updates).
    update : UpdateParameters
        Pulse scheme of the gradient updates.
    forward, backward : IOParameters
        Periphery of the tile's MVMs (perfect by default for least squares).
    transfer : TransferParams
        Tiki-Taka transfer hyper-parameters. Default for least squares: ``fast_lr = 0.02``, one column per
        step, and exact column reads (the setting of the paper's analysis; aihwkit's default transfer read
        has 0.06 output noise and a 0.047 ADC step in weight units, larger than A's entries here).
    record_every : int
        Record metrics every this many steps (step 0 and the last step are always recorded).
    snapshot_every : int
        Keep a weight snapshot of every array every this many steps (0: only the final weights).
    inference : InferenceEvalConfig or None
        Evaluate the final weights on inference tiles (loss at times after programming; :mod:`crossbar_sim.inference`;
        None: no evaluation).
    """

    algorithm: str = "analog_sgd"
    device: Config = field(default_factory=_default_ls_device)
    device_c: Any = None
    lr: float = 0.1
    steps: int = 500
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=_perfect_io)
    backward: IOParameters = field(default_factory=_perfect_io)
    transfer: TransferParams = field(default_factory=lambda: TransferParams(
        fast_lr=0.02, transfer_forward=IOParameters(is_perfect=True)))
    record_every: int = 1
    snapshot_every: int = 0
    inference: Any = None

    def validate(self) -> None:
        from ..inference.evaluate import as_eval_config

        owner = type(self).__name__
        object.__setattr__(self, "inference", as_eval_config(self.inference, owner))
        check_choice(self.algorithm, "algorithm", owner, ALGORITHMS)
        check_float(self.lr, "lr", owner, 0.0, closed_lo=False)
        check_int(self.steps, "steps", owner, 0, 10**9)
        check_int(self.record_every, "record_every", owner, 1, 10**9)
        check_int(self.snapshot_every, "snapshot_every", owner, 0, 10**9)
        check_array_device(self.device, "device", owner)
        check_array_device(self.device_c, "device_c", owner, optional=True)


@dataclass
class RunResult:
    """What one run returns (picklable; written to HDF5 by the parent process).

    Attributes
    ----------
    config : dict
        ``{"task": ..., "train": ...}`` as JSON-able dicts.
    seed : int
    steps : ndarray of int64
        Recorded step indices.
    metrics : dict of str -> ndarray
        One value per recorded step (units in :data:`METRIC_UNITS`).
    snapshots : dict of int -> dict of str -> ndarray
        Weights of every array at the snapshot steps.
    tile_state : dict or None
        Final state of the tile (``get_state()``; None for digital SGD).
    wall_time_s : float
    status : str
        ``complete`` or ``diverged``.
    error : str
    inference : dict or None
        :func:`crossbar_sim.inference.evaluate_after_training` of the final weights when ``config.inference`` is set.
    """

    config: dict
    seed: int
    steps: np.ndarray
    metrics: dict
    snapshots: dict = field(default_factory=dict)
    tile_state: dict | None = None
    wall_time_s: float = 0.0
    status: str = "complete"
    error: str = ""
    inference: dict | None = None

    def final(self, name: str = "loss") -> float:
        return float(self.metrics[name][-1])


class DigitalWeights:
    """Floating-point weights with the tile interface subset the trainer uses (digital SGD)."""

    def __init__(self, shape):
        self.w = np.zeros(shape, np.float64)
        self.counters = {"n_pulses": 0}

    def forward(self, X):
        return X.astype(np.float64) @ self.w.T

    def update(self, X, D, lr):
        self.w -= lr * (D.astype(np.float64).T @ X.astype(np.float64))

    def read_weights(self):
        with np.errstate(over="ignore"):
            return self.w.astype(np.float32)

    @property
    def tiles(self):
        return {"W": self}

    def get_state(self):
        return {"kind": "DigitalWeights", "weights": self.w.copy()}

    def set_state(self, state):
        self.w = np.asarray(state["weights"], np.float64).copy()


def build_model(shape, cfg: TrainConfig, seed):
    """The weight holder of a run: digital weights, an analog tile (or one-sided pair) or a Tiki-Taka (v1 or
    buffered) tile."""
    if cfg.algorithm == "digital_sgd":
        return DigitalWeights(shape)
    if cfg.algorithm == "analog_sgd":  # an AnalogTile, or a OneSidedTile for a one-sided unit cell (PCM pair)
        return make_array(shape[0], shape[1], cfg.device, cfg.update, cfg.forward, cfg.backward, seed=seed)
    if cfg.algorithm == "tiki_taka":
        comp = TransferCompound.from_params(cfg.transfer, cfg.device, cfg.device_c)
        cc = CompoundTileConfig(device=comp, update=cfg.update, forward=cfg.forward, backward=cfg.backward)
        return TikiTakaTile(shape[0], shape[1], cc, seed=seed)
    from ..tiles.buffered import BufferedTransfer, BufferedTransferTile, ChoppedTransfer, DynamicTransfer, \
        with_transfer_params

    cls = {"ttv2": BufferedTransfer, "chopped_ttv2": ChoppedTransfer, "agad": DynamicTransfer}[cfg.algorithm]
    kw = {} if cls is BufferedTransfer else {"units_in_mbatch": cfg.transfer.units_in_mbatch}
    comp = with_transfer_params(cls, cfg.transfer, cfg.device, cfg.device_c, **kw)
    cc = CompoundTileConfig(device=comp, update=cfg.update, forward=cfg.forward, backward=cfg.backward)
    return BufferedTransferTile(shape[0], shape[1], cc, seed=seed)


def _arrays(model) -> dict:
    if isinstance(model, TikiTakaTile):
        return {"A": model.a, "C": model.c}
    if isinstance(model, AnalogTile):
        return {"W": model}
    return {"W": model}


def _total_pulses(model) -> int:
    if isinstance(model, TikiTakaTile):
        return int(model.a.counters["n_pulses"] + model.c.counters["n_pulses"])
    return int(model.counters.get("n_pulses", 0))


class Trainer:
    """A least-squares training run that can be stopped, saved (``state_dict``) and resumed bit-identically.

    Parameters
    ----------
    task : LeastSquaresTask or LeastSquares
    config : TrainConfig
    seed : int or SeedSequence
        Run seed: the tile's construction seed and the gradient-noise stream are spawned from it.
    """

    def __init__(self, task, config: TrainConfig, seed=0):
        self.task = task if isinstance(task, LeastSquares) else LeastSquares(task)
        self.config = config
        self.seed = seed
        ss = make_seedseq(seed)
        s_model, s_noise = ss.spawn(2)
        self.model = build_model(self.task.shape, config, s_model)
        self.rng = np.random.default_rng(s_noise)
        self.step = 0
        self.rec_steps: list[int] = []
        self.rec: dict[str, list[float]] = {k: [] for k in METRIC_UNITS}
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        cfg = self.config
        X, B, scale = self.task.batch(self.rng)
        Y = self.model.forward(X)                                   # forward through the tile
        Xu, Du = self.task.update_signals(X, Y, B, scale, self.rng)  # noisy gradient as rank-1 terms
        self.model.update(Xu, Du, cfg.lr)                           # pulsed update (+ transfer for TT)
        self.step += 1

    def record(self) -> None:
        with np.errstate(all="ignore"):  # a diverging run is reported below, not through warnings
            W = self.model.read_weights()
            loss = self.task.loss(W)
            grad2 = self.task.grad_norm2(W)
        self.rec_steps.append(self.step)
        self.rec["loss"].append(loss)
        self.rec["grad_norm2"].append(grad2)
        self.rec["dist2"].append(float(np.sum((W.astype(np.float64) - self.task.W_star) ** 2)))
        self.rec["pulses"].append(float(_total_pulses(self.model)))
        self.rec["w_inf"].append(float(np.max(np.abs(W))) if W.size else 0.0)
        if not math.isfinite(loss):
            raise DivergenceError(f"loss became {loss} at step {self.step}; the run is stopped.")

    def snapshot(self) -> None:
        self.snapshots[self.step] = {k: t.read_weights() for k, t in _arrays(self.model).items()}

    def run(self, steps: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Train until ``steps`` (default: the configured number) have been done in total."""
        cfg = self.config
        target = cfg.steps if steps is None else steps
        if self.step == 0 and not self.rec_steps:
            self.record()
            if cfg.snapshot_every:
                self.snapshot()
        while self.step < target:
            self.train_step()
            if self.step % cfg.record_every == 0 or self.step == target:
                self.record()
            if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                self.snapshot()
            if progress is not None:
                progress(self.step)

    # ------------------------------------------------------------------ results and state
    def result(self, wall_time_s=0.0, status="complete", error="") -> RunResult:
        state = None if self.config.algorithm == "digital_sgd" else self.model.get_state()
        snaps = dict(self.snapshots)
        snaps.setdefault(self.step, {k: t.read_weights() for k, t in _arrays(self.model).items()})
        return RunResult(
            config={"task": self.task.spec.to_dict(), "train": self.config.to_dict()},
            seed=int(self.seed) if isinstance(self.seed, (int, np.integer)) else 0,
            steps=np.asarray(self.rec_steps, np.int64),
            metrics={k: np.asarray(v, np.float64) for k, v in self.rec.items()},
            snapshots=snaps,
            tile_state=state,
            wall_time_s=wall_time_s,
            status=status,
            error=error,
        )

    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (model, RNG, step, records)."""
        return {
            "step": self.step,
            "model": self.model.get_state(),
            "rng": self.rng.bit_generator.state,
            "rec_steps": list(self.rec_steps),
            "rec": {k: list(v) for k, v in self.rec.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.model.set_state(state["model"])
        self.rng.bit_generator.state = state["rng"]
        self.rec_steps = list(state["rec_steps"])
        # a state written before a metric existed gets nan for it at the steps already recorded
        missing = [float("nan")] * len(self.rec_steps)
        self.rec = {k: list(state["rec"].get(k, missing)) for k in METRIC_UNITS}


def train(task, config: TrainConfig, seed=0, progress=None) -> RunResult:
    """Run ``config`` on ``task`` and return its :class:`RunResult`.

    A diverging run (non-finite loss) stops with status ``diverged`` and keeps its record so far.
    """
    t0 = time.perf_counter()
    tr = Trainer(task, config, seed)
    try:
        tr.run(progress=progress)
    except DivergenceError as exc:
        return tr.result(time.perf_counter() - t0, status="diverged", error=str(exc))
    res = tr.result(time.perf_counter() - t0)
    if config.inference is not None:  # final weights on inference tiles (the store writes res.inference)
        from ..inference.evaluate import evaluate_after_training

        res.inference = evaluate_after_training(tr, config.inference, seed)
    return res

