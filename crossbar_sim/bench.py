"""Benchmarks (not tests): pulsed update and MVM kernels on the reference workload.

Reference workload of the core issue (keep it fixed so numbers compare across the project's life):
SoftBounds device, ``w_max = -w_min = 0.8``, ``dw_min = 0.001``, aihwkit's default variations (dtod 0.3 on
dw_min and bounds, up_down_dtod 0.01, cycle-to-cycle dw_min_std 0.3), ``lr = 0.05``, ``x, d ~ N(0, 0.5^2)``,
``desired_bl = 31`` with update-BL and update management; square tiles 256, 512, 1024; batches 1 and 64.

Every timing is repeated and reported as the median and the minimum (this machine's speed varies by up to
3x from second to second, so ratios are measured in the same run, interleaved). Reported per case: time per
sample, ns per device per sample, mean pulses per device per sample, the ratio to the NumPy twin (on a few
samples: the twin is slow), the ratio of pulse-by-pulse to closed form, and forward MVM time (perfect and
default periphery) against a plain float32 ``x @ W.T``.

Run ``crossbar-sim bench`` or ``python -m crossbar_sim.bench``.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from .kernels import reference as R
from .kernels import update as K
from .params import TileConfig
from .tile import AnalogTile, set_num_threads, sqrt_table, zig_tables


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

    def run(closed_form):
        k = state["k"] % pool
        state["k"] += 1
        w = w0.copy()
        cnt = np.zeros((size, size, 2), np.int64)
        st = np.zeros(K.N_ST, np.int64)
        K.pulsed_update(w, w, dev.dp, cnt, Xs[k], Ds[k], 0.05, dev.granularity, 31, True, True, 1.0,
                        K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, 0.0, dev.tp, closed_form,
                        np.uint64(seed), np.uint64(state["k"] * batch), ki, wi, fi, sqrt_table(), st, nblocks)
        return st

    st = run(True)  # compile / warm up
    run(False)
    pulses = st[K.ST_PULSES] / (batch * size * size)
    cf = []
    pp = []
    for _ in range(repeat):  # interleaved: both see the same machine state
        cf.append(_timeit(lambda: run(True), 1)[0])
        pp.append(_timeit(lambda: run(False), 1)[0])
    t_cf = statistics.median(cf) / batch
    t_pp = statistics.median(pp) / batch
    # NumPy twin on a few samples (pulse by pulse)
    ns = max(1, min(twin_samples, batch))
    wt = w0.copy()
    cnt = np.zeros((size, size, 2), np.int64)
    t0 = time.perf_counter()
    R.pulsed_update(wt, wt, dev.dp, cnt, Xs[0][:ns], Ds[0][:ns], 0.05, dev.granularity, 31, True, True, 1.0,
                    K.PULSE_STOCHASTIC, dev.model, dev.noise_mode, dev.dw_min_std, 0.0, dev.tp, rng)
    t_twin = (time.perf_counter() - t0) / ns
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


def bench_forward(size: int, batch: int, threads: int = 1, repeat: int = 9, seed: int = 0) -> dict:
    """Forward MVM: perfect and default periphery against a plain float32 ``x @ W.T``."""
    set_num_threads(threads)
    rng = np.random.default_rng(seed)
    tile_p = AnalogTile(size, size, TileConfig.perfect(reference_device()), seed=seed)
    tile_d = AnalogTile(size, size, TileConfig(device=reference_device()), seed=seed)
    W = rng.uniform(-0.5, 0.5, (size, size)).astype(np.float32)
    tile_p.set_weights(W)
    tile_d.set_weights(W)
    X = rng.normal(0, 0.5, (batch, size)).astype(np.float32)
    Wr = tile_d.read_weights()
    tile_p.forward(X)
    tile_d.forward(X)
    g, p, d = [], [], []
    for _ in range(repeat):
        g.append(_timeit(lambda: X @ Wr.T, 1)[0])
        p.append(_timeit(lambda: tile_p.forward(X), 1)[0])
        d.append(_timeit(lambda: tile_d.forward(X), 1)[0])
    tg, tp_, td = (statistics.median(v) for v in (g, p, d))
    return {
        "kind": "forward", "size": size, "batch": batch, "threads": threads,
        "gemm_ms": tg * 1e3, "perfect_ms": tp_ * 1e3, "periphery_ms": td * 1e3,
        "perfect_vs_gemm": tp_ / tg, "periphery_vs_gemm": td / tg,
    }


def run_benchmarks(sizes=(256, 512, 1024), batches=(1, 64), threads=(1,), kinds=("update", "forward"),
                   repeat=7, progress=print) -> list[dict]:
    out = []
    for th in threads:
        for size in sizes:
            for batch in batches:
                if "update" in kinds:
                    r = bench_update(size, batch, th, repeat=repeat)
                    out.append(r)
                    progress(format_row(r))
                if "forward" in kinds:
                    r = bench_forward(size, batch, th, repeat=max(repeat, 9))
                    out.append(r)
                    progress(format_row(r))
    return out


def format_row(r: dict) -> str:
    if r["kind"] == "update":
        return (f"update  {r['size']:5d}x{r['size']:<5d} batch {r['batch']:3d} threads {r['threads']}: "
                f"{r['ms_per_sample']:8.3f} ms/sample  {r['ns_per_device_sample']:6.2f} ns/device/sample "
                f"(min {r['ns_per_device_sample_min']:.2f})  {r['pulses_per_device_sample']:.2f} pulses/device/sample  "
                f"x{r['speedup_vs_numpy_twin']:.0f} vs NumPy twin  pulse-by-pulse {r['pulse_by_pulse_ns_per_device_sample']:.1f} ns "
                f"(closed form x{r['closed_form_speedup']:.1f})")
    return (f"forward {r['size']:5d}x{r['size']:<5d} batch {r['batch']:3d} threads {r['threads']}: "
            f"x@W.T {r['gemm_ms']:.3f} ms  perfect {r['perfect_ms']:.3f} ms (x{r['perfect_vs_gemm']:.2f})  "
            f"default periphery {r['periphery_ms']:.3f} ms (x{r['periphery_vs_gemm']:.2f})")


def main(argv=None):  # pragma: no cover - thin wrapper
    from .cli import main as cli_main

    return cli_main(["bench", *(argv or [])])


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main(sys.argv[1:]))


