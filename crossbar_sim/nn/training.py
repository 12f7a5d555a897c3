"""Training a network on tiles with real data (MNIST, Fashion-MNIST): config, loop, evaluation.

One step reads top to bottom: forward through every layer (tiles through their periphery) -> softmax
cross-entropy -> backward (tiles' transposed MVMs) -> step: every tile's pulsed update with its layer input and
output gradient (analog SGD: onto W; Tiki-Taka family: onto A, then transfers on schedule) and plain SGD on the
digital parameters (biases, output scales). After every epoch: test accuracy through the same analog forward
pass, metrics, and (every ``snapshot_every`` epochs) snapshots of every array of every tile.

A non-finite loss stops the run with :class:`~crossbar_sim.errors.DivergenceError`; the epochs finished before
are kept (in the trainer and in the HDF5 file written by ``crossbar-sim train``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..validation import check_bool, check_choice, check_float, check_int
from ..tiles.tiki_taka import TransferParams
from ..config import Config
from ..errors import ConfigError, DivergenceError, NonFiniteError
from ..inference import hwa
from ..inference.evaluate import as_eval_config
from ..kernels.rng import sub_key_py
from ..rng import key_from_seedseq
from ..tiles.params import IOParameters, UpdateParameters
from . import functional as F
from .layers import TileArray, analog_arrays, tile_arrays
from .models import ALGORITHMS, MODELS, build_model, n_weight_layers
from .schedules import SCHEDULES, lr_at

METRIC_UNITS = {
    "test_acc": "fraction of test images classified correctly (analog forward with periphery)",
    "test_loss": "mean NLL of log-softmax on the test set",
    "train_loss": "mean NLL of log-softmax over the epoch's mini-batches (during training)",
    "train_acc": "fraction of training images classified correctly during the epoch",
    "lr": "SGD learning rate of the epoch",
    "epoch_time_s": "wall time of the epoch's training (s)",
    "pulses": "device pulses applied so far (all arrays, all layers)",
    "transfers": "transfer events so far (all layers)",
    "out_scale_min": "smallest learnable output scale over the weight layers (NaN without learn_out_scaling)",
    "out_scale_last": "learnable output scale of the last weight layer (NaN without learn_out_scaling); a collapse "
                      "to ~0 stops the error from reaching every tile",
}


def _paper_transfer():
    return TransferParams(fast_lr=0.01, n_reads_per_transfer=1, transfer_every=1.0)


@dataclass(frozen=True, repr=False)
class NetConfig(Config):
    """One training run of a network on tiles.

    Parameters
    ----------
    dataset : str
        ``mnist`` or ``fashion-mnist`` (see :mod:`crossbar_sim.datasets`).
    model : str
        ``fcn`` (784-256-128-10, sigmoid) or ``cnn`` (the paper's LeNet-style network).
    algorithm : str
        ``digital_sgd``, ``analog_sgd``, ``tiki_taka`` (v1), ``ttv2``, ``chopped_ttv2``, ``agad`` or
        ``mixed_precision``.
    algorithm_preset : str
        A preset instead of ``algorithm`` (which must stay at its default): aihwkit's ``build_config`` names
        (``sgd``, ``ttv1``, ``ttv2``, ``c-ttv2``, ``agad``, ``mp``, ...) and ours (``ours-c-ttv2``, ``ours-agad``), built
        with the run's device, ``forward``/``backward`` and ``update``; or an aihwkit preset RPU config by class name
        (its own device and periphery). See :mod:`crossbar_sim.presets`. "": use ``algorithm``.
    analog_layers : str
        ``all`` or a comma-separated list of weight-layer indices (0-based) that live on analog tiles; the others
        are digital.
    tau : float
        Device bound ``w_max = -w_min = tau`` of the default device (SoftBoundsReference, aihwkit defaults
        otherwise), used when ``device`` is None.
    device : PulsedDevice, OneSidedUnitCell or None
        Device of every analog array (overrides ``tau``); a one-sided unit cell (the ``PCM`` preset) makes every
        array a plus-minus pair with refresh.
    lr : float
        SGD learning rate (the paper: 0.05 analog, 0.1 digital).
    batch_size, epochs : int
    schedule : str
        ``step`` (StepLR(lr_step, lr_gamma), the paper's 35 and 0.1), ``constant`` or ``cosine``.
    update, forward, backward : UpdateParameters, IOParameters
        Pulse scheme and periphery of the tiles (aihwkit defaults).
    transfer : TransferParams
        Transfer hyper-parameters of the Tiki-Taka family (fast_lr 0.01, one column read per transfer, every
        mini-batch, as the paper).
    transfer_extra : dict
        Fields of the algorithm's compound to change (Tiki-Taka family, mixed precision; e.g.
        ``{"in_chop_prob": 0.05}``; on top of a preset's); ``--set transfer_extra.auto_scale=true`` sets one.
    learn_out_scaling, digital_bias : bool
        aihwkit mapping options of analog layers (both on in the paper).
    max_input_size, max_output_size : int
        aihwkit ``MappingParameter`` tile sizes (default 512, aihwkit's): an analog layer with more inputs (outputs)
        lives on a grid of near-equal tiles, each with its own periphery, pulse update and output scale, the bias
        digital (the paper's FCN: its 784-input layer on two 392-input tiles); 0 turns the split off.
    n_train, n_test : int
        Use the first n images (0: all).
    snapshot_every : int
        Store every array of every tile every this many epochs (0: only at the end), with the layers' digital
        biases and output scales (``digital/bias``, ``digital/out_scale``).
    modifier : WeightModifier
        Hardware-aware training: weight noise of the forward and backward pass, one draw per mini-batch
        (:mod:`crossbar_sim.inference.hwa`; default none).
    clip : WeightClip
        Hardware-aware training: weight clipping after every step (default none).
    inference : InferenceEvalConfig or None
        Evaluate the trained network on inference tiles at the end of the run (:mod:`crossbar_sim.inference`;
        None: no evaluation).
    """

    dataset: str = "mnist"
    model: str = "fcn"
    algorithm: str = "tiki_taka"
    analog_layers: str = "all"
    tau: float = 0.78
    device: Any = None
    lr: float = 0.05
    batch_size: int = 10
    epochs: int = 10
    schedule: str = "step"
    lr_step: int = 35
    lr_gamma: float = 0.1
    update: UpdateParameters = field(default_factory=UpdateParameters)
    forward: IOParameters = field(default_factory=IOParameters)
    backward: IOParameters = field(default_factory=IOParameters)
    transfer: TransferParams = field(default_factory=_paper_transfer)
    transfer_extra: dict = field(default_factory=dict)
    learn_out_scaling: bool = True
    digital_bias: bool = True
    max_input_size: int = 512
    max_output_size: int = 512
    n_train: int = 0
    n_test: int = 0
    eval_batch: int = 1000
    snapshot_every: int = 5
    algorithm_preset: str = ""
    modifier: hwa.WeightModifier = field(default_factory=hwa.WeightModifier)
    clip: hwa.WeightClip = field(default_factory=hwa.WeightClip)
    inference: Any = None

    def validate(self) -> None:
        from crossbar_sim.datasets import DATASETS
        from crossbar_sim.tiles.onesided import check_array_device

        owner = type(self).__name__
        check_choice(self.dataset, "dataset", owner, tuple(sorted(DATASETS)))
        check_choice(self.model, "model", owner, MODELS)
        check_choice(self.algorithm, "algorithm", owner, ALGORITHMS)
        check_float(self.tau, "tau", owner, 0.0, 1e6, closed_lo=False)
        check_float(self.lr, "lr", owner, 0.0, 1e6, closed_lo=False)
        check_int(self.batch_size, "batch_size", owner, 1, 1 << 20)
        check_int(self.epochs, "epochs", owner, 0, 1 << 20)
        check_choice(self.schedule, "schedule", owner, SCHEDULES)
        check_int(self.lr_step, "lr_step", owner, 1, 1 << 20)
        check_float(self.lr_gamma, "lr_gamma", owner, 0.0, 1e6, closed_lo=False)
        check_bool(self.learn_out_scaling, "learn_out_scaling", owner)
        check_bool(self.digital_bias, "digital_bias", owner)
        check_int(self.max_input_size, "max_input_size", owner, 0, 1 << 30)
        check_int(self.max_output_size, "max_output_size", owner, 0, 1 << 30)
        check_int(self.n_train, "n_train", owner, 0, 60000)
        check_int(self.n_test, "n_test", owner, 0, 10000)
        check_int(self.eval_batch, "eval_batch", owner, 1, 1 << 20)
        check_int(self.snapshot_every, "snapshot_every", owner, 0, 1 << 20)
        check_array_device(self.device, "device", owner, optional=True)
        if not isinstance(self.transfer_extra, dict):
            raise ConfigError(f"The 'transfer_extra' parameter of {owner} must be a dict. Got {self.transfer_extra!r}.")
        from ..least_squares.training import check_run_preset

        check_run_preset(self, owner, "tiki_taka")
        for name, typ in (("modifier", hwa.WeightModifier), ("clip", hwa.WeightClip)):
            if not isinstance(getattr(self, name), typ):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a {typ.__name__}. "
                                  f"Got {getattr(self, name)!r} instead.")
        hwa.check_hwa(self)
        object.__setattr__(self, "inference", as_eval_config(self.inference, owner))
        self.analog_mask()

    def resolved_device(self):
        """The device of the analog arrays: ``device`` or SoftBoundsReference(w_max = -w_min = tau), aihwkit defaults."""
        if self.device is not None:
            return self.device
        from crossbar_sim.device_models import asymmetric_linear_device

        return asymmetric_linear_device(self.tau, dw_min=1e-3, variations=True)

    def analog_mask(self) -> list:
        n = n_weight_layers(self.model)
        if self.analog_layers.strip() == "all":
            return [True] * n
        if self.analog_layers.strip() in ("", "none"):
            return [False] * n
        try:
            idx = {int(s) for s in self.analog_layers.split(",") if s.strip()}
        except ValueError:
            idx = None
        if idx is None or any(i < 0 or i >= n for i in idx):
            raise ConfigError(f"The 'analog_layers' parameter of NetConfig must be 'all', 'none' or comma-separated "
                              f"layer indices in [0, {n - 1}]. Got {self.analog_layers!r} instead.")
        return [i in idx for i in range(n)]


def prepare_data(cfg: NetConfig, data: dict | None = None) -> dict:
    """Float32 inputs in [0, 1] (pixels / 255, no normalisation, as the paper), flattened for the FCN."""
    from crossbar_sim.datasets import load_dataset

    raw = load_dataset(cfg.dataset) if data is None else data
    out = {}
    for split, n in (("train", cfg.n_train), ("test", cfg.n_test)):
        x = raw[f"x_{split}"]
        y = raw[f"y_{split}"]
        if n:
            x, y = x[:n], y[:n]
        x = x.astype(np.float32) / np.float32(255.0)
        x = x.reshape(x.shape[0], -1) if cfg.model == "fcn" else x.reshape(x.shape[0], 1, 28, 28)
        out[f"x_{split}"] = np.ascontiguousarray(x)
        out[f"y_{split}"] = y.astype(np.int64)
    return out


def _counter_sum(model, key):
    tot = 0
    for layer in model.weight_layers().values():
        for t in ([p[2] for p in layer.tile.parts] if isinstance(layer.tile, TileArray) else [layer.tile]):
            for sub in analog_arrays(t).values():
                tot += int(sub.counters.get(key, 0))
            if hasattr(t, "a") and key in t.counters:
                tot += int(t.counters[key])
    return tot


def post_update_tiles(model) -> list:
    """The tiles of ``model`` whose devices decay or diffuse (they get ``post_update_step()`` after every
    mini-batch, as aihwkit's optimiser does); empty for most runs."""
    out = []
    for layer in model.weight_layers().values():
        for t in ([p[2] for p in layer.tile.parts] if isinstance(layer.tile, TileArray) else [layer.tile]):
            arrays = analog_arrays(t).values()
            if any(getattr(getattr(a, "devices", None), "decay_scale", None) is not None
                   or getattr(getattr(a, "devices", None), "diffusion_rate", None) is not None for a in arrays):
                out.append(t)
    return out


class NetTrainer:
    """A network training run: ``run_epoch`` / ``evaluate`` / ``run``; records per epoch.

    Parameters
    ----------
    config : NetConfig
    seed : int
        Run seed: weight initialisation, tile construction (device-to-device variation, pulse and periphery
        noise streams) and data order come from independent streams spawned from it.
    data : dict, optional
        Raw arrays as :func:`crossbar_sim.datasets.load_dataset` returns them (default: loaded from the dataset).
    """

    def __init__(self, config: NetConfig, seed: int = 0, data: dict | None = None):
        self.config = config
        self.seed = int(seed)
        self.data = prepare_data(config, data)
        ss = np.random.SeedSequence(self.seed)
        s_model, s_order = ss.spawn(2)
        self.model = build_model(config, s_model)
        self._post_update_tiles = post_update_tiles(self.model)
        self.order_rng = np.random.default_rng(s_order)
        # the weight-modifier stream (a third child: the first two, and so runs without HWA, are unchanged); a
        # mini-batch's noise depends only on this key and n_steps, so a checkpoint needs n_steps only
        self._hwa_key = key_from_seedseq(ss.spawn(1)[0])
        self.n_steps = 0
        self.epoch = 0
        self.history: dict[str, list] = {k: [] for k in METRIC_UNITS}
        self.history_epochs: list[int] = []
        #: weight snapshots {epoch: {layer: {array: weights}}} taken during training
        self.snapshots: dict[int, dict] = {}
        #: training time so far (s), summed over the segments of a run continued from checkpoints
        self.elapsed_s = 0.0
        self._partial = None  # the epoch in progress: data order, next batch, running sums (for checkpoints)

    def attach_data(self, data: dict | None = None) -> None:
        """Give a trainer restored from a checkpoint (which does not carry the dataset) its data again."""
        self.data = prepare_data(self.config, data)

    # ------------------------------------------------------------------ one mini-batch
    def train_step(self, xb, yb, lr):
        model, cfg = self.model, self.config
        if cfg.modifier.active:                        # HWA: this mini-batch's noisy weights (forward and backward)
            hwa.modify_weights(model, cfg.modifier, sub_key_py(self._hwa_key, self.n_steps))
        try:
            try:
                z = model.forward(xb)                  # forward through the tiles
            except NonFiniteError as exc:              # non-finite digital parameters reached a tile
                raise DivergenceError(f"non-finite values in epoch {self.epoch + 1} (lr {lr:g}): {exc} The run is "
                                      f"stopped, its record up to epoch {self.epoch} is kept.") from exc
            loss, dz, correct = F.nll_loss(z, yb)      # softmax cross-entropy
            if not math.isfinite(loss):
                raise DivergenceError(f"the loss became {loss} in epoch {self.epoch + 1} (lr {lr:g}); the run is "
                                      f"stopped, its record up to epoch {self.epoch} is kept.")
            model.backward(dz)                         # transposed MVMs through the tiles
        finally:
            if cfg.modifier.active:
                hwa.clear_modified_weights(model)
        model.step(lr)                                 # pulsed updates (+ transfers) and digital SGD
        for t in getattr(self, "_post_update_tiles", ()):  # device decay / diffusion (aihwkit post_update_step)
            t.post_update_step()
        if cfg.clip.active:
            hwa.clip_weights(model, cfg.clip)          # HWA: clip after the step (aihwkit post_update_step)
        self.n_steps += 1
        return loss, correct

    def run_epoch(self, progress=None, hook=None) -> dict:
        """One epoch of training (continuing the epoch in progress, if a checkpoint stopped one).

        ``progress(batch, n_batches, running_loss, running_acc)`` after every mini-batch; ``hook(position)`` too,
        with ``position = {"epoch", "batch", "n_batches"}`` (the engine saves checkpoints there)."""
        cfg = self.config
        x, y = self.data["x_train"], self.data["y_train"]
        n = x.shape[0]
        bs = cfg.batch_size
        nb = (n + bs - 1) // bs
        if self._partial is None:
            lr = lr_at(self.epoch, cfg.lr, cfg.schedule, cfg.lr_step, cfg.lr_gamma, cfg.epochs)
            self._partial = {"perm": self.order_rng.permutation(n), "batch": 0, "lr": lr, "loss": 0.0,
                             "correct": 0, "seen": 0, "time": 0.0}
        part = self._partial
        self.model.train(True)
        perm, lr = part["perm"], part["lr"]
        t0 = time.perf_counter()
        for b in range(part["batch"], nb):
            idx = perm[b * bs:(b + 1) * bs]
            loss, correct = self.train_step(x[idx], y[idx], lr)
            part["loss"] += loss * idx.size
            part["correct"] += correct
            part["seen"] += idx.size
            part["batch"] = b + 1
            if progress is not None:
                progress(b + 1, nb, part["loss"] / part["seen"], part["correct"] / part["seen"])
            if hook is not None and b + 1 < nb:
                now = time.perf_counter()
                part["time"] += now - t0
                self.elapsed_s += now - t0
                t0 = now
                hook({"epoch": self.epoch + 1, "batch": b + 1, "n_batches": nb})
        dt = time.perf_counter() - t0
        part["time"] += dt
        self.elapsed_s += dt
        self._partial = None
        self.epoch += 1
        return {"train_loss": part["loss"] / part["seen"], "train_acc": part["correct"] / part["seen"], "lr": lr,
                "epoch_time_s": part["time"]}

    def fit(self, hook=None, progress=None, log=None) -> "NetTrainer":
        """Train up to ``config.epochs`` epochs: test metrics before training and after every epoch, snapshots
        every ``snapshot_every`` epochs (and at the end). Continues where a restored trainer stopped.

        ``hook(trainer, position, boundary)`` is called after every mini-batch (``boundary`` False) and after every
        epoch is recorded (``boundary`` True). Raises :class:`DivergenceError` on a non-finite loss; the epochs
        recorded before are kept in the trainer."""
        cfg = self.config
        if not self.history_epochs:
            t0 = time.perf_counter()
            self.record(self.evaluate())
            if cfg.snapshot_every:
                self.snapshots[0] = self.snapshot()
            self.elapsed_s += time.perf_counter() - t0
        while self.epoch < cfg.epochs:
            if progress is not None and self._partial is None:
                progress.start_epoch(self.epoch)
            batch_hook = None if hook is None else (lambda pos: hook(self, pos, False))
            m = self.run_epoch(progress=None if progress is None else progress.batch, hook=batch_hook)
            t0 = time.perf_counter()
            m.update(self.evaluate())
            m = self.record(m)
            if cfg.snapshot_every and (self.epoch % cfg.snapshot_every == 0 or self.epoch == cfg.epochs):
                self.snapshots[self.epoch] = self.snapshot()
            self.elapsed_s += time.perf_counter() - t0
            if progress is not None:
                progress.end_epoch(m)
            if log is not None:
                log(f"epoch {self.epoch:3d}  lr {m['lr']:.4g}  train loss {m['train_loss']:.4f} acc "
                    f"{m['train_acc']:.4f}  test acc {m['test_acc']:.4f}  ({m['epoch_time_s']:.1f} s)")
            if hook is not None:
                hook(self, {"epoch": self.epoch, "batch": 0, "n_batches": 0}, True)
        if cfg.snapshot_every == 0 or self.epoch not in self.snapshots:
            self.snapshots[self.epoch] = self.snapshot()  # the final weights are always kept
        return self

    def evaluate(self) -> dict:
        """Test loss and accuracy through the tiles' forward pass (with periphery, as aihwkit's eval)."""
        x, y = self.data["x_test"], self.data["y_test"]
        self.model.train(False)
        tot, correct = 0.0, 0
        for s in range(0, x.shape[0], self.config.eval_batch):
            z = self.model.forward(x[s:s + self.config.eval_batch])
            l, _, c = F.nll_loss(z, y[s:s + self.config.eval_batch])
            tot += l * z.shape[0]
            correct += c
        self.model.train(True)
        return {"test_loss": tot / x.shape[0], "test_acc": correct / x.shape[0]}

    def record(self, metrics: dict) -> dict:
        metrics = dict(metrics)
        metrics["pulses"] = float(_counter_sum(self.model, "n_pulses"))
        metrics["transfers"] = float(_counter_sum(self.model, "n_transfers"))
        scales = [float(l.alpha.value.min()) if l.alpha is not None else np.nan  # smallest scale of each layer
                  for l in self.model.weight_layers().values()]
        have = [v for v in scales if not np.isnan(v)]
        metrics["out_scale_min"] = min(have) if have else np.nan
        metrics["out_scale_last"] = scales[-1] if scales else np.nan
        self.history_epochs.append(self.epoch)
        for k in METRIC_UNITS:
            self.history[k].append(float(metrics.get(k, np.nan)))
        return metrics

    def snapshot(self) -> dict:
        """{layer: {array: weights}} of every weight layer (A, C, buffers, or W), with the layer's digital bias and
        output scales as 1 x n arrays ``digital/bias`` and ``digital/out_scale`` (what inference needs besides the
        tiles: :func:`crossbar_sim.inference.final_weights`)."""
        out = {}
        for name, l in self.model.weight_layers().items():
            arrays = tile_arrays(l.tile)
            if l.bias is not None:
                arrays["digital/bias"] = l.bias.value[None, :].copy()
            if l.alpha is not None:
                arrays["digital/out_scale"] = l.alpha.value[None, :].copy()
            out[name] = arrays
        return out

    def tile_dump(self) -> dict:
        """{layer: {array: {"device": per-device parameters, "counters": counters}}} of the analog arrays."""
        out = {}
        for name, l in self.model.weight_layers().items():
            for arr, t in analog_arrays(l.tile).items():
                out.setdefault(name, {})[arr] = {
                    "device": t.devices.as_dict(),
                    "counters": {**{k: np.int64(v) for k, v in t.counters.items()}, "pulse_counts": t.pulse_counts},
                }
        return out


def train_network(config: NetConfig, seed: int = 0, data=None, progress: bool = False, log=None) -> NetTrainer:
    """Run ``config`` for ``config.epochs`` epochs in this process (test accuracy before training and after every
    epoch) and return the trainer, whose ``history`` holds the metrics. Raises :class:`DivergenceError` on a
    non-finite loss. (``crossbar-sim train`` and sweeps run networks through the engine, which also saves
    checkpoints and writes the result file.)"""
    t_start = time.perf_counter()
    tr = NetTrainer(config, seed, data)
    bars = _Bars(config.epochs, progress)
    try:
        tr.fit(progress=bars if progress else None, log=log)
    finally:
        bars.close()
    tr.inference = None
    if config.inference is not None:  # weights on inference tiles at times after programming
        from ..inference.evaluate import evaluate_after_training

        tr.inference = evaluate_after_training(tr, config.inference, seed)
    tr.wall_time_s = time.perf_counter() - t_start
    return tr


class _Bars:
    """tqdm bars: epochs, and batches with the running loss and accuracy (updated every ~1% of the epoch)."""

    def __init__(self, epochs, enabled):
        self.enabled = enabled
        self.ep = None
        self.bb = None
        if enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            self.ep = tqdm(total=epochs, desc="epochs", position=0, leave=True)

    def start_epoch(self, e):
        if self.enabled:
            self.bb = None
            self._last = 0

    def batch(self, b, nb, loss, acc):
        if not self.enabled:
            return
        if self.bb is None:
            self.bb = self._tqdm(total=nb, desc="batches", position=1, leave=False)
        step = max(1, nb // 100)
        if b % step == 0 or b == nb:
            self.bb.update(b - self._last)
            self._last = b
            self.bb.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)

    def end_epoch(self, m):
        if self.enabled:
            if self.bb is not None:
                self.bb.close()
            self.ep.update(1)
            self.ep.set_postfix(test_acc=f"{m['test_acc']:.4f}", loss=f"{m['train_loss']:.4f}")

    def close(self):
        if self.enabled:
            if self.bb is not None:
                self.bb.close()
            self.ep.close()
