"""``crossbar-sim sweep``: run a named experiment or a TOML spec, write every run to one HDF5 file."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time

EPILOG = """\
examples:
  crossbar-sim sweep                                   # the default experiment: convergence_vs_asymmetry
  crossbar-sim sweep convergence_vs_asymmetry --set train.steps=500 --set axes.seed=[0]
  crossbar-sim sweep my_sweep.toml --workers 4 --out my.h5
  crossbar-sim sweep my_sweep.toml --out my.h5 --resume   # continue after a crash or Ctrl-C
  crossbar-sim sweep my_sweep.toml --scheduler tcp://10.0.0.5:8786   # on a Dask cluster
  crossbar-sim sweep --dry-run                         # validate and list the runs only

--set keys: device.<p> (e.g. device.dw_min=1e-3), task.<p> (task.n_samples=50), train.<p> (train.steps=500,
train.transfer.fast_lr=0.02), a bare parameter name (dw_min=1e-3, lr=0.05), seed=N (the sweep seed) and
axes.<name>=[v1, v2] (replace an axis). Unknown keys and wrong types are errors.

axes: tau (w_max = -w_min = tau), seed (replicate labels), any device, training or task parameter (dw_min,
up_down, dw_min_std, algorithm, lr, noise_std, ...). Every run gets its own seed, spawned from the sweep seed
(numpy SeedSequence), so results are identical whatever --workers or --scheduler.
"""


def add_parser(sub):
    p = sub.add_parser(
        "sweep",
        help="run a device/algorithm sweep (default: convergence_vs_asymmetry) into an HDF5 file",
        description=(
            "Run every point of a sweep (a named experiment registered under the entry-point group "
            "crossbar_sim.experiments, or a TOML spec file) and write each finished run to one HDF5 file as it "
            "ends (layout: crossbar-sim format_version 1). The whole spec is validated before any run starts. "
            "A killed or interrupted sweep keeps every finished run; --resume runs only the missing ones."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", nargs="?", default=None, metavar="EXPERIMENT|SPEC.toml",
                   help="experiment name or TOML spec file (default: convergence_vs_asymmetry)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help="override a spec value (repeatable), e.g. --set device.dw_min=1e-3")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: all cores, %d here); 1 runs in this process"
                   % (os.cpu_count() or 1))
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask distributed scheduler (needs crossbar-sim[dask])")
    p.add_argument("--connect-timeout", type=float, default=20.0, metavar="SECONDS",
                   help="how long to try to reach the --scheduler (default: 20)")
    p.add_argument("--out", "-o", default="results.h5", metavar="FILE", help="result file (default: results.h5)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping finished runs")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--no-plot", action="store_true", help="do not write the experiment's figures")
    p.add_argument("--figures-dir", default=None, metavar="DIR",
                   help="folder of the figures (default: next to --out); each is named <out stem>_<kind>.png")
    p.add_argument("--dry-run", action="store_true", help="validate the spec, list the runs, run nothing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (summary lines are still printed)")
    return p


@contextlib.contextmanager
def _deferred_interrupts():
    """Hold SIGINT/SIGTERM while a run is being written, then raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _fmt_point(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


def run(args) -> int:
    from tqdm import tqdm

    from crossbar_sim.errors import ConfigError
    from crossbar_sim.engine.store import DONE_STATUSES, SweepStore, error_floor
    from crossbar_sim.engine.executor import execute, payloads, threads_per_worker
    from crossbar_sim.engine.spec import apply_cli_overrides, expand, resolve_spec

    spec, source = resolve_spec(args.experiment)
    spec = apply_cli_overrides(spec, args.set)
    sweep = expand(spec)  # every point validated before anything is written or run
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1. Got {workers}.")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.")
    n = len(sweep["points"])
    if args.dry_run:
        print(f"{sweep['name'] or source}: {n} runs, sweep seed {sweep['seed']}")
        for p in sweep["points"]:
            print(f"  {p['run_id']}  seed {p['seed']:>20d}  {_fmt_point(p['values'])}")
        return 0

    argv = [os.path.basename(sys.argv[0]) or "crossbar-sim"] + list(getattr(args, "_argv", []) or sys.argv[1:])
    store = SweepStore(args.out, sweep, argv=argv, resume=args.resume, overwrite=args.overwrite)
    for msg in store.messages:
        print(msg, file=sys.stderr)
    done = set(store.done_ids())
    pending = [p["run_id"] for p in sweep["points"] if p["run_id"] not in done]
    points = {p["run_id"]: p for p in sweep["points"]}
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else (
        "this process" if workers == 1 or len(pending) <= 1 else f"{min(workers, len(pending))} worker processes")
    print(f"{sweep['name'] or source}: {n} runs ({len(done)} already done), running {len(pending)} on {where} "
          f"-> {args.out}", flush=True)

    total_steps = {r: sweep["configs"][r].train.steps for r in pending}
    bar = tqdm(total=len(pending), unit="run", desc="runs", disable=args.quiet or None, file=sys.stderr,
               mininterval=0.5, dynamic_ncols=True)
    step_bar = None
    if len(pending) == 1 and not args.scheduler:
        step_bar = tqdm(total=total_steps[pending[0]], unit="step", desc=f"run {pending[0]}", leave=False,
                        disable=args.quiet or None, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
    counter = {"done": len(done), "failed": 0}

    def step_progress(step):
        if step_bar is not None:
            step_bar.update(step - step_bar.n)

    def on_result(run_id, result):
        p = points[run_id]
        with _deferred_interrupts():
            store.write(run_id, result, p["values"], p["index"])
        if result.status in DONE_STATUSES:
            counter["done"] += 1
            loss = result.metrics.get("loss")
            floor = error_floor(result.steps, loss, total_steps[run_id], sweep["floor_fraction"])
            msg = (f"[{counter['done']:>{len(str(n))}}/{n}] run {run_id}  {_fmt_point(p['values'])}  "
                   f"floor {floor:.4g}  final {float(loss[-1]):.4g}  {result.wall_time_s:.1f} s")
            if result.status != "complete":
                msg += f"  ({result.status}: {result.error})"
        else:
            counter["failed"] += 1
            msg = f"[ failed ] run {run_id}  {_fmt_point(p['values'])}: {result.error.splitlines()[0]}"
        bar.write(msg, file=sys.stdout)
        sys.stdout.flush()
        bar.update(1)

    t0 = time.perf_counter()
    try:
        with _sigterm_as_interrupt():
            jobs = payloads(sweep, pending, None)
            threads = 1 if args.scheduler else threads_per_worker(sweep, min(workers, max(1, len(pending))))
            execute(jobs, workers, args.scheduler, on_result, step_progress=step_progress, threads=threads,
                    connect_timeout=args.connect_timeout)
    except KeyboardInterrupt:
        bar.close()
        if step_bar is not None:
            step_bar.close()
        left = n - counter["done"]
        print(f"crossbar-sim sweep: interrupted; {counter['done']} of {n} runs are saved in {args.out}. "
              f"Run the same command with --resume to finish the other {left}.", file=sys.stderr)
        return 130
    finally:
        bar.close()
        if step_bar is not None:
            step_bar.close()
    elapsed = time.perf_counter() - t0
    complete = store.finish()
    print(f"{len(pending)} runs in {elapsed:.1f} s; {counter['done']} of {n} finished"
          + (f", {counter['failed']} failed (run again with --resume to retry them)" if counter["failed"] else "")
          + f" -> {args.out}")
    print_summary(args.out)
    if sweep["figures"] and not args.no_plot and complete:
        from crossbar_sim.engine.plots import figure_path, make_figure

        for kind in sweep["figures"]:
            out = figure_path(args.out, kind, args.figures_dir)
            make_figure(args.out, kind, out)
            print(f"figure: {out}")
    return 0 if not counter["failed"] else 1


def summary_rows(path: str):
    """Error floors (mean, std, n over seeds) grouped by the sweep point without its seed."""
    import numpy as np

    from crossbar_sim.engine.store import DONE_STATUSES, open_results, read_runs

    with open_results(path) as f:
        runs = [r for r in read_runs(f) if r["status"] in DONE_STATUSES]
    groups: dict = {}
    for r in runs:
        key = tuple((k, v) for k, v in r["point"].items() if k != "seed")
        groups.setdefault(key, []).append(r["error_floor"])
    return [(dict(k), float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
            for k, v in groups.items()]


def print_summary(path: str) -> None:
    """A table of error floors: rows tau (if swept), columns the other axes (mean +- std over seeds)."""
    from crossbar_sim.engine.plots import theory_summary  # Theorem 2's table, where the sweep has one
    if (text := theory_summary(path)) is not None:
        return print(text)
    rows = summary_rows(path)
    if not rows:
        return
    has_tau = all("tau" in k for k, *_ in rows)
    print("error floor (see the @error_floor_definition attribute; mean +- std over seeds):")
    if not has_tau:  # one line per configuration
        labels = [", ".join(f"{k}={v}" for k, v in key.items()) or "run" for key, *_ in rows]
        w = max(len(x) for x in labels) + 2
        for label, (key, mean, std, cnt) in zip(labels, rows):
            print("  " + label.ljust(w) + (f"{mean:.3g} +- {std:.2g}" if cnt > 1 else f"{mean:.3g}"))
        return
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
    print("  " + "tau".ljust(6) + "".join(c.rjust(width) for c in cols))
    for t in taus:
        print("  " + str(t).ljust(6) + "".join(cells.get((t, c), "").rjust(width) for c in cols))
