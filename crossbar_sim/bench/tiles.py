"""Benchmarks (not tests): pulsed update and MVM kernels on the reference workload.

Reference workload of the core issue (keep it fixed so numbers compare across the project's life):
SoftBounds device, ``w_max = -w_min = 0.8``, ``dw_min = 0.001``, aihwkit's default variations (dtod 0.3 on
dw_min and bounds, up_down_dtod 0.01, cycle-to-cycle dw_min_std 0.3), ``lr = 0.05``, ``x, d ~ N(0, 0.5^2)``,
``desired_bl = 31`` with update-BL and update management; square tiles 256, 512, 1024; batches 1 and 64.

Every timing is repeated and reported as the median and the minimum (this machine's speed varies by up to
3x from second to second, so ratios are measured in the same run, interleaved). Reported per case: time per
sample, ns per device per sample, mean pulses per device per sample, the ratio to the NumPy twin (on a few
samples, median of 3 interleaved runs: the twin is slow), the ratio of pulse-by-pulse to closed form, and
forward / backward MVM time (perfect and default periphery) against plain float32 ``x @ W.T`` / ``d @ W`` on
one BLAS thread.

Run ``crossbar-sim bench`` or ``python -m crossbar_sim.bench.tiles``.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from ..kernels import reference as R
from ..kernels import update as K
from ..tiles.params import TileConfig
from ..tiles.analog import AnalogTile, set_num_threads, zig_tables


def reference_device():
    from crossbar_sim.device_models import SoftBoundsDevice

    return SoftBoundsDevice(w_max=0.8, w_min=-0.8, dw_min=0.001)


def _timeit(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def bench_update(size: int, batch: int, threads: int = 1, repeat: int = 7, twin_samples: int = 2,
                 seed: int = 0) -> dict:
    """Time the pulsed update of the reference workload on a ``size x size`` tile."""
    set_num_threads(threads)
    rng = np.random.default_rng(seed)
    tile = AnalogTile(size, size, TileConfig(device=reference_device()), seed=seed, threads=threads)
    w0 = rng.uniform(-0.2, 0.2, (size, size)).astype(np.float32)
    tile.set_weights(w0)
    pool = 4
    Xs = rng.normal(0, 0.5, (pool, batch, size)).astype(np.float32)
    Ds = rng.normal(0, 0.5, (pool, batch, size)).astype(np.float32)
    dev = tile.devices
    ki, wi, fi = zig_tables()
    nblocks = 1 if threads <= 1 else min(4 * threads, size)
    state = {"k": 0}

    w = w0.copy()
    cnt = np.zeros((2, size, size), np.int64)
    st = np.zeros(K.N_ST, np.int64)

    def run(closed_form, calls=1, path=K.PATH_AUTO):
        """``calls`` consecutive kernel calls of ``batch`` samples each (inputs from the pool) on a fresh copy of
        the weights; returns their time (the copy is not timed)."""
        w[...] = w0
        cnt[...] = 0
        st[...] = 0
        t = 0.0
        for _ in range(calls):
            k = state["k"] % pool
            state["k"] += 1
            args = (w, w, dev.dp, dev.dpr, cnt, Xs[k], Ds[k], 0.05, dev.granularity, 31, True, True, 1.0,
                    K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, 0.0, dev.tp, closed_form,
                    np.uint64(seed), np.uint64(state["k"] * batch), ki, wi, fi, st, 0, path)
            t0 = time.perf_counter()
            if nblocks > 1:
                K.pulsed_update(*args, nblocks)
            else:
                K.pulsed_update_serial(*args)
            t += time.perf_counter() - t0
        return t

    # a closed-form timing covers at least 16 samples (batch 1: 16 calls one after the other, as a training loop
    # makes them), so that one timing is not one 2 ms call on a host whose speed moves from moment to moment
    cf_calls = max(1, -(-16 // batch))
    run(True)  # compile / warm up
    pulses = st[K.ST_PULSES] / (batch * size * size)
    run(False)
    ns = max(1, min(twin_samples, batch))  # the NumPy twin (pulse by pulse) is timed on a few samples

    def twin():
        wt = w0.copy()
        cnt = np.zeros((size, size, 2), np.int64)
        t0 = time.perf_counter()
        R.pulsed_update(wt, wt, dev.dp, cnt, Xs[0][:ns], Ds[0][:ns], 0.05, dev.granularity, 31, True, True, 1.0,
                        K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, 0.0, dev.tp, rng)
        return (time.perf_counter() - t0) / ns

    cf = []
    pp = []
    tw = []
    for i in range(repeat):  # interleaved: all see the same machine state (the slow twin: 3 times at most)
        # each timed call right after an untimed one of the same kind: the tile's arrays are in cache as in a
        # training loop that updates it every step (not flushed by the twin's or the other path's run)
        run(True)
        cf.append(run(True, cf_calls) / cf_calls)
        run(False)
        pp.append(run(False))
        if i < 3:
            tw.append(twin())
    t_cf = statistics.median(cf) / batch
    t_pp = statistics.median(pp) / batch
    t_twin = statistics.median(tw)
    n_dev = size * size
    return {
        "kind": "update", "size": size, "batch": batch, "threads": threads,
        "ms_per_sample": t_cf * 1e3, "ms_per_sample_min": min(cf) / batch * 1e3,
        "ns_per_device_sample": t_cf / n_dev * 1e9, "ns_per_device_sample_min": min(cf) / batch / n_dev * 1e9,
        "pulses_per_device_sample": float(pulses),
        "pulse_by_pulse_ns_per_device_sample": t_pp / n_dev * 1e9,
        "closed_form_speedup": t_pp / t_cf,
        "numpy_twin_ms_per_sample": t_twin * 1e3,
        "speedup_vs_numpy_twin": t_twin / t_cf,
    }


def _one_blas_thread():
    """Context manager limiting BLAS to one thread (threadpoolctl), or a no-op if it is not installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def bench_forward(size: int, batch: int, threads: int = 1, repeat: int = 9, seed: int = 0) -> dict:
    """Forward and backward MVMs: perfect and full default periphery against plain float32 products.

    The default periphery is aihwkit's: noise management (abs-max), iterative bound management, 7-bit DAC,
    output noise 0.06, 9-bit ADC. Baselines: ``x @ W.T`` (forward) and ``d @ W`` (backward) of the same
    shapes and the same weight array, with BLAS limited to one thread (threadpoolctl) like the kernels.
    All timings are interleaved in the same loop (each timing right after an untimed call of the same function,
    so every contender finds its weights in cache as in a steady training loop); a timing covers as many calls
    as make ~2 ms of the plain product (one 15 us call is too short on this host); medians are reported.
    """
    set_num_threads(threads)
    rng = np.random.default_rng(seed)
    tile_p = AnalogTile(size, size, TileConfig.perfect(reference_device()), seed=seed)
    tile_d = AnalogTile(size, size, TileConfig(device=reference_device()), seed=seed)
    W = rng.uniform(-0.5, 0.5, (size, size)).astype(np.float32)
    tile_p.set_weights(W)
    tile_d.set_weights(W)
    X = rng.normal(0, 0.5, (batch, size)).astype(np.float32)
    D = rng.normal(0, 0.5, (batch, size)).astype(np.float32)
    if batch == 1:  # what a network layer passes for one sample
        X, D = X[0], D[0]
    Wr = tile_d._w_app  # the very array the tile multiplies
    fns = {
        "gemm": lambda: X @ Wr.T,
        "perfect": lambda: tile_p.forward(X),
        "periphery": lambda: tile_d.forward(X),
        "gemm_bwd": lambda: D @ Wr,
        "periphery_bwd": lambda: tile_d.backward(D),
    }
    with _one_blas_thread():
        for f in fns.values():  # compile / warm up
            f()
        c0 = dict(tile_d.counters)
        tile_d.forward(X)
        bm_rows = tile_d.counters["mvm"] - c0["mvm"] - (1 if X.ndim == 1 else X.shape[0])
        # calls per timing: at least ~2 ms of the plain product, so that one timing is not one 15 us call
        t_one = _timeit(fns["gemm"], 5)[1]
        calls = max(1, int(2e-3 / max(t_one, 1e-7)))
        ts = {k: [] for k in fns}
        for _ in range(repeat):
            for k, f in fns.items():
                f()  # same cache state for every contender: its weights were just read
                t0 = time.perf_counter()
                for _ in range(calls):
                    f()
                ts[k].append((time.perf_counter() - t0) / calls)
    med = {k: statistics.median(v) for k, v in ts.items()}
    return {
        "kind": "forward", "size": size, "batch": batch, "threads": threads,
        "gemm_ms": med["gemm"] * 1e3, "perfect_ms": med["perfect"] * 1e3, "periphery_ms": med["periphery"] * 1e3,
        "perfect_vs_gemm": med["perfect"] / med["gemm"], "periphery_vs_gemm": med["periphery"] / med["gemm"],
        "gemm_bwd_ms": med["gemm_bwd"] * 1e3, "periphery_bwd_ms": med["periphery_bwd"] * 1e3,
        "periphery_bwd_vs_gemm": med["periphery_bwd"] / med["gemm_bwd"],
        "bm_repeated_rows": int(bm_rows),
    }


AIHWKIT_TILE_SCRIPT = Path(__file__).with_name("aihwkit_tile.py")
_AIHWKIT_TILE_KEYS = ("tool", "size", "batch", "ns_per_device_sample", "forward_ms", "matmul_ms")


def run_aihwkit_tile(python, size: int, batch: int, threads: int = 1, repeat: int = 5, runner=None) -> dict:
    """aihwkit's update and forward timings on the reference workload (``crossbar_sim/bench/aihwkit_tile.py`` run by
    interpreter ``python``, which must have aihwkit); one-line errors."""
    import subprocess

    from .aihwkit_ref import run_script

    cmd = [str(python), str(AIHWKIT_TILE_SCRIPT), "--size", str(int(size)), "--batch", str(int(batch)),
           "--repeat", str(int(repeat)), "--threads", str(int(threads))]
    return run_script(cmd, _AIHWKIT_TILE_KEYS, f"tile {size}x{size} batch {batch}", threads,
                      runner or subprocess.run)


def attach_aihwkit_tile(row: dict, ref: dict) -> dict:
    """Add aihwkit's timing of the same shape (from :func:`run_aihwkit_tile`) to a result row, with the ratios."""
    row["aihwkit_version"] = ref.get("aihwkit_version")
    if row["kind"] == "update":
        row["aihwkit_ns_per_device_sample"] = float(ref["ns_per_device_sample"])
        row["speedup_vs_aihwkit"] = float(ref["ns_per_device_sample"]) / row["ns_per_device_sample"]
    else:
        row["aihwkit_forward_ms"] = float(ref["forward_ms"])
        row["aihwkit_forward_vs_matmul"] = float(ref["forward_ms"]) / float(ref["matmul_ms"])
        row["speedup_vs_aihwkit"] = float(ref["forward_ms"]) / row["periphery_ms"]
    return row


def run_benchmarks(sizes=(256, 512, 1024), batches=(1, 64), threads=(1,), kinds=("update", "forward"),
                   repeat=7, progress=print, aihwkit_python=None, aihwkit_runner=None) -> list[dict]:
    """Every (threads, size, batch, kind) row; with ``aihwkit_python`` each shape is also timed in aihwkit right
    after ours (same machine state, one process at a time) and the rows carry the measured ratios."""
    if aihwkit_python is not None:
        from .aihwkit_ref import check_aihwkit_python

        check_aihwkit_python(aihwkit_python, **({"runner": aihwkit_runner} if aihwkit_runner else {}))
    out = []
    for th in threads:
        for size in sizes:
            for batch in batches:
                rows = []
                if "update" in kinds:
                    rows.append(bench_update(size, batch, th, repeat=repeat))
                if "forward" in kinds:
                    rows.append(bench_forward(size, batch, th, repeat=max(repeat, 9)))
                if aihwkit_python is not None:
                    ref = run_aihwkit_tile(aihwkit_python, size, batch, th, repeat=min(repeat, 5),
                                           runner=aihwkit_runner)
                    rows = [attach_aihwkit_tile(r, ref) for r in rows]
                for r in rows:
                    out.append(r)
                    progress(format_row(r))
    return out


def format_row(r: dict) -> str:
    if r["kind"] == "update":
        line = (f"update  {r['size']:5d}x{r['size']:<5d} batch {r['batch']:3d} threads {r['threads']}: "
                f"{r['ms_per_sample']:8.3f} ms/sample  {r['ns_per_device_sample']:6.2f} ns/device/sample "
                f"(min {r['ns_per_device_sample_min']:.2f})  {r['pulses_per_device_sample']:.2f} pulses/device/sample  "
                f"x{r['speedup_vs_numpy_twin']:.0f} vs NumPy twin  pulse-by-pulse {r['pulse_by_pulse_ns_per_device_sample']:.1f} ns "
                f"(closed form x{r['closed_form_speedup']:.1f})")
        if "aihwkit_ns_per_device_sample" in r:
            line += (f"  | aihwkit {r['aihwkit_version']} {r['aihwkit_ns_per_device_sample']:.1f} ns "
                     f"(x{r['speedup_vs_aihwkit']:.1f}, measured now)")
        return line
    line = (f"forward {r['size']:5d}x{r['size']:<5d} batch {r['batch']:3d} threads {r['threads']}: "
            f"x@W.T {r['gemm_ms']:.3f} ms  perfect {r['perfect_ms']:.3f} ms (x{r['perfect_vs_gemm']:.2f})  "
            f"default periphery {r['periphery_ms']:.3f} ms (x{r['periphery_vs_gemm']:.2f}, "
            f"{r['bm_repeated_rows']} rows repeated by BM) | backward d@W {r['gemm_bwd_ms']:.3f} ms  "
            f"default periphery {r['periphery_bwd_ms']:.3f} ms (x{r['periphery_bwd_vs_gemm']:.2f})")
    if "aihwkit_forward_ms" in r:
        line += (f"  | aihwkit {r['aihwkit_version']} forward {r['aihwkit_forward_ms']:.3f} ms "
                 f"(x{r['aihwkit_forward_vs_matmul']:.2f} its matmul; ours x{r['speedup_vs_aihwkit']:.1f} faster, "
                 f"measured now)")
    return line


def main(argv=None):  # pragma: no cover - thin wrapper
    from ..cli import main as cli_main

    return cli_main(["bench", *(argv or [])])


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main(sys.argv[1:]))


