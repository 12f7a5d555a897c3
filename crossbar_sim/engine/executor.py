"""The executor: run a sweep's points in this process, on a local process pool or on a Dask cluster.

A run is a pure function of its config and its seed (:func:`run_point`), so results do not depend on where it
executes; the caller (the parent process) receives every result and is the only writer of the result file.
"""
from __future__ import annotations

import json
import os
import signal
import time
from typing import Callable

import numpy as np

from ..config import Config
from ..errors import ConfigError, SimulatorError
from ..least_squares.training import RunResult, train
from . import spec as _spec  # noqa: F401 - registers RunConfig and the device configs for from_json


# ------------------------------------------------------------------------------------------ running
def run_point(payload: dict, progress: Callable[[int], None] | None = None) -> RunResult:
    """Run one sweep point (in any process): ``payload = {"run_id", "config" (RunConfig JSON), "seed",
    "threads"}``. Unexpected errors are returned as a ``failed`` result rather than raised."""
    import traceback

    import numba

    from ..tiles.analog import set_num_threads

    threads = payload.get("threads")
    before = numba.get_num_threads()
    if threads:
        set_num_threads(int(threads))
    t0 = time.perf_counter()
    cfg = None
    try:
        cfg = Config.from_json(payload["config"])
        return train(cfg.task, cfg.train, seed=int(payload["seed"]), progress=progress)
    except Exception as exc:  # noqa: BLE001 - a failing run must not take the sweep down
        tb = traceback.format_exc(limit=4)
        config = ({"task": cfg.task.to_dict(), "train": cfg.train.to_dict()} if cfg is not None
                  else json.loads(payload["config"]))
        return RunResult(config=config,
                         seed=int(payload["seed"]), steps=np.zeros(0, np.int64), metrics={},
                         wall_time_s=time.perf_counter() - t0, status="failed",
                         error=f"{type(exc).__name__}: {exc}\n{tb}")
    finally:
        if threads:
            set_num_threads(before)


def _worker_init(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    from ..tiles.analog import set_num_threads

    set_num_threads(threads)


def payloads(sweep: dict, run_ids, threads: int | None) -> list[dict]:
    by_id = {p["run_id"]: p for p in sweep["points"]}
    return [{"run_id": r, "config": sweep["configs"][r].to_json(), "seed": by_id[r]["seed"], "threads": threads}
            for r in run_ids]


def threads_per_worker(sweep: dict, workers: int) -> int:
    """Numba threads per worker: ``cores // workers`` when some tile of the sweep is big enough for the
    parallel update kernel (``tile.PARALLEL_MIN_DEVICES`` devices), else 1 (smaller tiles run serially,
    and an idle thread pool only adds a synchronisation per sample, which is slow on a busy machine)."""
    from ..tiles.analog import PARALLEL_MIN_DEVICES

    cores = os.cpu_count() or 1
    biggest = max(c.task.in_size * c.task.out_size for c in sweep["configs"].values())
    if biggest < PARALLEL_MIN_DEVICES:
        return 1
    return max(1, cores // max(1, workers))


def execute(jobs: list[dict], workers: int, scheduler: str | None, on_result: Callable, step_progress=None,
            threads: int = 1, connect_timeout: float = 20.0) -> None:
    """Run ``jobs`` and call ``on_result(run_id, RunResult)`` in this process as each one finishes.

    ``scheduler``: address of a Dask distributed scheduler (else a local process pool of ``workers``;
    ``workers == 1`` or a single job runs in this process, with per-step progress for a single job).
    ``threads``: numba threads of each run (``workers * threads`` should not exceed the cores).
    """
    if not jobs:
        return
    if scheduler:
        _execute_dask(jobs, scheduler, on_result, threads, connect_timeout)
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            on_result(job["run_id"], run_point(dict(job, threads=threads),
                                               progress=step_progress if len(jobs) == 1 else None))
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    ex = cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                                initializer=_worker_init, initargs=(threads,))
    try:
        futs = {ex.submit(run_point, dict(job, threads=threads)): job["run_id"] for job in jobs}
        for fut in cf.as_completed(futs):
            try:
                res = fut.result()
            except cf.process.BrokenProcessPool:
                raise SimulatorError(
                    "a worker process died (killed, or out of memory?); the finished runs are saved, "
                    "run the same command with --resume to continue") from None
            on_result(futs[fut], res)
    except BaseException:
        for p in list((getattr(ex, "_processes", None) or {}).values()):
            try:
                p.terminate()
            except Exception:  # noqa: BLE001 - already gone
                pass
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _execute_dask(jobs: list[dict], scheduler: str, on_result: Callable, threads: int = 1,
                  connect_timeout: float = 20.0) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'crossbar-sim[dask]'.") from None
    try:
        client = Client(scheduler, timeout=f"{connect_timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"Cannot connect to the Dask scheduler at {scheduler!r}: {exc}.") from None
    try:
        futs = {}
        for job in jobs:
            fut = client.submit(run_point, dict(job, threads=threads), pure=False,
                                key=f"crossbar-sim-run-{job['run_id']}-{os.getpid()}-{time.time_ns()}")
            futs[fut] = job["run_id"]
        try:
            for fut in as_completed(list(futs), loop=client.loop):
                on_result(futs[fut], fut.result())
        except BaseException:
            client.cancel(list(futs))
            raise
    finally:
        client.close()
