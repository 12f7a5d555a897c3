"""``crossbar-sim lowrank``: GaLore / OSD / full-rank AdamW / Tiki-Taka on a small LLaMA on tiles, through the
engine (a front end that builds a language-model sweep from a few options)."""
from __future__ import annotations

import argparse
import os

DEFAULT_EXPERIMENT = "lowrank_shakespeare"
METHODS = ("adamw", "galore", "osd", "tiki_taka")


def add_parser(sub):
    p = sub.add_parser(
        "lowrank",
        help="low-rank optimisers (GaLore, OSD) vs full-rank AdamW vs Tiki-Taka on a small LLaMA on tiles",
        description=(
            "Train a small LLaMA-style language model on the Shakespeare plays (crossbar-sim data install "
            "shakespeare) with its weight matrices on analog tiles, for every method x rank x seed x backend of "
            "the experiment (default: lowrank_shakespeare; see its docstring). Every weight change is written as "
            "pulses: a rank-r update as r pulse cycles, a dense full-rank update row by row, Tiki-Taka one cycle "
            "per token. Runs through the engine (the same as 'crossbar-sim sweep lowrank_shakespeare'): one "
            "HDF5 file (curves, per-run budgets under /runs/<id>/budget), checkpoints every 100 steps, --resume, "
            "--workers, --scheduler. Then prints the table (validation perplexity, digital optimiser-state bytes, "
            "pulse cycles, device pulses, energy by category, wall time), the energy constants with their sources "
            "and the optimiser-state memory of the published LLaMA shapes, and draws three figures. Results are "
            "identical for the same seeds whatever --workers."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                   help=f"named language-model experiment or a TOML/JSON spec file (default: {DEFAULT_EXPERIMENT})")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="methods to run (default: the experiment's)")
    p.add_argument("--ranks", nargs="+", type=int, help="ranks of GaLore and OSD (default: the experiment's)")
    p.add_argument("--seeds", nargs="+", type=int, help="seed labels (same label = same init, data, tiles)")
    p.add_argument("--backends", nargs="+", choices=("analog", "digital"),
                   help="analog tiles and/or float weights (default: the experiment's)")
    p.add_argument("--steps", type=int, help="training steps per run (default: the experiment's)")
    p.add_argument("--lr", action="append", default=[], metavar="METHOD=VALUE",
                   help="peak learning rate of a method, e.g. --lr osd=0.02 (repeatable)")
    p.add_argument("--energy", action="append", default=[], metavar="KEY=VALUE",
                   help="energy constants: a scenario (--energy scenario=ecram_80fJ; --energy-scenarios lists them) "
                        "and/or single constants, e.g. --energy e_pulse_fJ=80 --energy state_memory=dram")
    p.add_argument("--energy-scenarios", action="store_true", help="list the energy scenarios and exit")
    p.add_argument("--report", metavar="FILE.h5",
                   help="do not train: print the table, budgets and figures of an existing result file")
    p.add_argument("--memory-table", action="store_true",
                   help="only print the optimiser-state memory of the published LLaMA shapes (60M-7B) and exit")
    p.add_argument("--bytes-per-state", type=float, default=2.0,
                   help="bytes per optimiser-state number in the published-shapes table (2 = BF16, as GaLore's "
                        "estimates; default 2)")
    p.add_argument("--table", metavar="FILE", help="also write the table rows as JSON")
    from .sweep import add_engine_options

    add_engine_options(p, default_out="lowrank.h5")
    return p


def lm_cases(methods, ranks, backends) -> list[dict]:
    """The ``[[cases]]`` of a language-model sweep: full-rank AdamW once per backend, GaLore and OSD at every
    rank, Tiki-Taka on the analog backend only."""
    cases = []
    if "adamw" in methods:
        cases.append({"method": "adamw", "backend": list(backends)})
    low = [m for m in ("galore", "osd") if m in methods]
    if low:
        if not ranks:
            from crossbar_sim.errors import ConfigError

            raise ConfigError("GaLore and OSD need at least one rank (--ranks).")
        cases.append({"method": low, "rank": list(ranks), "backend": list(backends)})
    if "tiki_taka" in methods and "analog" in backends:
        cases.append({"method": "tiki_taka", "backend": "analog"})
    return cases


def _spec_grid(spec: dict) -> tuple[list, list, list]:
    """(methods, ranks, backends) of a language-model spec's cases and axes."""
    methods, ranks, backends = [], [], []

    def add(lst, v):
        for x in v if isinstance(v, list) else [v]:
            if x not in lst:
                lst.append(x)

    for c in list(spec.get("cases") or []) + [spec.get("axes") or {}]:
        add(methods, c.get("method", []))
        add(ranks, c.get("rank", []))
        add(backends, c.get("backend", []))
    return methods, ranks, backends or ["analog"]


def build_spec(args) -> dict:
    """The experiment's spec with the front end's options applied (then ``--set`` by the engine)."""
    from crossbar_sim.config import parse_assignments
    from crossbar_sim.engine.spec import resolve_spec
    from crossbar_sim.errors import ConfigError

    spec, _ = resolve_spec(args.experiment)
    if spec.get("kind") != "lm":
        raise ConfigError(f"--experiment {args.experiment!r} is not a language-model experiment (kind 'lm'); run "
                          f"it with 'crossbar-sim sweep {args.experiment}'.")
    if args.methods or args.ranks or args.backends:
        methods, ranks, backends = _spec_grid(spec)
        axes = dict(spec.get("axes") or {})
        for k in ("method", "rank", "backend"):
            axes.pop(k, None)
        spec["axes"] = axes
        spec["cases"] = lm_cases(args.methods or methods, args.ranks or ranks, args.backends or backends)
        if not spec["cases"]:
            raise ConfigError("--methods/--backends select no run (Tiki-Taka runs on the analog backend only).")
    if args.seeds:
        spec.setdefault("axes", {})["seed"] = list(args.seeds)
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps must be >= 1. Got {args.steps}.")
        spec.setdefault("run", {})["steps"] = args.steps
    for m, v in parse_assignments(args.lr, "--lr").items():
        if m not in METHODS:
            raise ConfigError(f"--lr: unknown method {m!r}; use {', '.join(METHODS)}.")
        spec.setdefault("lr", {})[m] = v
    if args.energy:  # a scenario (--energy scenario=NAME) and/or single constants, on top of the spec's
        from crossbar_sim.energy import energy_from_overrides

        energy = energy_from_overrides(parse_assignments(args.energy, "--energy"))
        spec.setdefault("run", {})["energy"] = {k: v for k, v in energy.to_dict().items() if k != "type"}
    return spec


def report(path: str, figures_dir: str | None, plots: bool, table_path: str | None, table: bool = True) -> int:
    """Print the constants, per-run budgets, the table and the published-shapes memory table of a result file,
    and draw the three figures."""
    from crossbar_sim.config import Config
    from crossbar_sim.energy import CATEGORIES, EnergyConstants, format_constants
    from crossbar_sim.engine.results import lm_records
    from crossbar_sim.engine.store import open_results
    from crossbar_sim.lowrank.memory import format_published_table
    from crossbar_sim.lowrank.report import format_table, save_table, table_rows

    with open_results(path) as f:
        recs = lm_records(f, done_only=True)
    if not recs:
        print(f"{path}: no finished runs.")
        return 1
    consts = recs[0]["config"].get("energy")
    ec = Config.from_dict(consts) if isinstance(consts, dict) else EnergyConstants()
    print(format_constants(ec))
    print()
    for r in recs:
        p, b = r["point"], r["budget"]
        lab = f"{p['method']}" + ("" if p["rank"] is None else f" r={p['rank']}") + f" {p['backend']} s{p['seed']}"
        parts = ", ".join(f"{c} {b.get(f'energy_{c}_J', 0.0):.3g}" for c in CATEGORIES)
        print(f"budget {lab} [{r['status']}]: total {b.get('energy_total_J', float('nan')):.4g} J ({parts}); "
              f"optimiser state {b.get('memory_optimizer_state_total_bytes', 0)} B "
              f"(matrices {b.get('memory_optimizer_state_matrices_bytes', 0)} B), "
              f"pulse cycles {b.get('count_n_pulse_cycles', 0)}, pulses {b.get('count_n_pulses', 0)}")
    rows = table_rows(recs)
    if table:
        print()
        print(format_table(rows))
    print()
    print(format_published_table())
    from crossbar_sim.lowrank import stats

    cells = stats.cell_table(recs)
    if any(c["n"] > 1 for c in cells):  # seeds: intervals and the paired OSD - GaLore differences
        paired = stats.paired_table(recs)
        print()
        print("validation perplexity, mean and 95 % t-interval over seeds:")
        print(stats.format_cell_table(cells, markdown=False))
        if paired:
            print()
            print("OSD - GaLore, paired over seeds (same init and batches; Holm-corrected over the ranks):")
            print(stats.format_paired_table(paired, markdown=False))
        if plots or figures_dir:
            from crossbar_sim.engine.plots import figure_path
            from crossbar_sim.lowrank.plots import write_tradeoff_figure

            out = write_tradeoff_figure(cells, figure_path(path, "lm-tradeoff", figures_dir), paired=paired)
            print(f"figure: {out}")
    if table_path:
        save_table(rows, table_path)
    if plots:
        from crossbar_sim.engine.plots import figure_path, make_figure

        for kind in ("lm-perplexity", "lm-memory", "lm-energy"):
            out = figure_path(path, kind, figures_dir)
            make_figure(path, kind, out)
            print(f"figure: {out}")
    return 0


def run(args) -> int:
    from crossbar_sim.errors import ConfigError, FormatError
    from crossbar_sim.lowrank.memory import format_published_table

    from .sweep import run_spec

    if args.energy_scenarios:
        from crossbar_sim.energy import format_scenarios

        print(format_scenarios())
        return 0
    if args.memory_table:
        if args.bytes_per_state <= 0:
            raise ConfigError(f"--bytes-per-state must be > 0. Got {args.bytes_per_state}.")
        print(format_published_table(args.bytes_per_state))
        return 0
    if args.report:
        if not os.path.exists(args.report):
            raise FormatError(f"{args.report}: no such file.")
        return report(args.report, args.figures_dir, not args.no_plot, args.table)
    spec = build_spec(args)
    rc = run_spec(spec, args, args.experiment)
    if rc in (0, 1) and not args.dry_run:  # the sweep printed the table and drew the figures
        report(args.out, args.figures_dir if not args.no_plot else None, False, args.table, table=False)
    return rc
