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
from ..tiles.onesided import check_array_device
from ..tiles.params import IOParameters, UpdateParameters
from ..rng import make_seedseq
from .task import LeastSquares
from ..tiles.analog import AnalogTile

ALGORITHMS = ("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad", "mixed_precision")

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
        ``digital_sgd`` (floating point), ``analog_sgd`` (gradient pulsed onto W), ``tiki_taka`` (v1), the
        buffered variants ``ttv2``, ``chopped_ttv2`` and ``agad`` (:mod:`crossbar_sim.tiles.buffered`, with
        their default buffer/chopper parameters, the v1 hyper-parameters of ``transfer`` and ``transfer_extra``),
        or ``mixed_precision`` (:mod:`crossbar_sim.tiles.mixed_precision`, options in ``transfer_extra``).
    algorithm_preset : str
        A preset instead of ``algorithm`` (which must then stay at its default): aihwkit's ``build_config`` names
        (``sgd``, ``ttv1``, ``ttv2``, ``c-ttv2``, ``agad``, ``mp`` and their aliases), ours (``ours-c-ttv2``,
        ``ours-agad``), built with ``device``, ``forward``/``backward`` and ``update`` as aihwkit's
        ``build_config(name, device, io_parameters, up_parameters)``; or an aihwkit preset RPU config by class name
        (``ChoppedTTv2EcRamPreset``, ...), which brings its own device, periphery and update. See
        :mod:`crossbar_sim.presets`. "" (default): use ``algorithm``.
    transfer_extra : dict
        Fields of the algorithm's compound to change (``{"in_chop_prob": 0.05, "auto_scale": true}``; with a preset,
        on top of the preset's); dotted keys reach single entries (``train.transfer_extra.auto_scale = true``).
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
    algorithm_preset: str = ""
    transfer_extra: dict = field(default_factory=dict)
    inference: Any = None

    def validate(self) -> None:
        from ..inference.evaluate import as_eval_config

        owner = type(self).__name__
        object.__setattr__(self, "inference", as_eval_config(self.inference, owner))
        check_choice(self.algorithm, "algorithm", owner, ALGORITHMS)
        check_run_preset(self, owner, "analog_sgd")
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


def check_run_preset(cfg, owner: str, default_algorithm: str) -> None:
    """Checks shared by the run configs (least squares, networks): a known ``algorithm_preset``, not together with
    a non-default ``algorithm``, and a ``transfer_extra`` table with string keys."""
    from ..errors import ConfigError

    if not isinstance(cfg.transfer_extra, dict) or not all(isinstance(k, str) for k in cfg.transfer_extra):
        raise ConfigError(f"The 'transfer_extra' parameter of {owner} must be a table of compound fields. Got "
                          f"{cfg.transfer_extra!r}.")
    if not isinstance(cfg.algorithm_preset, str):
        raise ConfigError(f"The 'algorithm_preset' parameter of {owner} must be a string. Got "
                          f"{cfg.algorithm_preset!r}.")
    if cfg.algorithm_preset:
        from ..presets import check_preset_name

        check_preset_name(cfg.algorithm_preset, "algorithm_preset")
        if cfg.algorithm != default_algorithm:
            raise ConfigError(f"{owner}: give either 'algorithm' ({cfg.algorithm!r}) or 'algorithm_preset' "
                              f"({cfg.algorithm_preset!r}), not both (a preset names its algorithm).")
        if getattr(cfg, "device_c", None) is not None:
            raise ConfigError(f"{owner}: 'device_c' is not used with 'algorithm_preset' (a preset uses one device "
                              f"for every array, as aihwkit's build_config).")


def algorithm_tile_config(cfg, device, device_c=None):
    """The tile config of a run's ``algorithm`` (not digital SGD) with ``device`` (and C's ``device_c``), its update,
    periphery, ``transfer`` and ``transfer_extra``; or of its ``algorithm_preset``. Shared by the least-squares and
    network runs."""
    from ..presets import tile_config_for, with_compound_options
    from ..tiles.buffered import BufferedTransfer, ChoppedTransfer, DynamicTransfer, with_transfer_params
    from ..tiles.mixed_precision import MixedPrecisionCompound, MixedPrecisionTileConfig

    extra = dict(cfg.transfer_extra)
    if cfg.algorithm_preset:
        return tile_config_for(cfg.algorithm_preset, device, cfg.forward, cfg.backward, cfg.update, extra)
    io = dict(update=cfg.update, forward=cfg.forward, backward=cfg.backward)
    if cfg.algorithm == "analog_sgd":
        from ..presets import array_tile_config

        return array_tile_config(device, cfg.update, cfg.forward, cfg.backward)
    if cfg.algorithm == "mixed_precision":
        return with_compound_options(MixedPrecisionTileConfig(device=MixedPrecisionCompound(device=device), **io),
                                     extra, "transfer_extra")
    if cfg.algorithm == "tiki_taka":
        comp = TransferCompound.from_params(cfg.transfer, device, device_c)
        return with_compound_options(CompoundTileConfig(device=comp, **io), extra, "transfer_extra")
    cls = {"ttv2": BufferedTransfer, "chopped_ttv2": ChoppedTransfer, "agad": DynamicTransfer}[cfg.algorithm]
    kw = {} if cls is BufferedTransfer else {"units_in_mbatch": cfg.transfer.units_in_mbatch}
    comp = with_transfer_params(cls, cfg.transfer, device, device_c, **kw)
    return with_compound_options(CompoundTileConfig(device=comp, **io), extra, "transfer_extra")


def build_model(shape, cfg: TrainConfig, seed):
    """The weight holder of a run: digital weights, or the tile of its algorithm (an analog tile, one-sided pair,
    vector cell, Tiki-Taka v1 / buffered tile or mixed-precision tile) or of its ``algorithm_preset``."""
    from ..tiles.factory import build_tile

    if cfg.algorithm == "digital_sgd" and not cfg.algorithm_preset:
        return DigitalWeights(shape)
    return build_tile(shape[0], shape[1], algorithm_tile_config(cfg, cfg.device, cfg.device_c), seed=seed)


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
        self._post_update = hasattr(self.model, "post_update_step")
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
        if self._post_update:
            self.model.post_update_step()                           # device decay / diffusion (aihwkit)
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

