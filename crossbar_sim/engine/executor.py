"""The executor: run a sweep's points in this process, on a local process pool or on a Dask cluster.

A run is a pure function of its kind, config and seed (:func:`run_point`), so results do not depend on where it
executes; the caller (the parent process) receives every :class:`~crossbar_sim.engine.record.RunRecord` and is the
only writer of the result file. Runs save checkpoints into ``<out>.journal/checkpoints/`` themselves (a Dask
worker needs that folder on a shared file system to resume mid-run; without one, an interrupted run restarts).

Worker processes exit when the parent dies (Linux ``PR_SET_PDEATHSIG``, plus a watchdog thread on the parent's
PID), so a killed sweep leaves no workers behind.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from typing import Callable

from ..config import Config
from ..errors import ConfigError, SimulatorError
from .kinds import RunContext, get_kind
from .record import failed_record


def run_point(payload: dict, progress: Callable | None = None):
    """Run one sweep point (in any process). ``payload``: ``run_id``, ``kind``, ``config`` (JSON), ``seed``,
    ``threads``, ``checkpoint`` (``{"path", "every", "minutes"}`` or None), ``resume``, ``floor_fraction``.
    Unexpected errors come back as a ``failed`` record rather than raised."""
    import numba

    from ..tiles.analog import set_num_threads
    from . import spec as _spec  # noqa: F401 - registers RunConfig and the device configs for from_json

    kind = get_kind(payload["kind"])
    kind.import_configs()
    threads = payload.get("threads")
    before = numba.get_num_threads()
    if threads:
        set_num_threads(int(threads))
    t0 = time.perf_counter()
    cfg = None
    ck = payload.get("checkpoint") or {}
    ctx = RunContext(payload["run_id"], kind.name, payload["config"], int(payload["seed"]), checkpoint=ck.get("path"),
                     every=ck.get("every", 1), minutes=ck.get("minutes", 10.0), resume=bool(payload.get("resume")),
                     progress=progress)
    ctx.floor_fraction = payload.get("floor_fraction", 0.2)
    try:
        from ..parallel import blas_threads

        cfg = Config.from_json(payload["config"])
        with blas_threads(1):  # the same bits whatever the process's BLAS thread count
            return kind.run(cfg, int(payload["seed"]), ctx)
    except Exception as exc:  # noqa: BLE001 - a failing run must not take the sweep down
        tb = traceback.format_exc(limit=4)
        import json

        config = kind.resolved(cfg) if cfg is not None else json.loads(payload["config"])
        return failed_record(kind.name, config, int(payload["seed"]), f"{type(exc).__name__}: {exc}\n{tb}",
                             time.perf_counter() - t0)
    finally:
        if threads:
            set_num_threads(before)


def payloads(sweep: dict, run_ids, threads: int | None = None, out: str | None = None,
             resume_ids=()) -> list[dict]:
    """The jobs of ``run_ids``: what :func:`run_point` needs, picklable (checkpoints under ``out``'s journal for the
    kinds that save them; ``resume_ids`` continue from theirs)."""
    from .kinds import checkpoint_path

    by_id = {p["run_id"]: p for p in sweep["points"]}
    has_ckpt = sweep["kind"] in ("network", "lm") and out is not None
    jobs = []
    for rid in run_ids:
        ck = dict(sweep["checkpoint"], path=os.path.abspath(checkpoint_path(out, rid))) if has_ckpt else None
        jobs.append({"run_id": rid, "kind": sweep["kind"], "config": sweep["configs"][rid].to_json(),
                     "seed": by_id[rid]["seed"], "threads": threads, "checkpoint": ck, "resume": rid in resume_ids,
                     "floor_fraction": sweep.get("floor_fraction", 0.2)})
    return jobs


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when its parent process dies (SIGKILL, SIGHUP, a crash)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the watchdog below still works
        pass

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="crossbar-sim-parent-watchdog").start()


def _worker_init(threads: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    _die_with_parent(parent)
    from ..tiles.analog import set_num_threads

    set_num_threads(threads)


def execute(jobs: list[dict], workers: int, scheduler, on_result: Callable, step_progress=None,
            threads: int | None = None, connect_timeout: float = 20.0) -> None:
    """Run ``jobs`` (payloads) and call ``on_result(run_id, RunRecord)`` in this process as each one finishes.

    ``scheduler``: address of a Dask distributed scheduler (else a local process pool of ``workers``;
    ``workers == 1`` or a single job runs in this process, with per-run progress for a single job).
    ``threads``: numba threads of each run (``workers * threads`` should not exceed the cores); None: the jobs'
    own ``threads``.
    """
    if not jobs:
        return
    if threads is not None:
        jobs = [dict(j, threads=threads) for j in jobs]
    threads = max([j.get("threads") or 1 for j in jobs])
    if scheduler:
        _execute_dask(jobs, scheduler, on_result, connect_timeout)
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            on_result(job["run_id"], run_point(job,
                                                 progress=step_progress if len(jobs) == 1 else None))
        return
    _execute_pool(jobs, min(workers, len(jobs)), on_result, threads)


def _pool_worker(tasks, results, threads: int, parent: int) -> None:
    """A worker process of the local pool: run jobs from ``tasks`` until the ``None`` sentinel."""
    _worker_init(threads, parent)
    while True:
        job = tasks.get()
        if job is None:
            return
        results.put((job["run_id"], run_point(job)))


def _execute_pool(jobs: list[dict], workers: int, on_result: Callable, threads: int) -> None:
    """A local pool of ``workers`` spawned processes. On an interrupt or an error the workers are killed at once
    (their runs continue from their checkpoints on ``--resume``); a worker that dies is one clear error."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for job in jobs:
        tasks.put(job)
    for _ in range(workers):
        tasks.put(None)
    procs = [ctx.Process(target=_pool_worker, args=(tasks, results, threads, os.getpid()), daemon=True,
                         name=f"crossbar-sim-worker-{k}") for k in range(workers)]
    for p in procs:
        p.start()
    left = len(jobs)
    try:
        while left:
            try:
                run_id, rec = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise SimulatorError(
                        f"a worker process died (exit code {dead[0].exitcode}: killed, or out of memory?); the "
                        f"finished runs are saved, run the same command with --resume to continue") from None
                continue
            left -= 1
            on_result(run_id, rec)
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=5)
        for q in (tasks, results):
            q.cancel_join_thread()
            q.close()


def check_scheduler_address(address: str) -> str:
    """``tcp://HOST:PORT`` (or another Dask protocol); :class:`ConfigError` for an address Dask cannot parse."""
    import re

    if not isinstance(address, str) or not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?",
                                                         address.strip()):
        raise ConfigError(f"--scheduler expects a Dask scheduler address such as tcp://10.0.0.5:8786. Got "
                          f"{address!r}.")
    port = address.rstrip("/").rsplit(":", 1)[-1]
    if port.isdigit() and not 0 < int(port) < 65536:
        raise ConfigError(f"--scheduler: port {port} is out of range (1-65535).")
    return address.strip()


def connect_dask(scheduler: str, connect_timeout: float = 20.0):
    """A Dask client of ``scheduler``; one :class:`ConfigError` line when Dask is missing or the scheduler cannot
    be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'crossbar-sim[dask]'.") from None
    check_scheduler_address(scheduler)
    try:
        return Client(scheduler, timeout=f"{connect_timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"Cannot connect to the Dask scheduler at {scheduler!r}: {exc}.") from None


def _execute_dask(jobs: list[dict], scheduler, on_result: Callable, connect_timeout: float = 20.0) -> None:
    from distributed import as_completed

    client = scheduler if not isinstance(scheduler, str) else connect_dask(scheduler, connect_timeout)
    try:
        futs = {}
        for job in jobs:
            fut = client.submit(run_point, job, pure=False,
                                key=f"crossbar-sim-run-{job['run_id']}-{os.getpid()}-{time.time_ns()}")
            futs[fut] = job["run_id"]
        try:
            for fut in as_completed(list(futs), loop=client.loop):
                try:
                    rec = fut.result()
                except (OSError, TimeoutError) as exc:
                    raise SimulatorError(f"the Dask cluster was lost ({type(exc).__name__}: {exc}); the finished "
                                         f"runs are saved, run the same command with --resume to continue") from None
                on_result(futs[fut], rec)
        except BaseException:
            try:
                client.cancel(list(futs))
            except Exception:  # noqa: BLE001 - the scheduler may be gone
                pass
            raise
    finally:
        if isinstance(scheduler, str):
            try:
                client.close(timeout=5)
            except Exception:  # noqa: BLE001 - a lost scheduler: nothing to close
                pass
