"""The one runner of every experiment: an expanded sweep -> executor -> store -> tables and figures.

``crossbar-sim sweep``, ``train`` and ``lowrank`` all end here (:func:`run_sweep`); they only differ in how they
build the spec. What the runner guarantees, whatever the kind:

* the output is owned by this process for the whole sweep (a second writer is refused, naming our PID);
* every finished run is saved as it ends (journal, then the main file), so a crash, a kill or a full disk loses
  only the runs in flight, and those continue from their last checkpoint on ``--resume``;
* the kernels are compiled once, here, before any worker starts (a progress line says so), and never inside a
  run's wall time;
* a printout cut by a closed pipe (``| head``) never stops the sweep.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable

from ..errors import ConfigError, FormatError
from .kinds import checkpoint_dir, checkpoint_path, get_kind, read_checkpoint_header
from .store import OutputLock, SweepStore, eprint, open_results, read_runs


# ------------------------------------------------------------------------------------------ output
class Console:
    """Printing that survives a closed pipe: after a ``BrokenPipeError`` stdout goes to /dev/null and the sweep
    goes on."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.broken = False

    def print(self, msg: str = "", file=None) -> None:
        file = file or sys.stdout
        if self.broken and file is sys.stdout:
            return
        try:
            print(msg, file=file, flush=True)
        except BrokenPipeError:
            self.broken = True
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())


def check_out_path(out: str, option: str = "--out") -> str:
    """A writable result path: one :class:`ConfigError` line for an empty path, a directory, a missing or
    read-only folder."""
    if not isinstance(out, str) or not out.strip():
        raise ConfigError(f"{option} must name a file (e.g. {option} results.h5). Got {out!r}.")
    if os.path.isdir(out):
        raise ConfigError(f"{option} {out} is a directory; give a file name inside it (e.g. {out.rstrip('/')}/"
                          f"results.h5).")
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise ConfigError(f"{option} {out}: the folder {d} does not exist.")
    if not os.access(d, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {out}: the folder {d} is not writable.")
    if os.path.exists(out) and not os.access(out, os.W_OK):
        raise ConfigError(f"{option} {out} is read-only.")
    return out


@contextlib.contextmanager
def deferred_interrupts():
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
def sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, handler)
    old_hup = signal.signal(signal.SIGHUP, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGHUP, old_hup)


def fmt_point(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


# ------------------------------------------------------------------------------------------ compile once
def compile_kernels(kind, configs: list, console: Console, quiet: bool = False) -> float:
    """Compile (or load from Numba's cache) every kernel the configs need, in this process; returns the seconds.

    A line is printed when this takes more than 2 s (a cold cache: once per installation)."""
    t0 = time.perf_counter()
    done = threading.Event()

    def announce():
        if not done.wait(2.0) and not quiet:
            console.print("compiling the Numba kernels (once per installation; 1-5 minutes on 2 cores, cached "
                          "afterwards) ...", file=sys.stderr)

    th = threading.Thread(target=announce, daemon=True)
    th.start()
    try:
        kind.warmup(configs)
    finally:
        done.set()
    dt = time.perf_counter() - t0
    if dt > 2.0 and not quiet:
        console.print(f"kernels ready in {dt:.0f} s", file=sys.stderr)
    return dt


# ------------------------------------------------------------------------------------------ the runner
def check_checkpoints(out: str, sweep: dict, pending: list[str]) -> dict:
    """Headers of the checkpoints of ``pending`` runs; one :class:`FormatError` line for one that cannot be read
    or belongs to another run (before anything runs or is written)."""
    found = {}
    d = checkpoint_dir(out)
    if not os.path.isdir(d):
        return found
    for rid in pending:
        p = checkpoint_path(out, rid)
        if os.path.exists(p):
            head = read_checkpoint_header(p)
            if head["config"] != sweep["configs"][rid].to_json() or head["kind"] != sweep["kind"]:
                raise FormatError(f"{p} belongs to another configuration of run {rid}; delete it to restart that "
                                  f"run from its beginning.")
            found[rid] = head
    return found


def run_sweep(sweep: dict, out: str, *, argv=(), workers: int | None = None, scheduler: str | None = None,
              connect_timeout: float = 20.0, resume: bool = False, overwrite: bool = False, quiet: bool = False,
              figures: bool = True, figures_dir: str | None = None, report: Callable[[str], str] | None = None,
              console: Console | None = None, threads: int | None = None) -> int:
    """Run every pending point of ``sweep`` (:func:`crossbar_sim.engine.spec.expand`) into ``out``.

    Returns the exit code: 0 (every run finished), 1 (some failed), 130 (interrupted; the finished runs are saved).
    """
    from tqdm import tqdm

    console = console or Console(quiet)
    kind = get_kind(sweep["kind"])
    check_out_path(out)
    if figures_dir is not None:
        try:
            os.makedirs(figures_dir, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--figures-dir {figures_dir}: cannot create that folder ({exc.strerror}).") from None
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be >= 1. Got {workers}.")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.")
    if not isinstance(connect_timeout, (int, float)) or not connect_timeout > 0:
        raise ConfigError(f"--connect-timeout must be > 0 seconds. Got {connect_timeout}.")
    client = None
    if scheduler:
        from .executor import connect_dask

        client = connect_dask(scheduler, connect_timeout)  # before anything is written
    try:
        with OutputLock(out):
            return _run_locked(sweep, out, kind, argv, workers, scheduler, client, resume, overwrite, quiet,
                               figures, figures_dir, report, console, tqdm, threads)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=5)


def _run_locked(sweep, out, kind, argv, workers, scheduler, client, resume, overwrite, quiet, figures, figures_dir,
                report, console, tqdm, threads_override=None):
    from .executor import execute, payloads

    n = len(sweep["points"])
    if resume and os.path.exists(out):
        with open_results(out) as f:  # resuming another version's file: one line before anything changes
            from .store import check_format

            check_format(f, out, writable=True)
    pre_ids = [p["run_id"] for p in sweep["points"]]
    if resume:
        check_checkpoints(out, sweep, pre_ids)
    store = SweepStore(out, sweep, argv=list(argv), resume=resume, overwrite=overwrite)
    for msg in store.messages:
        console.print(msg, file=sys.stderr)
    done = set(store.done_ids())
    pending = [p["run_id"] for p in sweep["points"] if p["run_id"] not in done]
    ckpts = check_checkpoints(out, sweep, pending) if resume else {}
    points = {p["run_id"]: p for p in sweep["points"]}
    n_workers = min(workers, max(1, len(pending)))
    where = f"Dask scheduler {scheduler}" if scheduler else (
        "this process" if n_workers == 1 else f"{n_workers} worker processes")
    console.print(f"{sweep['name'] or 'sweep'}: {n} runs ({len(done)} already done), running {len(pending)} on "
                  f"{where} -> {out}" + (f"; {len(ckpts)} continue from their checkpoints" if ckpts else ""))
    if pending:  # on a Dask cluster this fills the kernel cache for workers that share this file system
        compile_kernels(kind, [sweep["configs"][r] for r in pending], console, quiet)
    configs = [sweep["configs"][r] for r in pending]
    threads = 1 if (scheduler or not configs) else kind.parallel_threads(configs, n_workers)
    if threads_override:
        threads = int(threads_override)
    has_ckpt = kind.name in ("network", "lm")
    jobs = payloads(sweep, pending, threads, out, resume_ids=set(ckpts))
    bar = tqdm(total=len(pending), unit="run", desc="runs", disable=quiet or None, file=sys.stderr,
               mininterval=0.5, dynamic_ncols=True)
    run_bar = None
    if len(pending) == 1 and not scheduler:
        rid = pending[0]
        run_bar = tqdm(total=kind.run_size(sweep["configs"][rid]), unit=kind.unit, desc=f"run {rid}", leave=False,
                       disable=quiet or None, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
    counter = {"done": len(done), "failed": 0}

    def run_progress(done_units, total):
        if run_bar is not None:
            run_bar.update(float(done_units) - run_bar.n)

    def on_result(run_id, rec):
        p = points[run_id]
        with deferred_interrupts():
            store.write(run_id, rec, p["values"], p["index"])
            if rec.done:
                with contextlib.suppress(OSError):
                    os.remove(checkpoint_path(out, run_id))
        if rec.done:
            counter["done"] += 1
            msg = (f"[{counter['done']:>{len(str(n))}}/{n}] run {run_id}  {fmt_point(p['values'])}  "
                   f"{kind.summary_line(rec)}  {rec.wall_time_s:.1f} s")
            if rec.status != "complete":
                msg += f"  ({rec.status}: {rec.error})"
        else:
            counter["failed"] += 1
            msg = f"[ failed ] run {run_id}  {fmt_point(p['values'])}: {rec.error.splitlines()[0]}"
        if not console.broken:
            try:
                bar.write(msg, file=sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:
                console.print("")  # switches the console to /dev/null
        bar.update(1)

    t0 = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            execute(jobs, workers, client, on_result, step_progress=run_progress)
    except KeyboardInterrupt:
        bar.close()
        if run_bar is not None:
            run_bar.close()
        saved = len(store.done_ids())
        console.print(f"crossbar-sim: interrupted; {saved} of {n} runs are saved in {out}"
                      + (" (runs in flight keep their last checkpoint)" if has_ckpt else "")
                      + f". Run the same command with --resume to finish the other {n - saved}.", file=sys.stderr)
        return 130
    finally:
        bar.close()
        if run_bar is not None:
            run_bar.close()
    elapsed = time.perf_counter() - t0
    complete = store.finish()
    console.print(f"{len(pending)} runs in {elapsed:.1f} s; {counter['done']} of {n} finished"
                  + (f", {counter['failed']} failed (run again with --resume to retry them)" if counter["failed"]
                     else "") + f" -> {out}")
    with open_results(out) as f:
        table = kind.table(f)
    if table:
        console.print(table)
    if report is not None:
        text = report(out)
        if text:
            console.print(text)
    if sweep["figures"] and figures and complete:
        from .plots import figure_path, make_figure

        for fig in sweep["figures"]:
            path = figure_path(out, fig, figures_dir)
            make_figure(out, fig, path)
            console.print(f"figure: {path}")
    return 0 if not counter["failed"] else 1


def summary_rows(path: str) -> list[dict]:
    """The runs of a result file (any kind), for scripts: :func:`crossbar_sim.engine.store.read_runs`."""
    with open_results(path) as f:
        return read_runs(f)


__all__ = ["run_sweep", "check_out_path", "Console", "compile_kernels", "eprint", "summary_rows"]
