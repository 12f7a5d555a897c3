"""Experiments and sweep specs: a spec -> one validated run config per sweep point, each with its own seed.

A spec is a dict (a named experiment's ``SPEC``, or a TOML file with the same structure). Its ``kind`` says what a
run trains (:mod:`crossbar_sim.engine.kinds`): ``least_squares`` (the default), ``network`` or ``lm``. A
least-squares spec::

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
``crossbar-sim fit-device``) instead of a ``model``; its other keys override the preset's parameters.

A network spec (``kind = "network"``) has a ``[net]`` table (:class:`~crossbar_sim.nn.training.NetConfig`:
``dataset``, ``model``, ``algorithm``, ``epochs``, ``lr``, ``n_train``, nested ``[net.update]``,
``[net.transfer]`` ...) and an optional ``[device]`` table (without one, the device is the paper's
SoftBoundsReference with ``w_max = -w_min = tau`` and aihwkit's variations). A language-model spec
(``kind = "lm"``) has ``[run]`` (:class:`~crossbar_sim.lowrank.train.LowRankRunConfig`), ``[optim.<method>]``
and ``[lr]`` (peak learning rate per method); its axes are ``method``, ``rank``, ``backend``, ``seed`` and any run
parameter.

Axes of every kind: ``seed`` (a replicate label), ``tau``, ``preset`` (least squares and networks; a list of
preset names or ``"all"``), bare parameter names of the kind's configs, or dotted paths (``device.<p>``,
``train.<p>``, ``transfer.<p>``, ``update.<p>``, ``net.<p>``, ``run.<p>``, ...). Two axes that set the same
parameter (``tau`` and ``device.w_max``) are an error naming both. ``seeding = "index"`` (least squares'
default: run seeds spawned by point index) or ``"label"`` (networks' and the language model's default: the run seed
comes from the sweep seed and the point's ``seed`` label, so every point with the same label shares its
initial weights, data order and tile seeds: paired comparisons). ``[checkpoint]`` ``every`` (epochs of a network
run, steps of a language-model run) and ``minutes`` (at least this often) set when a run saves its whole state.

Every point is built and validated before any run starts, so a bad spec fails at once, naming the offending key.
"""
from __future__ import annotations

import itertools
import json
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import device_models as _device_models  # noqa: F401 - registers the device configs for from_json
from ..config import parse_assignments, set_path
from ..errors import ConfigError
from .kinds import KINDS, Kind, get_kind, lm_run_seed, preset_device, preset_names

GENERIC_KEYS = ("kind", "name", "description", "seed", "seeding", "figures", "axes", "cases", "checkpoint")
#: checkpoint defaults: every epoch (networks) / every 100 steps (language model), and at least every 10 minutes
CHECKPOINT_DEFAULTS = {"network": {"every": 1, "minutes": 10.0}, "lm": {"every": 100, "minutes": 10.0}}
SEED_LIMIT = 2**63


@dataclass
class Experiment:
    """A named experiment: a spec plus what it shows. Registered under the entry-point group
    ``crossbar_sim.experiments`` (``name = "package.module:EXPERIMENT"``). ``report(path) -> str``, if given,
    is printed after the sweep (e.g. a table beside published numbers)."""

    name: str
    spec: dict
    description: str = ""
    report: Callable[[str], str] | None = field(default=None, repr=False)


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
    if isinstance(getattr(obj, "EXPERIMENT", None), Experiment):
        return obj.EXPERIMENT
    if isinstance(obj, dict):
        return Experiment(name=name, spec=obj)
    raise ConfigError(f"Entry point {name!r} does not name an Experiment (got {type(obj).__name__}).")


def load_spec_file(path: str) -> dict:
    """Read a TOML (or JSON, by the ``.json`` extension) spec file."""
    import tomllib

    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                spec = json.load(fh)
        except OSError as exc:
            raise ConfigError(f"Cannot read the spec file {path}: {exc.strerror}.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text; a JSON spec file is UTF-8.") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}.") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: a spec is a JSON object (a table of keys). Got {type(spec).__name__}.")
        return spec
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"Cannot read the spec file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); a spec file is TOML in UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None


def resolve_spec(name_or_path: str | None, default: str = "convergence_vs_asymmetry") -> tuple[dict, str]:
    """A spec dict from an experiment name or a TOML path (None: the default experiment)."""
    target = name_or_path or default
    if target.endswith((".toml", ".json")) or os.path.sep in target or os.path.exists(target):
        spec = load_spec_file(target)
        spec.setdefault("name", os.path.splitext(os.path.basename(target))[0])
        return spec, target
    exp = load_experiment(target)
    spec = json.loads(json.dumps(exp.spec))  # a deep copy
    spec.setdefault("name", exp.name)
    if exp.description:
        spec.setdefault("description", exp.description)
    return spec, target


def experiment_report(name_or_path: str | None, default: str = "convergence_vs_asymmetry"):
    """The ``report`` callable of a named experiment (None for a spec file or an experiment without one)."""
    target = name_or_path or default
    if target.endswith((".toml", ".json")) or os.path.sep in target or os.path.exists(target):
        return None
    try:
        return load_experiment(target).report
    except ConfigError:
        return None


# ------------------------------------------------------------------------------------------ overrides
def _kind_of(spec: dict) -> Kind:
    kind = spec.get("kind", "least_squares")
    if not isinstance(kind, str):
        raise ConfigError(f"'kind' must be one of {', '.join(KINDS)}. Got {kind!r}.")
    return get_kind(kind)


def apply_cli_overrides(spec: dict, sets: list[str]) -> dict:
    """Apply ``--set key=value`` strings to a spec dict (validated later by :func:`expand`).

    Keys: a spec table's dotted key (``device.dw_min``, ``task.n_samples``, ``train.transfer.fast_lr``,
    ``net.epochs``, ``run.steps``, ``optim.osd.rank``, ``lr.osd``), a bare parameter name of the kind (``dw_min``,
    ``lr``, ``epochs``, ``steps``), ``seed`` (the sweep seed), ``name``, ``description``, ``axes.<name>=[...]``
    (replace or add an axis), ``cases.<i>.<name>=[...]`` (an axis of the i-th case), ``checkpoint.every`` /
    ``checkpoint.minutes``.
    """
    spec = json.loads(json.dumps(spec))
    kind = _kind_of(spec)
    for key, value in parse_assignments(sets, "--set").items():
        head, _, rest = key.partition(".")
        if key in ("seed", "name", "description", "seeding", "floor_fraction"):
            spec[key] = value
        elif head == "axes" and rest:
            spec.setdefault("axes", {})[rest] = value
        elif head == "cases" and rest:
            idx, _, name = rest.partition(".")
            cases = spec.get("cases")
            if not isinstance(cases, list) or not idx.isdigit() or not int(idx) < len(cases) or not name:
                n = len(cases) if isinstance(cases, list) else 0
                raise ConfigError(f"--set {key}: cases.<i>.<axis> names an axis of case i (0 to {n - 1}; this spec "
                                  f"has {n} cases).")
            cases[int(idx)][name] = value
        elif head == "checkpoint" and rest:
            set_path(spec.setdefault("checkpoint", {}), rest, value)
        elif head in kind.sections and rest:
            set_path(spec.setdefault(head, {}), rest, value)
        else:
            set_path(spec, _section_key(kind, key, spec), value)
    return spec


def _section_key(kind: Kind, key: str, spec: dict) -> str:
    """Where a bare or dotted ``--set`` key goes in the spec's tables."""
    paths = kind.key_paths(key, spec)
    if not paths:
        raise ConfigError(f"Unknown --set key {key!r}. {kind.keys_help(spec)}")
    path = paths[0]
    if key == "tau":
        raise ConfigError("--set tau=...: tau is an axis; use --set 'axes.tau=[0.6]' (or set device.w_max and "
                          "device.w_min).")
    if kind.name == "least_squares":
        head, _, rest = path.partition(".")
        if head == "train" and rest.startswith("device."):
            return "device." + rest[len("device."):]
        return path
    if kind.name == "network":
        return path if path.startswith("device.") else f"net.{path}"
    if path.startswith("optim."):  # lm: optim.<method>.<p> is its own table
        return path
    if path in ("method", "rank"):
        raise ConfigError(f"--set {key}: '{key}' is an axis of language-model sweeps; use --set 'axes.{key}=[...]'.")
    return f"run.{path}"


# ------------------------------------------------------------------------------------------ axes
def _check_axis_values(kind: Kind, name: str, values) -> list:
    if name in ("preset", "device.preset"):
        if values == "all":
            values = preset_names()
        values = values if isinstance(values, (list, tuple)) else [values]
        for v in values:
            preset_device(v, f"axis '{name}'")
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
    if name == "seed":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < SEED_LIMIT:
                raise ConfigError(f"axis 'seed' must hold ints >= 0 and < 2**63 (replicate labels). Got {v!r}.")
    return [kind.check_axis_value(name, v) for v in values]


def _axis_paths(kind: Kind, name: str, spec: dict) -> set[str]:
    if name == "seed":
        return {"<seed label>"}
    paths = kind.key_paths(name, spec)
    if paths is None:
        raise ConfigError(f"Unknown axis key {name!r}. {kind.keys_help(spec)}")
    return set(paths)


def _check_conflicts(kind: Kind, names: list[str], spec: dict, where: str) -> None:
    """Two axes of one point must not set the same parameter (``tau`` and ``device.w_max``)."""
    seen: dict[str, str] = {}
    for n in names:
        if n in ("preset", "device.preset"):  # a preset is the base device the other axes refine
            continue
        for p in _axis_paths(kind, n, spec):
            for q, other in seen.items():
                if other != n and (p == q or p.startswith(q + ".") or q.startswith(p + ".")):
                    raise ConfigError(f"{where}axes '{other}' and '{n}' both set {min(p, q, key=len)}; keep one of "
                                      f"them.")
            seen[p] = n


def run_seeds(sweep_seed: int, n: int) -> list[int]:
    """Run seeds by point index: point ``i`` gets ``SeedSequence(sweep_seed).spawn(n)[i]``, as a 64-bit int."""
    children = np.random.SeedSequence(int(sweep_seed)).spawn(n)
    return [int(c.generate_state(1, np.uint64)[0]) for c in children]


def _check_checkpoint(kind: Kind, table) -> dict:
    out = dict(CHECKPOINT_DEFAULTS.get(kind.name, {"every": 1, "minutes": 10.0}))
    if table is None:
        return out
    if not isinstance(table, dict):
        raise ConfigError(f"'checkpoint' must be a table (every, minutes). Got {table!r}.")
    for k, v in table.items():
        if k == "every":
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ConfigError(f"checkpoint.every must be an int >= 1. Got {v!r}.")
            out[k] = int(v)
        elif k == "minutes":
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
                raise ConfigError(f"checkpoint.minutes must be a number > 0. Got {v!r}.")
            out[k] = float(v)
        else:
            raise ConfigError(f"Unknown key checkpoint.{k}; use checkpoint.every and checkpoint.minutes.")
    return out


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"The sweep 'name' must be a string. Got {name!r}.")
    if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ConfigError(f"The sweep 'name' {name!r} must not contain '/' (it names the figure files).")
    return name


def expand(spec: dict) -> dict:
    """Validate a spec and expand it into sweep points; raises :class:`ConfigError` naming the bad key.

    Returns
    -------
    dict
        ``{"kind", "spec", "name", "description", "seed", "seeding", "axes": {name: [values]}, "points": [...],
        "configs": {run_id: config}, "resolved": {run_id: {"config": config dict, "seed": run seed}}, "figures",
        "checkpoint", "attrs"}``; each
        point is ``{"run_id", "index", "seed", "values"}``.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"A sweep spec must be a table/dict. Got {type(spec).__name__}.")
    kind = _kind_of(spec)
    allowed = GENERIC_KEYS + kind.sections
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(f"Unknown spec key(s) {', '.join(map(repr, unknown))} for a {kind.name} spec; allowed: "
                          f"{', '.join(allowed)}.")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"The sweep 'seed' must be an int >= 0 and < 2**63. Got {seed!r}.")
    seeding = spec.get("seeding", kind.seeding)
    if seeding not in ("index", "label"):
        raise ConfigError(f"'seeding' must be 'index' or 'label'. Got {seeding!r}.")
    for key in ("name", "description"):
        if key in spec and not isinstance(spec[key], str):
            raise ConfigError(f"The sweep {key!r} must be a string. Got {spec[key]!r}.")
    _check_name(spec.get("name", ""))
    ff = spec.get("floor_fraction", 0.2)
    if isinstance(ff, bool) or not isinstance(ff, numbers.Real) or not 0 < ff <= 1:
        raise ConfigError(f"'floor_fraction' must be a float in (0, 1]. Got {ff!r}.")
    figures = spec.get("figures", [])
    if isinstance(figures, str):
        figures = [figures]
    if not isinstance(figures, list):
        raise ConfigError(f"'figures' must be a list of figure kinds. Got {figures!r}.")
    for fig in figures:
        if fig not in kind.figures:
            raise ConfigError(f"Unknown figure {fig!r} in 'figures' for a {kind.name} sweep; allowed: "
                              f"{', '.join(kind.figures)}.")
    for sec in tuple(s for s in kind.sections if s != "floor_fraction") + ("axes",):
        if sec in spec and not isinstance(spec[sec], dict):
            raise ConfigError(f"'{sec}' must be a table of parameters. Got {spec[sec]!r}.")
    checkpoint = _check_checkpoint(kind, spec.get("checkpoint"))
    base = kind.base_config(spec)

    axes = {name: _check_axis_values(kind, name, vals) for name, vals in (spec.get("axes") or {}).items()}
    cases = spec.get("cases") or [{}]
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError("'cases' must be a list of tables ([[cases]] in TOML).")
    spec_device = spec.get("device") or {}
    if "model" in spec_device and any(n in ("preset", "device.preset") for n in
                                      list(axes) + [k for c in (spec.get("cases") or []) for k in c]):
        raise ConfigError("axis 'preset': remove 'model' from the [device] table (each preset names its model).")
    for name in axes:
        _axis_paths(kind, name, spec)
    _check_conflicts(kind, list(axes), spec, "")
    all_axes: dict[str, list] = {k: list(v) for k, v in axes.items()}
    combos: list[dict] = []
    for ci, case in enumerate(cases):
        case_axes = {}
        for name, vals in case.items():
            if name in axes:
                raise ConfigError(f"cases[{ci}]: '{name}' is already a global axis; set it in one place only.")
            _axis_paths(kind, name, spec)
            case_axes[name] = _check_axis_values(kind, name, vals)
            merged = all_axes.setdefault(name, [])
            merged.extend(v for v in case_axes[name] if v not in merged)
        names = list(axes) + list(case_axes)
        _check_conflicts(kind, names, spec, f"cases[{ci}]: " if case_axes else "")
        grids = [axes.get(n, case_axes.get(n)) for n in names]
        for combo in itertools.product(*grids):
            combos.append(dict(zip(names, combo)))
    if "tau" in all_axes and kind.name == "least_squares" and not hasattr(base.train.device, "w_max"):
        raise ConfigError("axis 'tau' needs a device with w_max / w_min.")
    if seeding == "index":
        seeds = run_seeds(seed, len(combos))
    else:
        seeds = [lm_run_seed(seed, c.get("seed", 0)) for c in combos]
    width = max(4, len(str(len(combos) - 1)))
    points, configs, resolved = [], {}, {}
    for i, (values, s) in enumerate(zip(combos, seeds)):
        rid = f"{i:0{width}d}"
        configs[rid] = kind.point_config(base, values, spec)
        resolved[rid] = {"config": kind.resolved(configs[rid]), "seed": s}
        points.append({"run_id": rid, "index": i, "seed": s, "values": values})
    keys = [json.dumps({"cfg": resolved[p["run_id"]]["config"], "rep": p["values"].get("seed")}, sort_keys=True)
            for p in points]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ConfigError(f"Two sweep points have the same configuration (cases overlap?): {dup[:200]}...")
    stored = json.loads(json.dumps(spec))
    stored["seed"] = int(seed)
    out = {
        "kind": kind.name,
        "spec": stored,
        "name": str(spec.get("name", "")),
        "description": str(spec.get("description", "")),
        "seed": int(seed),
        "seeding": seeding,
        "axes": all_axes,
        "points": points,
        "configs": configs,
        "resolved": resolved,
        "figures": list(figures),
        "floor_fraction": float(ff),
        "checkpoint": checkpoint,
    }
    out["attrs"] = kind.sweep_attrs(out)
    if kind.name == "least_squares":
        from .kinds import error_floor_definition

        out["attrs"]["error_floor_definition"] = error_floor_definition(float(ff))
    return out
