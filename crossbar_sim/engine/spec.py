"""Sweeps: an experiment spec -> one run config per sweep point -> runs on a pool or a Dask cluster -> HDF5.

A spec is a dict (a named experiment's ``SPEC``, or a TOML file with the same structure)::

    name = "my_sweep"
    description = "what is swept and what the theory predicts"
    seed = 2024                      # sweep seed: run i gets SeedSequence(seed).spawn(n)[i]
    figures = ["convergence-vs-asymmetry"]   # written next to the result file after the sweep

    [task]                           # LeastSquaresTask parameters (n_samples, in_size, out_size, noise_std, ...)
    n_samples = 100

    [device]                         # the device of the tiles: a registered model and its parameters
    model = "SoftBoundsReference"
    dw_min = 1e-3

    [train]                          # TrainConfig parameters, nested ones as sub-tables ([train.transfer])
    steps = 2000
    lr = 0.1

    [axes]                           # swept parameters: every combination is a sweep point
    tau = [0.6, 1.0, 3.0]            # tau sets device.w_max = tau, device.w_min = -tau
    seed = [0, 1, 2]                 # replicate labels (each point has its own spawned seed anyway)

    [[cases]]                        # optional: sub-sweeps, each with its own extra axes (points = union)
    algorithm = "analog_sgd"
    lr = [0.1, 0.025]
    [[cases]]
    algorithm = ["tiki_taka", "digital_sgd"]

A ``[device]`` table may name a ``preset`` (``crossbar-sim devices`` lists them; or a device file written by
``crossbar-sim fit-device``) instead of a ``model``; its
other keys override the preset's parameters. Axis names: ``tau``; ``seed``; ``preset`` (a list of preset names,
or ``"all"``); bare names of device parameters (``dw_min``, ``up_down``, ``dw_min_std`` ...),
of :class:`~crossbar_sim.least_squares.training.TrainConfig` (``algorithm``, ``lr``, ``steps`` ...) or of the task
(``noise_std``, ``in_size`` ...); or dotted paths ``device.<p>``, ``task.<p>``, ``train.<p>``,
``transfer.<p>`` (Tiki-Taka), ``update.<p>`` (pulse scheme). Every point is built and validated before any
run starts, so a bad spec fails at once, naming the offending key.

Results do not depend on where a run executes: a run is a pure function of its config and its seed
(:func:`run_point`), the parent process writes every result (:class:`~crossbar_sim.engine.store.SweepStore`).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import device_models as _device_models  # noqa: F401 - registers the device configs for from_json
from ..config import Config, apply_overrides
from ..errors import ConfigError, FormatError
from ..least_squares.task import LeastSquaresTask
from ..least_squares.training import TrainConfig

TOP_LEVEL_KEYS = ("name", "description", "seed", "figures", "task", "device", "train", "axes", "cases",
                  "floor_fraction")
FIGURE_KINDS = ("convergence-vs-asymmetry", "loss", "weights", "pulses")


@dataclass(frozen=True, repr=False)
class RunConfig(Config):
    """Everything one sweep point runs: the task and the training configuration (device included)."""

    task: LeastSquaresTask = field(default_factory=LeastSquaresTask)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if not isinstance(self.task, LeastSquaresTask):
            raise ConfigError(f"The 'task' parameter of RunConfig must be a LeastSquaresTask. Got {self.task!r}.")
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"The 'train' parameter of RunConfig must be a TrainConfig. Got {self.train!r}.")


@dataclass
class Experiment:
    """A named experiment: a spec plus what it shows. Registered under the entry-point group
    ``crossbar_sim.experiments`` (``name = "package.module:EXPERIMENT"``)."""

    name: str
    spec: dict
    description: str = ""


# ------------------------------------------------------------------------------------------ experiments
def list_experiments() -> dict[str, Any]:
    """Entry points of the ``crossbar_sim.experiments`` group, by name (not loaded)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="crossbar_sim.experiments")}


def load_experiment(name: str) -> Experiment:
    """The experiment registered as ``name``."""
    eps = list_experiments()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is crossbar-sim installed with `pip install -e .`?)"
        raise ConfigError(f"Unknown experiment {name!r}; registered experiments: {known}. "
                          f"A TOML spec file can be given by its path instead.")
    obj = eps[name].load()
    if isinstance(obj, Experiment):
        return obj
    if hasattr(obj, "EXPERIMENT"):
        return obj.EXPERIMENT
    if isinstance(obj, dict):
        return Experiment(name=name, spec=obj)
    kind = getattr(obj, "KIND", None)
    if isinstance(kind, str):  # an experiment of another subcommand (e.g. KIND = "lowrank")
        raise ConfigError(f"Experiment {name!r} is not a sweep; run it with `crossbar-sim {kind}`.")
    if callable(getattr(obj, "run", None)) and callable(getattr(obj, "points", None)):  # e.g. mnist_paper
        raise ConfigError(f"{name!r} is a network experiment, run by 'crossbar-sim train --experiment {name}' "
                          f"(--epochs, --taus, --models, --algorithms, --seeds, --out; see crossbar-sim train --help).")
    raise ConfigError(f"Entry point {name!r} does not name an Experiment (got {type(obj).__name__}).")


def load_spec_file(path: str) -> dict:
    """Read a TOML spec file."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"Cannot read the spec file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None


def resolve_spec(name_or_path: str | None, default: str = "convergence_vs_asymmetry") -> tuple[dict, str]:
    """A spec dict from an experiment name or a TOML path (None: the default experiment)."""
    target = name_or_path or default
    if target.endswith(".toml") or os.path.sep in target or os.path.exists(target):
        spec = load_spec_file(target)
        spec.setdefault("name", os.path.splitext(os.path.basename(target))[0])
        return spec, target
    exp = load_experiment(target)
    spec = json.loads(json.dumps(exp.spec))  # a deep copy
    spec.setdefault("name", exp.name)
    if exp.description:
        spec.setdefault("description", exp.description)
    return spec, target


# ------------------------------------------------------------------------------------------ overrides
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _parse_value(text: str):
    """A ``--set`` value: JSON if it parses (numbers, lists, true/false), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def apply_cli_overrides(spec: dict, sets: list[str]) -> dict:
    """Apply ``--set key=value`` strings to a spec dict (validated later by :func:`expand`).

    ``device.<p>``, ``task.<p>``, ``train.<p>`` (dotted, nested allowed), bare parameter names (as for axes),
    ``seed`` (the sweep seed), ``axes.<name>=[...]`` (replace or add an axis), ``name``.
    """
    spec = json.loads(json.dumps(spec))
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. device.dw_min=1e-3). Got {item!r}.")
        key, text = item.split("=", 1)
        key = key.strip()
        value = _parse_value(text.strip())
        if key in ("seed", "name", "description", "floor_fraction"):
            spec[key] = value
            continue
        if key.startswith("axes."):
            spec.setdefault("axes", {})[key[5:]] = value
            continue
        section, sub = _section_of(key)
        if section is None:
            raise ConfigError(_unknown_key_message(key, "--set"))
        d = spec.setdefault(section, {})
        parts = sub.split(".")
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return spec


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _device_field_names(spec_device: dict | None = None) -> set[str]:
    from crossbar_sim.device_models import PulsedDevice, get_device_class

    names = _field_names(PulsedDevice)
    model = (spec_device or {}).get("model")
    if model:
        try:
            names |= _field_names(get_device_class(model))
        except ConfigError:
            pass
    return names


def _section_of(key: str, spec_device: dict | None = None) -> tuple[str | None, str]:
    """Map a user key to (section, dotted key inside it): section is device, task or train."""
    head, _, rest = key.partition(".")
    if head in ("device", "task", "train") and rest:
        return head, rest
    if head in ("transfer", "update", "forward", "backward") and rest:
        return "train", key
    if not rest:
        if key in _device_field_names(spec_device) or key in ("model", "preset"):
            return "device", key
        if key in _field_names(TrainConfig) - {"device", "device_c"}:
            return "train", key
        if key in _field_names(LeastSquaresTask) - {"seed"}:
            return "task", key
    return None, key


def _unknown_key_message(key: str, where: str) -> str:
    dev = sorted(_device_field_names() | {"model"})
    tr = sorted(_field_names(TrainConfig) - {"device", "device_c"})
    ta = sorted(_field_names(LeastSquaresTask) - {"seed"})
    return (f"Unknown {where} key {key!r}. Use tau, seed, a device parameter ({', '.join(dev)}), a training "
            f"parameter ({', '.join(tr)}), a task parameter ({', '.join(ta)}), or a dotted path "
            f"device.<p>, task.<p>, train.<p>, transfer.<p>, update.<p>.")


# ------------------------------------------------------------------------------------------ building
def _base_config(spec: dict) -> RunConfig:
    from crossbar_sim.device_models import get_device_class

    dev_spec = dict(spec.get("device") or {})
    preset = dev_spec.pop("preset", None)
    if preset is not None:
        if "model" in dev_spec:
            raise ConfigError("device: give either 'model' or 'preset', not both (a preset names its model).")
        device = _preset_device(preset, "device.preset")
    else:
        model = dev_spec.pop("model", "SoftBoundsReference")
        try:
            cls = get_device_class(str(model))
        except ConfigError as exc:
            raise ConfigError(f"device.model: {exc}") from None
        device = cls()
    cfg = RunConfig(task=LeastSquaresTask(), train=TrainConfig(device=device))
    overrides = {}
    for k, v in _flatten(dev_spec).items():
        overrides[f"train.device.{k}"] = (v, f"device.{k}")
    for k, v in _flatten(dict(spec.get("task") or {})).items():
        overrides[f"task.{k}"] = (v, f"task.{k}")
    for k, v in _flatten(dict(spec.get("train") or {})).items():
        if k.split(".")[0] in ("device", "device_c"):
            raise ConfigError(f"train.{k}: set the device in the [device] table of the spec.")
        overrides[f"train.{k}"] = (v, f"train.{k}")
    return _apply(cfg, overrides)


def _preset_device(name, where: str):
    """The device config of preset ``name`` (:func:`crossbar_sim.device_models.get_preset`)."""
    from crossbar_sim import device_models

    getter = getattr(device_models, "get_preset", None)
    if getter is None:
        raise ConfigError(f"{where}: this installation has no device presets.")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: a preset name (string) is expected. Got {name!r}; sweep presets with an axis.")
    try:
        if name.endswith(".json") or os.path.isfile(name):  # a device file (crossbar-sim fit-device -o FILE)
            return device_models.load_device_file(name)
        return getter(name)
    except (ConfigError, FormatError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _preset_names() -> list[str]:
    from crossbar_sim import device_models

    lister = getattr(device_models, "list_presets", None)
    return list(lister()) if lister is not None else []


def _apply(cfg: RunConfig, overrides: dict) -> RunConfig:
    for path, (value, user_key) in overrides.items():
        try:
            cfg = apply_overrides(cfg, {path: value})
        except ConfigError as exc:
            raise ConfigError(f"{user_key}: {exc}") from None
    return cfg


def _axis_to_path(name: str, spec_device: dict | None) -> str:
    section, sub = _section_of(name, spec_device)
    if section is None:
        raise ConfigError(_unknown_key_message(name, "axis"))
    if section == "device":
        if sub == "model":
            raise ConfigError("axis 'model': sweeping the device model is not supported; run one sweep per model.")
        return f"train.device.{sub}"
    return f"{section}.{sub}"


def _check_axis_values(name: str, values) -> list:
    if name in ("preset", "device.preset"):
        if values == "all":
            values = _preset_names()
        values = values if isinstance(values, (list, tuple)) else [values]
        for v in values:
            _preset_device(v, f"axis '{name}'")
    if not isinstance(values, (list, tuple)):
        values = [values]
    values = list(values)
    if not values:
        raise ConfigError(f"axis '{name}' is empty; give it at least one value.")
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, numbers.Real):
            kinds.add("number")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            raise ConfigError(f"axis '{name}': values must be numbers, strings or booleans. Got {v!r}.")
    if len(kinds) > 1:
        raise ConfigError(f"axis '{name}' mixes value types ({', '.join(sorted(kinds))}): {values!r}.")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"axis '{name}' repeats a value: {values!r}.")
    if name == "tau":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (float(v) > 0 and math.isfinite(v)):
                raise ConfigError(f"axis 'tau' must hold floats in (0, inf) (w_max = -w_min = tau). Got {v!r}.")
        values = [float(v) for v in values]
    if name == "seed":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ConfigError(f"axis 'seed' must hold ints >= 0 (replicate labels). Got {v!r}.")
    return values


def _point_config(base: RunConfig, values: dict, spec_device: dict | None) -> RunConfig:
    overrides = {}
    for name, v in values.items():
        if name in ("preset", "device.preset"):
            # the preset's device, then the [device] table's parameters on top of it
            dev = _preset_device(v, f"axis '{name}'")
            extra = {k: x for k, x in _flatten(dict(spec_device or {})).items() if k not in ("model", "preset")}
            for k, x in extra.items():
                try:
                    dev = apply_overrides(dev, {k: x})
                except ConfigError as exc:
                    raise ConfigError(f"device.{k} (on preset {v!r}): {exc}") from None
            base = base.replace(train=base.train.replace(device=dev))
    for name, v in values.items():
        if name in ("seed", "preset", "device.preset"):
            continue
        if name == "tau":
            overrides["train.device.w_max"] = (v, "axis 'tau'")
            overrides["train.device.w_min"] = (-v, "axis 'tau'")
            continue
        overrides[_axis_to_path(name, spec_device)] = (v, f"axis '{name}'")
    return _apply(base, overrides)


def run_seeds(sweep_seed: int, n: int) -> list[int]:
    """Run seeds: point ``i`` gets ``SeedSequence(sweep_seed).spawn(n)[i]``, as a 64-bit int."""
    children = np.random.SeedSequence(int(sweep_seed)).spawn(n)
    return [int(c.generate_state(1, np.uint64)[0]) for c in children]


def expand(spec: dict) -> dict:
    """Validate a spec and expand it into sweep points; raises :class:`ConfigError` naming the bad key.

    Returns
    -------
    dict
        ``{"spec", "name", "description", "seed", "axes": {name: [values]}, "points": [...],
        "configs": {run_id: RunConfig}, "figures"}``; each point is ``{"run_id", "index", "seed", "values"}``.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"A sweep spec must be a table/dict. Got {type(spec).__name__}.")
    unknown = sorted(set(spec) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(f"Unknown spec key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(TOP_LEVEL_KEYS)}.")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"The sweep 'seed' must be an int >= 0. Got {seed!r}.")
    ff = spec.get("floor_fraction", 0.2)
    if isinstance(ff, bool) or not isinstance(ff, numbers.Real) or not 0 < ff <= 1:
        raise ConfigError(f"'floor_fraction' must be a float in (0, 1]. Got {ff!r}.")
    figures = spec.get("figures", [])
    if isinstance(figures, str):
        figures = [figures]
    for fig in figures:
        if fig not in FIGURE_KINDS:
            raise ConfigError(f"Unknown figure {fig!r} in 'figures'; allowed: {', '.join(FIGURE_KINDS)}.")
    for sec in ("task", "device", "train", "axes"):
        if sec in spec and not isinstance(spec[sec], dict):
            raise ConfigError(f"'{sec}' must be a table of parameters. Got {spec[sec]!r}.")
    base = _base_config(spec)
    spec_device = spec.get("device") or {}

    axes = {name: _check_axis_values(name, vals) for name, vals in (spec.get("axes") or {}).items()}
    cases = spec.get("cases") or [{}]
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError("'cases' must be a list of tables ([[cases]] in TOML).")
    if "model" in spec_device and any(n in ("preset", "device.preset") for n in
                                      list(axes) + [k for c in (spec.get("cases") or []) if isinstance(c, dict)
                                                    for k in c]):
        raise ConfigError("axis 'preset': remove 'model' from the [device] table (each preset names its model).")
    for name in axes:
        if name not in ("tau", "seed", "preset", "device.preset"):
            _axis_to_path(name, spec_device)
    all_axes: dict[str, list] = {k: list(v) for k, v in axes.items()}
    combos: list[dict] = []
    for ci, case in enumerate(cases):
        case_axes = {}
        for name, vals in case.items():
            if name in axes:
                raise ConfigError(f"cases[{ci}]: '{name}' is already a global axis; set it in one place only.")
            if name not in ("tau", "seed", "preset", "device.preset"):
                _axis_to_path(name, spec_device)
            case_axes[name] = _check_axis_values(name, vals)
            merged = all_axes.setdefault(name, [])
            merged.extend(v for v in case_axes[name] if v not in merged)
        names = list(axes) + list(case_axes)
        grids = [axes.get(n, case_axes.get(n)) for n in names]
        for combo in itertools.product(*grids):
            combos.append(dict(zip(names, combo)))
    if "tau" in all_axes and not hasattr(base.train.device, "w_max"):
        raise ConfigError("axis 'tau' needs a device with w_max / w_min.")
    seeds = run_seeds(seed, len(combos))
    width = max(4, len(str(len(combos) - 1)))
    points, configs = [], {}
    for i, (values, s) in enumerate(zip(combos, seeds)):
        rid = f"{i:0{width}d}"
        configs[rid] = _point_config(base, values, spec_device)
        points.append({"run_id": rid, "index": i, "seed": s, "values": values})
    keys = [json.dumps({"cfg": configs[p["run_id"]].to_dict(), "rep": p["values"].get("seed")}, sort_keys=True)
            for p in points]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ConfigError(f"Two sweep points have the same configuration (cases overlap?): {dup[:200]}...")
    resolved = json.loads(json.dumps(spec))
    resolved["seed"] = int(seed)
    return {
        "spec": resolved,
        "name": str(spec.get("name", "")),
        "description": str(spec.get("description", "")),
        "seed": int(seed),
        "axes": all_axes,
        "points": points,
        "configs": configs,
        "figures": list(figures),
        "floor_fraction": float(ff),
    }
