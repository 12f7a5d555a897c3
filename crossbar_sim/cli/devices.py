"""``crossbar-sim devices``: the device models, the device presets and the training presets (aihwkit's
``build_config`` names, our defaults, aihwkit's preset RPU configs), with parameters and sources."""
from __future__ import annotations

import argparse
import dataclasses
import json
import numbers


def add_parser(sub):
    p = sub.add_parser(
        "devices",
        help="list device models, device presets and training presets with their parameters",
        description=(
            "List the registered device models (crossbar_sim.device_models.DEVICE_MODELS) with their parameters "
            "and defaults (aihwkit names), the device presets with the parameters they set, and the training "
            "presets of crossbar_sim.presets (algorithm_preset = NAME in a run config): aihwkit 1.1.0's build_config "
            "names, our defaults, and aihwkit's preset RPU configs, each with its aihwkit source."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  crossbar-sim devices\n  crossbar-sim devices SoftBoundsReference\n"
               "  crossbar-sim devices c-ttv2              # a training preset and what it sets\n"
               "  crossbar-sim devices --presets          # only the training presets\n"
               "  crossbar-sim devices --json > devices.json",
    )
    p.add_argument("name", nargs="?", default=None, help="show only this model or preset")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--presets", action="store_true", help="list only the training presets (algorithm_preset names)")
    return p


def format_value(v) -> str:
    """A parameter value as a person reads it: floats to 6 significant digits (``0.4``, not
    ``0.39999999999999997`` or ``np.float64(0.4)``), tuples element by element, strings quoted."""
    if isinstance(v, (bool, str)) or v is None:
        return repr(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(f"{float(v):.6g}"))  # a float stays a float: 1.0, not 1
    if isinstance(v, (tuple, list)):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})" if isinstance(v, tuple) else f"[{inner}]"
    if hasattr(v, "non_default"):  # a config (the devices of a vector cell): what it sets, numbers as above
        inner = ", ".join(f"{k}={format_value(x)}" for k, x in v.non_default().items())
        return f"{type(v).__name__}({inner})"
    return repr(v)


def _json_value(v):
    """numpy scalars as Python numbers in ``--json`` (full precision: it is for programs)."""
    return v.item() if hasattr(v, "item") else str(v)


def _first_line(doc) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def model_rows() -> list[dict]:
    from crossbar_sim.device_models import DEVICE_MODELS

    rows = []
    for name, cls in DEVICE_MODELS.items():
        default = cls()
        params = {f.name: getattr(default, f.name) for f in dataclasses.fields(cls)}
        rows.append({"name": name, "class": cls.__name__, "summary": _first_line(cls.__doc__),
                     "module_doc": _first_line(getattr(__import__(cls.__module__, fromlist=["x"]), "__doc__", "")),
                     "parameters": params})
    return rows


def preset_rows() -> list[dict]:
    """Presets from ``crossbar_sim.device_models.list_presets()`` if the package provides it."""
    from crossbar_sim import device_models

    lister = getattr(device_models, "list_presets", None)
    if lister is None:
        return []
    presets = lister()
    items = presets.items() if isinstance(presets, dict) else ((None, p) for p in presets)
    rows = []
    for key, p in items:
        source = ""
        if isinstance(p, tuple) and len(p) == 2:  # (device config, source)
            p, source = p
        if isinstance(p, str):  # a list of names: look each one up
            getter = getattr(device_models, "get_preset", None)
            key, p = p, (getter(p) if getter else None)
        device = p if hasattr(p, "non_default") else getattr(p, "device", None)
        if device is None and callable(p):
            device = p()
        name = key or getattr(p, "name", None) or type(device).__name__
        source = source or (getattr(p, "source", None) or getattr(p, "citation", None) or getattr(p, "reference", None)
                  or _first_line(getattr(p, "__doc__", "") if not hasattr(p, "non_default") else ""))
        row = {"name": str(name), "source": str(source or "")}
        if device is not None and hasattr(device, "non_default"):
            row["model"] = type(device).__name__
            row["parameters"] = _set_parameters(device)
        rows.append(row)
    return rows


def _set_parameters(cfg, prefix: str = "") -> dict:
    """The parameters a preset sets (differing from the class defaults), nested configs as dotted keys
    (``unit_device.dw_min`` of a one-sided pair), each nested config shown by what it sets itself."""
    out = {}
    for k, v in cfg.non_default().items():
        if hasattr(v, "non_default"):
            out[f"{prefix}{k}"] = type(v).__name__
            out.update(_set_parameters(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run(args) -> int:
    from crossbar_sim.errors import ConfigError

    from crossbar_sim.presets import describe_presets

    models, presets, training = model_rows(), preset_rows(), describe_presets()
    if getattr(args, "presets", False):
        models, presets = [], []
    if args.name:
        key = args.name.lower().replace("-", "").replace("_", "")
        models = [m for m in models if key in (m["name"].lower().replace("_", ""), m["class"].lower(),
                                               m["class"].lower().removesuffix("device"))]
        presets = [p for p in presets if p["name"].lower().replace("-", "").replace("_", "") == key]
        training = [t for t in training if key in {n.lower().replace("-", "").replace("_", "") for n in
                                                   [t["name"], *t["aliases"], t["name"].removesuffix("Preset")]}]
        if not models and not presets and not training:
            raise ConfigError(f"No device model, device preset or training preset named {args.name!r}; run "
                              f"`crossbar-sim devices` for the list.")
    if args.json:
        print(json.dumps({"models": models, "presets": presets, "training_presets": training}, indent=1,
                         default=_json_value))
        return 0
    if not models and not presets:
        _print_training(training)
        return 0
    print(f"device models ({len(models)}):")
    for m in models:
        print(f"\n  {m['name']}  ({m['class']})  {m['summary']}")
        if m["module_doc"] and m["module_doc"] != m["summary"]:
            print(f"    {m['module_doc']}")
        items = [f"{k}={format_value(v)}" for k, v in m["parameters"].items()]
        line = "    "
        for it in items:
            if len(line) + len(it) > 110:
                print(line.rstrip())
                line = "    "
            line += it + "  "
        print(line.rstrip())
    if presets:
        print(f"\npresets ({len(presets)}):")
        for p in presets:
            params = "  ".join(f"{k}={format_value(v)}" for k, v in p.get("parameters", {}).items())
            print(f"\n  {p['name']}  {p.get('model', '')}  {p['source']}")
            if params:
                print(f"    {params}")
    elif not args.name:
        print("\npresets: none in this installation (crossbar_sim.device_models.list_presets is not defined)")
    if training:
        print()
        _print_training(training)
    return 0


def _print_training(training) -> None:
    """The training presets (``algorithm_preset`` names), grouped by kind."""
    print(f"training presets ({len(training)}; algorithm_preset = NAME in a run config, crossbar_sim.presets):")
    for t in training:
        alias = f"  (also {', '.join(a for a in t['aliases'] if a != t['name'])})" if len(t["aliases"]) > 1 else ""
        print(f"\n  {t['name']}{alias}  [{t['kind']}]  {t['config']}: {t['compound']}")
        print(f"    source: {t['source']}")
        if t["parameters"]:
            print("    sets: " + "  ".join(f"{k}={format_value(v)}" for k, v in t["parameters"].items()))
