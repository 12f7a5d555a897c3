"""The kinds of run the engine executes: least squares, networks on real data, the low-rank language model.

A kind tells the engine four things, and nothing else in the engine depends on what a run trains:

* which tables a spec of this kind has and how a user key (an axis, a ``--set`` key) maps onto the run config
  (:meth:`Kind.key_paths`, :meth:`Kind.base_config`, :meth:`Kind.point_config`);
* how to run one config with one seed in a worker, with checkpoints (:meth:`Kind.run` -> :class:`RunRecord`);
* how to compile its kernels once in the parent before the workers start (:meth:`Kind.warmup`);
* what one finished run looks like in a line and a sweep in a table (:meth:`Kind.summary_line`,
  :meth:`Kind.table`).

The training itself lives in its own package (:mod:`crossbar_sim.least_squares`, :mod:`crossbar_sim.nn`,
:mod:`crossbar_sim.lowrank`); a kind only drives it.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import pickle
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..config import Config, apply_overrides, flatten
from ..errors import ConfigError, DivergenceError, FormatError
from ..least_squares.theory import error_floor, error_floor_definition  # noqa: F401 - the LS summary
from .record import RunRecord

#: environment variable of the fault-injection points the tests use to kill a run at a chosen moment:
#: ``kill:<position key>=<value>[,<key>=<value>]`` (e.g. ``kill:epoch=2,batch=40``; ``kill:step=30``): the process
#: SIGKILLs itself when a run reaches that position (checked where checkpoints are considered)
FAULT_ENV = "CROSSBAR_SIM_FAULT"


# ------------------------------------------------------------------------------------------ checkpoints
CHECKPOINT_FORMAT = "crossbar-sim-checkpoint"
#: bumped whenever a trainer's pickled layout changes; a checkpoint of another version is refused (one line)
CHECKPOINT_VERSION = 1


def checkpoint_dir(out: str) -> str:
    """Where the checkpoints of the sweep writing ``out`` live: ``<out>.journal/checkpoints``."""
    return os.fspath(out) + ".journal/checkpoints"


def checkpoint_path(out: str, run_id: str) -> str:
    return os.path.join(checkpoint_dir(out), f"{run_id}.h5")


def read_checkpoint_header(path: str) -> dict:
    """The header of a checkpoint file (kind, config JSON, seed, position, versions); :class:`FormatError` (one
    line) when it is unreadable or of another checkpoint version."""
    from .store import h5file, loads_attr, short_error

    from .. import __version__

    try:
        with h5file(path, "r") as f:
            a = f.attrs
            if a.get("format") != CHECKPOINT_FORMAT:
                raise FormatError(f"{path} is not a crossbar-sim checkpoint.")
            v = int(a.get("format_version", -1))
            wrote = a.get("package_version", "?")
            if v != CHECKPOINT_VERSION:
                raise FormatError(
                    f"{path}: a checkpoint of format {v} (written by crossbar-sim {wrote}); this crossbar-sim "
                    f"({__version__}) reads format {CHECKPOINT_VERSION}. Resume with crossbar-sim {wrote}, or delete "
                    f"the checkpoint to restart that run from its beginning.")
            return {"kind": str(a["kind"]), "config": str(a["config"]), "seed": int(a["seed"]),
                    "position": loads_attr(f, "position", {}), "package_version": str(wrote)}
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(f"{path}: a damaged checkpoint ({short_error(str(exc))}); delete it to restart that run "
                          f"from its beginning.") from None


class RunContext:
    """What a running run may do besides training: report progress, save and restore checkpoints.

    Parameters
    ----------
    run_id : str
    checkpoint : str or None
        Checkpoint file of the run (None: no checkpoints).
    every : int
        Save at every ``every``-th boundary (epoch end for networks, ``every`` steps for the language model).
    minutes : float
        Also save when this many minutes have passed since the last save (at the next batch or step).
    resume : bool
        Continue from the checkpoint if there is one.
    progress : callable or None
        ``progress(done, total)`` in units of the kind's work (epochs or steps).
    """

    def __init__(self, run_id: str, kind: str = "", config: str = "", seed: int = 0, checkpoint: str | None = None,
                 every: int = 1, minutes: float = 30.0, resume: bool = False,
                 progress: Callable[[float, float], None] | None = None):
        self.run_id = run_id
        self.kind = kind
        self.config = config
        self.seed = int(seed)
        self.checkpoint = checkpoint
        self.every = max(1, int(every))
        self.minutes = float(minutes)
        self.resume = bool(resume)
        self.progress = progress
        self._last_save = time.monotonic()
        self.n_saves = 0
        self.fault = _parse_fault(os.environ.get(FAULT_ENV, ""))

    # -- checkpoints
    def restore(self):
        """The pickled trainer state of the run's checkpoint (or None), checked against this run."""
        if not (self.resume and self.checkpoint and os.path.exists(self.checkpoint)):
            return None
        head = read_checkpoint_header(self.checkpoint)
        if head["kind"] != self.kind or head["config"] != self.config or head["seed"] != self.seed:
            raise FormatError(f"{self.checkpoint} belongs to another run (its config or seed differ); delete it to "
                              f"restart run {self.run_id} from its beginning.")
        from .store import h5file

        with h5file(self.checkpoint, "r") as f:
            blob = f["state"][()].tobytes()
        return pickle.loads(blob)

    def restore_or(self, make, attach):
        """The trainer restored from the run's checkpoint (``attach(trainer)`` gives it back its data), or
        ``make()`` when there is none."""
        state = self.restore()
        if state is None:
            return make()
        attach(state)
        return state

    def due(self, boundary: bool, count: int) -> bool:
        """Save now? At every ``every``-th boundary, or when ``minutes`` have passed since the last save."""
        if not self.checkpoint:
            return False
        if boundary and count % self.every == 0:
            return True
        return (time.monotonic() - self._last_save) >= 60.0 * self.minutes

    def save(self, state, position: dict) -> None:
        """Write ``state`` (picklable) as the run's checkpoint, atomically (temporary file, fsync, rename)."""
        from .. import __version__
        from .store import atomic_h5, dumps

        blob = pickle.dumps(state, protocol=5)
        os.makedirs(os.path.dirname(self.checkpoint), exist_ok=True)

        def fill(f):
            f.attrs["format"] = CHECKPOINT_FORMAT
            f.attrs["format_version"] = CHECKPOINT_VERSION
            f.attrs["package_version"] = __version__
            f.attrs["kind"] = self.kind
            f.attrs["config"] = self.config
            f.attrs["seed"] = np.uint64(self.seed)
            f.attrs["position"] = dumps(position)
            f.create_dataset("state", data=np.frombuffer(blob, np.uint8))

        atomic_h5(self.checkpoint, fill)
        self._last_save = time.monotonic()
        self.n_saves += 1

    # -- progress and fault injection
    def tick(self, position: dict, done: float | None = None, total: float | None = None) -> None:
        if self.fault and all(position.get(k) == v for k, v in self.fault.items()):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        if self.progress is not None and done is not None:
            self.progress(done, total)


def _parse_fault(text: str) -> dict:
    if not text.startswith("kill:"):
        return {}
    out = {}
    for item in text[5:].split(","):
        k, _, v = item.partition("=")
        out[k.strip()] = int(v)
    return out


def _strip(trainer, names):
    """A shallow copy of ``trainer`` without the (large, reloadable) attributes ``names``, for pickling."""
    t = copy.copy(trainer)
    for n in names:
        setattr(t, n, None)
    return t


# ------------------------------------------------------------------------------------------ the kinds
class Kind:
    """Base of the run kinds (see the module docstring)."""

    name = ""
    #: spec tables of this kind (besides the generic keys name, description, seed, kind, axes, cases, ...)
    sections: tuple = ()
    #: how run seeds are derived by default: ``index`` (spawned by point index) or ``label`` (from the sweep seed and
    #: the point's ``seed`` label, so every point with the same label shares init, data order and tile seeds)
    seeding = "index"
    #: figures a sweep of this kind can draw (``crossbar-sim plot --kind``)
    figures: tuple = ()
    #: what the progress bar of one run counts
    unit = "step"
    #: axes that are labels, not config values
    label_axes = ("seed",)

    # -- spec
    def base_config(self, spec: dict) -> Config:
        raise NotImplementedError

    def key_paths(self, key: str, spec: dict) -> list[str] | None:
        """The config paths a user key (an axis, a ``--set`` key) sets; None when the kind has no such key."""
        raise NotImplementedError

    def keys_help(self, spec: dict) -> str:
        """What keys the kind knows, for the error of an unknown one."""
        return ""

    def point_config(self, base: Config, values: dict, spec: dict) -> Config:
        """``base`` with one point's axis values applied (validated)."""
        overrides = {}
        for name, v in values.items():
            if name in self.label_axes:
                continue
            for path, val in self.path_values(name, v, spec):
                overrides[path] = (val, f"axis '{name}'")
        return _apply(base, overrides)

    def path_values(self, name: str, value, spec: dict) -> list[tuple[str, Any]]:
        paths = self.key_paths(name, spec)
        if paths is None:
            raise ConfigError(f"Unknown axis key {name!r}. {self.keys_help(spec)}")
        return [(p, value) for p in paths]

    def check_axis_value(self, name: str, value) -> Any:
        return value

    def resolved(self, cfg: Config) -> dict:
        return cfg.to_dict()

    def run_size(self, cfg: Config) -> int:
        """Total units of work of one run (for progress bars)."""
        return 1

    def parallel_threads(self, configs: list, workers: int) -> int:
        """Numba threads per worker (1 unless a kind's tiles are large enough for the parallel kernels)."""
        return 1

    #: modules whose import registers the kind's config classes (for ``Config.from_json`` in a fresh worker)
    config_modules: tuple = ()

    # -- running
    def import_configs(self) -> None:
        import importlib

        for m in self.config_modules:
            importlib.import_module(m)

    def run(self, cfg: Config, seed: int, ctx: RunContext) -> RunRecord:
        raise NotImplementedError

    def warmup(self, configs: list) -> None:
        """Compile the kernels the configs need, in this process (the workers then load them from the cache)."""

    def sweep_attrs(self, sweep: dict) -> dict:
        return {}

    # -- reporting
    def summary_line(self, rec: RunRecord) -> str:
        return ""

    def table(self, f) -> str:
        """The end-of-sweep table of an open result file ("" for none)."""
        return ""


def _apply(cfg: Config, overrides: dict) -> Config:
    for path, (value, user_key) in overrides.items():
        try:
            cfg = apply_overrides(cfg, {path: value}, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"{user_key}: {exc}") from None
    return cfg


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _device_fields(model: str | None = None) -> set[str]:
    from ..device_models import PulsedDevice, get_device_class

    names = _field_names(PulsedDevice)
    if model:
        try:
            names |= _field_names(get_device_class(model))
        except ConfigError:
            pass
    return names


def preset_device(name, where: str):
    """The device config of preset ``name`` or of a device file (``crossbar-sim fit-device -o FILE``)."""
    from .. import device_models

    if not isinstance(name, str):
        raise ConfigError(f"{where}: a preset name (string) is expected. Got {name!r}; sweep presets with an axis.")
    try:
        if name.endswith(".json") or os.path.isfile(name):
            return device_models.load_device_file(name)
        return device_models.get_preset(name)
    except (ConfigError, FormatError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def device_from_table(table: dict | None, where: str = "device", default_model: str | None = "SoftBoundsReference"):
    """The device of a ``[device]`` table (``model`` or ``preset`` plus parameters), or None for an empty table
    without ``default_model``."""
    from ..device_models import get_device_class

    dev_spec = dict(table or {})
    preset = dev_spec.pop("preset", None)
    if preset is not None:
        if "model" in dev_spec:
            raise ConfigError(f"{where}: give either 'model' or 'preset', not both (a preset names its model).")
        device = preset_device(preset, f"{where}.preset")
    else:
        model = dev_spec.pop("model", default_model)
        if model is None:
            if dev_spec:
                raise ConfigError(f"{where}: name a 'model' or a 'preset' for the parameters "
                                  f"{', '.join(sorted(dev_spec))}.")
            return None
        if not isinstance(model, str):
            raise ConfigError(f"{where}.model must be a device model name (string). Got {model!r}.")
        try:
            device = get_device_class(model)()
        except ConfigError as exc:
            raise ConfigError(f"{where}.model: {exc}") from None
    for k, v in flatten(dev_spec).items():
        try:
            device = apply_overrides(device, {k: v}, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{k}: {exc}") from None
    return device


def preset_names() -> list[str]:
    from ..device_models import list_presets

    return list(list_presets())


# ------------------------------------------------------------------------------------------ least squares
@dataclass(frozen=True, repr=False)
class RunConfig(Config):
    """Everything one least-squares run needs: the task and the training configuration (device included)."""

    task: Any = None
    train: Any = None

    def validate(self) -> None:
        from ..least_squares.task import LeastSquaresTask
        from ..least_squares.training import TrainConfig

        if not isinstance(self.task, LeastSquaresTask):
            raise ConfigError(f"The 'task' parameter of RunConfig must be a LeastSquaresTask. Got {self.task!r}.")
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"The 'train' parameter of RunConfig must be a TrainConfig. Got {self.train!r}.")


LS_UNITS = {"loss": "1", "grad_norm2": "1", "dist2": "1", "pulses": "1"}


class LeastSquaresKind(Kind):
    """The least-squares task of arXiv 2406.12774 (:mod:`crossbar_sim.least_squares`)."""

    name = "least_squares"
    sections = ("task", "device", "train", "floor_fraction")
    config_modules = ("crossbar_sim.least_squares.training", "crossbar_sim.device_models")
    seeding = "index"
    figures = ("convergence-vs-asymmetry", "loss", "weights", "pulses")
    label_axes = ("seed",)

    def base_config(self, spec):
        from ..least_squares.task import LeastSquaresTask
        from ..least_squares.training import TrainConfig

        device = device_from_table(spec.get("device"))
        cfg = RunConfig(task=LeastSquaresTask(), train=TrainConfig(device=device))
        overrides = {}
        for k, v in flatten(dict(spec.get("task") or {})).items():
            overrides[f"task.{k}"] = (v, f"task.{k}")
        for k, v in flatten(dict(spec.get("train") or {})).items():
            if k.split(".")[0] in ("device", "device_c"):
                raise ConfigError(f"train.{k}: set the device in the [device] table of the spec.")
            overrides[f"train.{k}"] = (v, f"train.{k}")
        return _apply(cfg, overrides)

    def key_paths(self, key, spec):
        from ..least_squares.task import LeastSquaresTask
        from ..least_squares.training import TrainConfig

        model = (spec.get("device") or {}).get("model")
        head, _, rest = key.partition(".")
        if key == "tau":
            return ["train.device.w_max", "train.device.w_min"]
        if key in ("preset", "device.preset"):
            return ["train.device"]
        if key in ("model", "device.model"):
            raise ConfigError(f"axis '{key}': sweeping the device model is not supported; run one sweep per model "
                              f"(or sweep 'preset').")
        if head == "device" and rest:
            return [f"train.device.{rest}"]
        if head in ("task", "train") and rest:
            return [key]
        if head in ("transfer", "update", "forward", "backward") and rest:
            return [f"train.{key}"]
        if not rest:
            if key in _device_fields(model):
                return [f"train.device.{key}"]
            if key in _field_names(TrainConfig) - {"device", "device_c"}:
                return [f"train.{key}"]
            if key in _field_names(LeastSquaresTask) - {"seed"}:
                return [f"task.{key}"]
        return None

    def keys_help(self, spec):
        from ..least_squares.task import LeastSquaresTask
        from ..least_squares.training import TrainConfig

        dev = sorted(_device_fields((spec.get("device") or {}).get("model")) | {"model"})
        tr = sorted(_field_names(TrainConfig) - {"device", "device_c"})
        ta = sorted(_field_names(LeastSquaresTask) - {"seed"})
        return (f"Use tau, seed, preset, a device parameter ({', '.join(dev)}), a training parameter "
                f"({', '.join(tr)}), a task parameter ({', '.join(ta)}), or a dotted path device.<p>, task.<p>, "
                f"train.<p>, transfer.<p>, update.<p>.")

    def check_axis_value(self, name, value):
        if name == "tau":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    float(value) > 0 and math.isfinite(value)):
                raise ConfigError(f"axis 'tau' must hold floats in (0, inf) (w_max = -w_min = tau). Got {value!r}.")
            return float(value)
        return value

    def path_values(self, name, value, spec):
        if name == "tau":
            return [("train.device.w_max", value), ("train.device.w_min", -value)]
        if name in ("preset", "device.preset"):
            return [("train.device", _preset_with_table(value, spec.get("device"), f"axis '{name}'"))]
        return super().path_values(name, value, spec)

    def run_size(self, cfg):
        return int(cfg.train.steps)

    def parallel_threads(self, configs, workers):
        from ..tiles.analog import PARALLEL_MIN_DEVICES

        biggest = max(c.task.in_size * c.task.out_size for c in configs)
        if biggest < PARALLEL_MIN_DEVICES:
            return 1
        return max(1, (os.cpu_count() or 1) // max(1, workers))

    def warmup(self, configs):
        from ..least_squares.training import train

        seen = set()
        for c in configs:
            key = (c.train.algorithm, c.train.algorithm_preset, type(c.train.device).__name__, c.train.update.to_json(),
                   c.task.gradient)
            if key in seen:
                continue
            seen.add(key)
            tiny = c.replace(task=c.task.replace(n_samples=4, in_size=3, out_size=2),
                             train=c.train.replace(steps=2, record_every=1, snapshot_every=0))
            train(tiny.task, tiny.train, seed=0)

    def run(self, cfg, seed, ctx):
        from ..least_squares.training import METRIC_UNITS, Trainer
        from .store import LS_LAYER

        t0 = time.perf_counter()
        tr = Trainer(cfg.task, cfg.train, seed)
        status, error = "complete", ""
        try:
            tr.run(progress=lambda s: ctx.tick({"step": s}, s, cfg.train.steps))
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        res = tr.result(time.perf_counter() - t0, status, error)
        inference = None
        if cfg.train.inference is not None and status == "complete":  # final weights on inference tiles
            from ..inference.evaluate import evaluate_after_training

            inference = evaluate_after_training(tr, cfg.train.inference, seed)
        ff = float(getattr(ctx, "floor_fraction", 0.2))
        loss = res.metrics.get("loss", np.zeros(0))
        summary = {"final_loss": float(loss[-1]) if len(loss) else float("nan"),
                   "error_floor": error_floor(res.steps, loss, cfg.train.steps, ff),
                   "error_floor_definition": error_floor_definition(ff)}
        return RunRecord(kind=self.name, config=res.config, seed=int(seed), status=status, error=error,
                         wall_time_s=res.wall_time_s, axis="step", steps=res.steps, metrics=res.metrics,
                         units={k: LS_UNITS.get(k, "1") for k in res.metrics},
                         descriptions={**METRIC_UNITS, "steps": "training steps (one step = one gradient of the "
                                                                "task, i.e. n_samples rank-1 updates)"},
                         summary=summary, tiles={LS_LAYER: tr.model}, snapshots={LS_LAYER: res.snapshots},
                         inference=inference)

    def summary_line(self, rec):
        return f"floor {rec.summary['error_floor']:.4g}  final {rec.summary['final_loss']:.4g}"

    def table(self, f):
        from .plots import theory_summary
        from .store import read_runs

        text = theory_summary(f.filename)  # Theorem 2's table, where the sweep has one
        return text if text is not None else ls_floor_table(read_runs(f))


def _preset_with_table(name, table, where):
    """A preset's device with the ``[device]`` table's parameters (but model/preset) on top of it."""
    dev = preset_device(name, where)
    for k, x in flatten({k: v for k, v in dict(table or {}).items() if k not in ("model", "preset")}).items():
        try:
            dev = apply_overrides(dev, {k: x}, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"device.{k} (on preset {name!r}): {exc}") from None
    return dev


def ls_floor_table(runs: list[dict]) -> str:
    """Error floors (mean +- std over seeds): rows tau (if swept), columns the other axes."""
    from .record import DONE_STATUSES

    groups: dict = {}
    for r in runs:
        if r["status"] not in DONE_STATUSES:
            continue
        key = tuple((k, v) for k, v in r["point"].items() if k != "seed")
        groups.setdefault(key, []).append(r.get("error_floor", float("nan")))
    rows = [(dict(k), float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
            for k, v in groups.items()]
    if not rows:
        return ""
    lines = ["error floor (see the @error_floor_definition attribute; mean +- std over seeds):"]
    if not all("tau" in k for k, *_ in rows):
        labels = [", ".join(f"{k}={v}" for k, v in key.items()) or "run" for key, *_ in rows]
        w = max(len(x) for x in labels) + 2
        for label, (key, mean, std, cnt) in zip(labels, rows):
            lines.append("  " + label.ljust(w) + (f"{mean:.3g} +- {std:.2g}" if cnt > 1 else f"{mean:.3g}"))
        return "\n".join(lines)
    cols, taus, cells = [], [], {}
    for key, mean, std, cnt in rows:
        col = ", ".join(f"{k}={v}" for k, v in key.items() if k != "tau") or "run"
        tau = key.get("tau")
        if col not in cols:
            cols.append(col)
        if tau not in taus:
            taus.append(tau)
        cells[(tau, col)] = f"{mean:.3g} +- {std:.2g}" if cnt > 1 else f"{mean:.3g}"
    try:
        taus.sort()
    except TypeError:
        pass
    width = max([len(c) for c in cols] + [max(len(v) for v in cells.values())]) + 2
    lines.append("  " + "tau".ljust(6) + "".join(c.rjust(width) for c in cols))
    for t in taus:
        lines.append("  " + str(t).ljust(6) + "".join(cells.get((t, c), "").rjust(width) for c in cols))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ networks
NET_UNITS = {"test_acc": "1", "test_loss": "1", "train_loss": "1", "train_acc": "1", "lr": "1", "pulses": "1",
             "transfers": "1", "out_scale_min": "1", "out_scale_last": "1", "epoch_time_s": "s"}
#: network metrics that are wall-clock measurements (written under timing/)
NET_TIMING = ("epoch_time_s",)

_DATA_CACHE: dict = {}


def _dataset(name: str) -> dict:
    """The raw arrays of a dataset, loaded once per process (a worker running several runs reads them once)."""
    if name not in _DATA_CACHE:
        from ..datasets import load_dataset

        _DATA_CACHE[name] = load_dataset(name)
    return _DATA_CACHE[name]


class NetworkKind(Kind):
    """A network (FCN or CNN) trained on MNIST / Fashion-MNIST with its weight layers on tiles
    (:mod:`crossbar_sim.nn`)."""

    name = "network"
    sections = ("net", "device")
    config_modules = ("crossbar_sim.nn.training", "crossbar_sim.device_models")
    seeding = "label"
    figures = ("accuracy-vs-tau", "accuracy-vs-epoch", "weights", "pulses")
    unit = "epoch"

    def base_config(self, spec):
        from ..nn.training import NetConfig

        device = device_from_table(spec.get("device"), default_model=None)
        cfg = NetConfig(device=device)
        overrides = {}
        for k, v in flatten(dict(spec.get("net") or {})).items():
            if k.split(".")[0] == "device":
                raise ConfigError(f"net.{k}: set the device in the [device] table of the spec.")
            overrides[k] = (v, f"net.{k}")
        return _apply(cfg, overrides)

    def key_paths(self, key, spec):
        from ..nn.training import NetConfig

        has_device = bool(spec.get("device"))
        model = (spec.get("device") or {}).get("model")
        head, _, rest = key.partition(".")
        if key == "tau":
            return ["device.w_max", "device.w_min"] if has_device else ["tau"]
        if key in ("preset", "device.preset"):
            return ["device"]
        if head == "device" and rest:
            if not has_device:
                raise ConfigError(f"{key}: the network's default device is SoftBoundsReference(tau); to set its "
                                  f"parameters give a [device] table (model = \"SoftBoundsReference\" ...) or a "
                                  f"preset.")
            return [key]
        if head == "net" and rest:
            return [rest]
        if head in ("transfer", "update", "forward", "backward", "transfer_extra") and rest:
            return [key]
        if not rest:
            if key in _field_names(NetConfig) - {"device"}:
                return [key]
            if has_device and key in _device_fields(model):
                return [f"device.{key}"]
        return None

    def keys_help(self, spec):
        from ..nn.training import NetConfig

        return (f"Use tau, seed, preset, a network parameter ({', '.join(sorted(_field_names(NetConfig) - {'device'}))}"
                f"), a device parameter (with a [device] table), or a dotted path net.<p>, device.<p>, update.<p>, "
                f"forward.<p>, backward.<p>, transfer.<p>.")

    check_axis_value = LeastSquaresKind.check_axis_value

    def path_values(self, name, value, spec):
        if name == "tau" and spec.get("device"):
            return [("device.w_max", value), ("device.w_min", -value)]
        if name in ("preset", "device.preset"):
            return [("device", _preset_with_table(value, spec.get("device"), f"axis '{name}'"))]
        return super().path_values(name, value, spec)

    def resolved(self, cfg):
        return {"net": cfg.to_dict()}

    def run_size(self, cfg):
        return int(cfg.epochs)

    def warmup(self, configs):
        from ..nn.training import NetTrainer

        seen = set()
        for c in configs:
            key = (c.model, c.algorithm, type(c.resolved_device()).__name__, c.update.to_json(), c.analog_layers)
            if key in seen:
                continue
            seen.add(key)
            rng = np.random.default_rng(0)
            fake = {"x_train": rng.integers(0, 255, (8, 28, 28), dtype=np.uint8),
                    "y_train": rng.integers(0, 10, 8), "x_test": rng.integers(0, 255, (4, 28, 28), dtype=np.uint8),
                    "y_test": rng.integers(0, 10, 4)}
            tiny = c.replace(epochs=1, n_train=0, n_test=0, batch_size=4, snapshot_every=0)
            tr = NetTrainer(tiny, 0, data=fake)
            tr.run_epoch()
            tr.evaluate()

    def run(self, cfg, seed, ctx):
        from ..nn.training import METRIC_UNITS, NetTrainer

        data = _dataset(cfg.dataset)
        tr = ctx.restore_or(lambda: NetTrainer(cfg, seed, data), lambda t: t.attach_data(data))
        status, error = "complete", ""

        def hook(trainer, position, boundary):
            ctx.tick(position, trainer.epoch + position.get("batch", 0) / max(1, position.get("n_batches", 1)),
                     cfg.epochs)
            count = trainer.epoch
            if ctx.due(boundary, count) and not (boundary and trainer.epoch >= cfg.epochs):
                ctx.save(_strip(trainer, ("data",)), position)

        try:
            tr.fit(hook=hook)
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        inference = None
        if cfg.inference is not None and status == "complete":  # final weights on inference tiles
            from ..inference.evaluate import evaluate_after_training

            inference = evaluate_after_training(tr, cfg.inference, seed)
        metrics = {k: np.asarray(v, np.float64) for k, v in tr.history.items() if k not in NET_TIMING}
        timing = {k: np.asarray(tr.history[k], np.float64) for k in NET_TIMING if k in tr.history}
        acc = metrics.get("test_acc", np.zeros(0))
        summary = {"final_test_acc": float(acc[-1]) if len(acc) else float("nan"),
                   "best_test_acc": float(np.max(acc)) if len(acc) else float("nan"),
                   "epochs_done": int(tr.epoch)}
        snaps: dict = {}
        for epoch, layers in tr.snapshots.items():
            for layer, arrays in layers.items():
                snaps.setdefault(layer, {})[epoch] = arrays
        tiles = {name: layer.tile for name, layer in tr.model.weight_layers().items()}
        return RunRecord(kind=self.name, config={"net": cfg.to_dict()}, seed=int(seed), status=status, error=error,
                         wall_time_s=tr.elapsed_s, axis="epoch", steps=np.asarray(tr.history_epochs, np.int64),
                         metrics=metrics, timing=timing, units=dict(NET_UNITS),
                         descriptions={**METRIC_UNITS, "steps": "epochs finished (0: before training)"},
                         summary=summary, tiles=tiles, snapshots=snaps, inference=inference)

    def summary_line(self, rec):
        s = rec.summary
        return f"test acc {100 * s['final_test_acc']:.2f} % (best {100 * s['best_test_acc']:.2f} %)"

    def table(self, f):
        from ..nn.report import accuracy_table
        from .store import read_runs

        return accuracy_table(read_runs(f))


# ------------------------------------------------------------------------------------------ language model
LM_UNITS = {"train_loss": "1", "val_loss": "1", "val_ppl": "1", "pulses": "1", "pulse_cycles": "1",
            "wall_time_s": "s"}
LM_TIMING = ("wall_time_s",)


def lm_run_seed(sweep_seed: int, label: int) -> int:
    """The run seed of seed label ``label``: the same for every method, so runs pair up (same init, batches,
    tile seeds)."""
    return int(np.random.SeedSequence([int(sweep_seed), int(label)]).generate_state(1, np.uint64)[0] >> 1)


class LMKind(Kind):
    """The small LLaMA on Shakespeare with full-rank AdamW, GaLore, OSD or Tiki-Taka, on float weights or tiles
    (:mod:`crossbar_sim.lowrank`).

    Spec tables: ``[run]`` (LowRankRunConfig fields, nested as tables), ``[optim.<method>]`` (optimiser fields of
    adamw / galore / osd) and ``[lr]`` (peak learning rate per method: ``adamw = 3e-3``). Axes: ``method``,
    ``rank`` (GaLore and OSD), ``backend``, ``seed`` (a label: the same init and batches for every method), and
    any run parameter.
    """

    name = "lm"
    sections = ("run", "optim", "lr")
    config_modules = ("crossbar_sim.lowrank.train", "crossbar_sim.device_models")
    seeding = "label"
    figures = ("lm-perplexity", "lm-memory", "lm-energy")
    label_axes = ("seed", "method", "rank")

    def base_config(self, spec):
        from ..lowrank.train import METHODS, LowRankRunConfig

        for m in (spec.get("optim") or {}):
            if m not in ("adamw", "galore", "osd"):
                raise ConfigError(f"optim.{m}: optimiser tables are optim.adamw, optim.galore and optim.osd.")
        for m, v in (spec.get("lr") or {}).items():
            if m not in METHODS:
                raise ConfigError(f"lr.{m}: unknown method; use {', '.join(METHODS)}.")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"lr.{m} must be a float > 0. Got {v!r}.")
        overrides = {k: (v, f"run.{k}") for k, v in flatten(dict(spec.get("run") or {})).items()}
        return _apply(LowRankRunConfig(), overrides)

    def key_paths(self, key, spec):
        from ..lowrank.train import LowRankRunConfig

        head, _, rest = key.partition(".")
        if key in ("method", "rank", "seed"):
            return [key]
        if head == "run" and rest:
            return [rest]
        if head in ("lm", "data", "tile", "transfer", "energy") and rest:
            return [key]
        if head == "optim" and rest:
            return [key]
        if not rest and key in _field_names(LowRankRunConfig) - {"optim", "method"}:
            return [key]
        return None

    def keys_help(self, spec):
        from ..lowrank.train import LowRankRunConfig

        return (f"Use method, rank, backend, seed, a run parameter "
                f"({', '.join(sorted(_field_names(LowRankRunConfig) - {'optim', 'method'}))}), or a dotted path "
                f"run.<p>, lm.<p>, tile.<p>, transfer.<p>, energy.<p>, optim.<method>.<p>.")

    def check_axis_value(self, name, value):
        from ..lowrank.train import METHODS

        if name == "method" and value not in METHODS:
            raise ConfigError(f"axis 'method': unknown method {value!r}; use {', '.join(METHODS)}.")
        if name == "rank" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"axis 'rank' must hold ints >= 1. Got {value!r}.")
        return value

    def point_config(self, base, values, spec):
        from ..lowrank.optim import AdamWConfig, GaLoreConfig, OSDConfig

        optims = {"adamw": AdamWConfig, "galore": GaLoreConfig, "osd": OSDConfig}
        method = values.get("method", base.method)
        cfg = base.replace(method=method, optim=None)
        rank = values.get("rank")
        if method in optims:
            opt = optims[method]()
            table = (spec.get("optim") or {}).get(method) or {}
            for k, v in flatten(table).items():
                try:
                    opt = apply_overrides(opt, {k: v}, strict=True)
                except ConfigError as exc:
                    raise ConfigError(f"optim.{method}.{k}: {exc}") from None
            if rank is not None:
                if method == "adamw":
                    raise ConfigError("axis 'rank' applies to galore and osd only; put it in their [[cases]].")
                opt = opt.replace(rank=rank)
            cfg = cfg.replace(optim=opt)
        elif rank is not None:
            raise ConfigError(f"axis 'rank' applies to galore and osd only (not {method!r}); put it in their "
                              f"[[cases]].")
        lr = (spec.get("lr") or {}).get(method)
        if lr is not None and "lr" not in values:
            cfg = cfg.replace(lr=float(lr))
        rest = {k: v for k, v in values.items() if k not in self.label_axes}
        return super().point_config(cfg, rest, spec)

    def run_size(self, cfg):
        return int(cfg.steps)

    def warmup(self, configs):
        from ..lowrank.train import LowRankTrainer

        seen = set()
        for c in configs:
            if c.backend != "analog" or (c.method, type(c.tile.device).__name__) in seen:
                continue
            seen.add((c.method, type(c.tile.device).__name__))
            tiny = c.replace(steps=1, batch_size=1, eval_every=1, eval_tokens=8,
                             lm=c.lm.replace(d_model=8, n_layers=1, n_heads=2, d_ff=8, seq_len=4))
            if tiny.optim is not None and hasattr(tiny.optim, "rank"):
                tiny = tiny.replace(optim=tiny.optim.replace(rank=2))
            LowRankTrainer(tiny, 0, _lm_corpus(c)).run()

    def run(self, cfg, seed, ctx):
        from ..lowrank.train import METRIC_UNITS, LowRankTrainer

        corpus = _lm_corpus(cfg)
        tr = ctx.restore_or(lambda: LowRankTrainer(cfg, seed, corpus), lambda t: t.attach_corpus(corpus))
        status, error = "complete", ""

        def hook(trainer):
            ctx.tick({"step": trainer.step}, trainer.step, cfg.steps)
            if ctx.due(trainer.step % ctx.every == 0, trainer.step) and trainer.step < cfg.steps:
                ctx.save(_strip(trainer, ("corpus",)), {"step": trainer.step})

        try:
            tr.run(step_hook=hook)
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        res = tr.result(tr.elapsed_s, status, error)
        metrics = {k: v for k, v in res.metrics.items() if k not in LM_TIMING}
        timing = {k: res.metrics[k] for k in LM_TIMING if k in res.metrics}
        budget = res.budget.as_attrs() if res.budget is not None else {}
        budget.update({f"memory_{k}_bytes": int(v) for k, v in res.memory.items()})
        budget["units"] = "energy in J, latency in s, memory in bytes, counts dimensionless"
        rank = cfg.rank
        summary = {"final_val_ppl": float(res.final_val_ppl), "method": cfg.method, "backend": cfg.backend,
                   "rank": -1 if rank is None else int(rank)}
        from ..nn.layers import tile_arrays

        tiles, snaps = {}, {}
        step = int(res.steps[-1]) if len(res.steps) else 0
        for name, h in tr.model.mats.items():  # the final weights of every matrix (device weights on tiles)
            t = getattr(h, "tile", None)
            if t is not None:
                tiles[name] = t
                snaps[name] = {step: tile_arrays(t)}
            else:
                snaps[name] = {step: {"W": h.read()}}
        return RunRecord(kind=self.name, config=res.config, seed=int(seed), status=status, error=error,
                         wall_time_s=res.wall_time_s, axis="step", steps=res.steps, metrics=metrics, timing=timing,
                         units=dict(LM_UNITS), descriptions={**METRIC_UNITS, "steps": "training steps"},
                         summary=summary, tiles=tiles, snapshots=snaps, budget=budget)

    def summary_line(self, rec):
        return f"val ppl {rec.summary['final_val_ppl']:.3f}"

    def table(self, f):
        from ..lowrank.report import format_table, table_rows
        from .results import lm_records

        recs = lm_records(f, done_only=True)
        return format_table(table_rows(recs)) if recs else ""


_CORPUS_CACHE: dict = {}


def _lm_corpus(cfg):
    from ..lowrank.text import load_shakespeare

    key = cfg.data.to_json()
    if key not in _CORPUS_CACHE:
        _CORPUS_CACHE[key] = load_shakespeare(cfg.data)
    return _CORPUS_CACHE[key]


KINDS: dict[str, Kind] = {k.name: k for k in (LeastSquaresKind(), NetworkKind(), LMKind())}


def get_kind(name) -> Kind:
    """The run kind called ``name``; :class:`ConfigError` listing the kinds otherwise."""
    if name not in KINDS:
        raise ConfigError(f"Unknown experiment kind {name!r}; use one of: {', '.join(KINDS)}.")
    return KINDS[name]

