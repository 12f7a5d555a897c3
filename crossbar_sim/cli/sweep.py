"""``crossbar-sim sweep``: run a named experiment or a TOML spec of any kind, every run into one HDF5 file."""
from __future__ import annotations

import argparse
import os
import sys

EPILOG = """\
examples:
  crossbar-sim sweep                                   # the default experiment: convergence_vs_asymmetry
  crossbar-sim sweep convergence_vs_asymmetry --set train.steps=500 --set 'axes.seed=[0]'
  crossbar-sim sweep mnist_asymmetry --set 'cases.0.tau=[0.6, 3.0]' --set net.epochs=2 --set 'axes.seed=[0]'
  crossbar-sim sweep lowrank_shakespeare --set run.steps=50 --out lm.h5
  crossbar-sim sweep my_sweep.toml --workers 4 --out my.h5
  crossbar-sim sweep my_sweep.toml --out my.h5 --resume   # continue after a crash, a kill or Ctrl-C
  crossbar-sim sweep my_sweep.toml --scheduler tcp://10.0.0.5:8786   # on a Dask cluster
  crossbar-sim sweep --dry-run                         # validate and list the runs only

kinds (the spec's 'kind'): least_squares (tables [task], [device], [train]), network (tables [net] for NetConfig:
dataset, model, algorithm, epochs, lr, n_train ..., and an optional [device]), lm (tables [run], [optim.<method>],
[lr]).

--set keys: a table's dotted key (device.dw_min=1e-3, task.n_samples=50, train.transfer.fast_lr=0.02,
net.epochs=3, run.steps=100, optim.osd.rank=8, lr.osd=0.02), a bare parameter name of the kind (dw_min=1e-3,
lr=0.05, epochs=3), seed=N (the sweep seed), axes.<name>=[v1, v2] (replace or add an axis), cases.<i>.<name>=[...]
(an axis of the i-th [[cases]] table), checkpoint.every=N, checkpoint.minutes=M. Values are JSON (numbers, lists, true/false, "strings") or plain text. Unknown keys and
wrong types are errors.

axes: seed (replicate labels), tau (w_max = -w_min = tau), preset, any parameter of the kind (algorithm, lr,
dw_min, noise_std, epochs, method, rank, backend, ...). Every run gets its own seed from the sweep seed, so results
are identical whatever --workers or --scheduler. Network and language-model runs save checkpoints (every epoch /
every 100 steps and at least every 10 minutes), so --resume continues a killed run where it stopped and gives the
same file as an uninterrupted sweep.

on a cluster: start a scheduler and workers in the same Python environment (crossbar-sim[dask] and the datasets
installed), e.g. `dask scheduler` on one machine and `dask worker tcp://HOST:8786 --nthreads 1` on each, then run
the sweep with --scheduler tcp://HOST:8786. Only this process writes the result file; the workers write
checkpoints under <out>.journal/, so resuming a run mid-way on a cluster needs that folder on a shared file system.
"""


def add_parser(sub):
    p = sub.add_parser(
        "sweep",
        help="run an experiment (least squares, networks, the language model) into an HDF5 file",
        description=(
            "Run every point of a sweep (a named experiment registered under the entry-point group "
            "crossbar_sim.experiments, or a TOML spec file) on a local process pool or a Dask cluster, and write "
            "each finished run to one HDF5 file as it ends (crossbar-sim format_version 2). The whole spec is "
            "validated before any run starts. A killed or interrupted sweep keeps every finished run; --resume "
            "runs only the missing ones, continuing interrupted runs from their checkpoints."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", nargs="?", default=None, metavar="EXPERIMENT|SPEC.toml",
                   help="experiment name or TOML spec file (default: convergence_vs_asymmetry)")
    add_engine_options(p, default_out="results.h5")
    return p


def add_engine_options(p, default_out: str, workers_default: str = "all cores") -> None:
    """The options every front end of the engine shares (sweep, train, lowrank)."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help="override a spec value (repeatable), e.g. --set device.dw_min=1e-3")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"local worker processes (default: {workers_default}, {os.cpu_count() or 1} here); 1 runs "
                        f"in this process")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (needs "
                        "crossbar-sim[dask])")
    p.add_argument("--connect-timeout", type=float, default=20.0, metavar="SECONDS",
                   help="how long to try to reach the --scheduler (default: 20)")
    p.add_argument("--out", "-o", default=default_out, metavar="FILE", help=f"result file (default: {default_out})")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out: skip finished runs, continue interrupted ones from their "
                        "checkpoints")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--figures-dir", default=None, metavar="DIR",
                   help="where to write the experiment's figures (default: next to --out, named <out>_<figure>.png)")
    p.add_argument("--no-plot", "--no-plots", action="store_true", dest="no_plot",
                   help="do not write the experiment's figures")
    p.add_argument("--dry-run", action="store_true", help="validate the spec, list the runs, run nothing")
    p.add_argument("--quiet", "-q", "--no-progress", action="store_true", dest="quiet",
                   help="no progress bars (one line per finished run is still printed)")


def print_dry_run(sweep: dict, source: str, console) -> None:
    console.print(f"{sweep['name'] or source}: {len(sweep['points'])} runs ({sweep['kind'].replace('_', '-')}), "
                  f"sweep seed {sweep['seed']}")
    from crossbar_sim.engine.runner import fmt_point

    for p in sweep["points"]:
        console.print(f"  {p['run_id']}  seed {p['seed']:>20d}  {fmt_point(p['values'])}")


def run_spec(spec: dict, args, source: str, report=None) -> int:
    """Expand ``spec`` with ``args.set`` applied and run it with the engine options of ``args``."""
    from crossbar_sim.engine.runner import Console, run_sweep
    from crossbar_sim.engine.spec import apply_cli_overrides, expand

    console = Console(args.quiet)
    spec = apply_cli_overrides(spec, args.set)
    sweep = expand(spec)  # every point validated before anything is written or run
    if args.dry_run:
        print_dry_run(sweep, source, console)
        return 0
    argv = [os.path.basename(sys.argv[0]) or "crossbar-sim"] + list(getattr(args, "_argv", []) or sys.argv[1:])
    return run_sweep(sweep, args.out, argv=argv, workers=args.workers, scheduler=args.scheduler,
                     connect_timeout=args.connect_timeout, resume=args.resume, overwrite=args.overwrite,
                     quiet=args.quiet, figures=not args.no_plot, figures_dir=args.figures_dir, report=report,
                     console=console, threads=getattr(args, "threads", None))


def run(args) -> int:
    from crossbar_sim.engine.spec import experiment_report, resolve_spec

    spec, source = resolve_spec(args.experiment)
    return run_spec(spec, args, source, report=experiment_report(args.experiment))
