"""An aihwkit reference timing of one tile on the benchmark's reference workload (pulsed update, forward MVM).

A standalone script for a *separate* interpreter that has IBM aihwkit (written against 1.1.0): it imports only the
standard library, numpy, torch and aihwkit, never ``crossbar_sim`` (``crossbar-sim bench --aihwkit-python PATH``
runs it as a file with that interpreter). aihwkit is not a dependency of crossbar-sim.

The workload is :mod:`crossbar_sim.bench.tiles`'s, in aihwkit names: ``SoftBoundsDevice(w_max=0.8, w_min=-0.8,
dw_min=0.001)`` with aihwkit's default variations, ``SingleRPUConfig`` with ``desired_bl`` 31,
``update_bl_management`` and ``update_management`` on, learning rate 0.05, ``x, d ~ N(0, 0.5^2)``, weights
uniform in +-0.2; the forward pass with aihwkit's default periphery against a float32 ``x @ W.T`` in torch on the
same thread. Timings are medians of ``--repeat`` runs; torch uses one thread (``--threads``).

Output: one JSON line (``"tool": "aihwkit"``) with ``update_ms_per_sample``, ``ns_per_device_sample``,
``forward_ms``, ``matmul_ms``.

    python crossbar_sim/bench/aihwkit_tile.py --size 512 --batch 64
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="square tile size")
    p.add_argument("--batch", type=int, default=1, help="samples per update call (applied one after the other)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions (median)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    return p


def _median_time(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch
    from aihwkit import __version__ as aihwkit_version
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import SoftBoundsDevice
    from aihwkit.simulator.tiles import AnalogTile

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    n, b = args.size, args.batch
    cfg = SingleRPUConfig(device=SoftBoundsDevice(w_max=0.8, w_min=-0.8, dw_min=0.001))
    cfg.update.desired_bl = 31
    cfg.update.update_bl_management = True
    cfg.update.update_management = True
    tile = AnalogTile(n, n, cfg)
    tile.set_learning_rate(0.05)
    g = torch.Generator().manual_seed(args.seed)
    w0 = (torch.rand(n, n, generator=g) * 0.4 - 0.2).float()
    tile.set_weights(w0)
    x = torch.randn(b, n, generator=g) * 0.5
    d = torch.randn(b, n, generator=g) * 0.5
    tile.update(x, d)  # warm up
    t_upd = _median_time(lambda: tile.update(x, d), args.repeat)
    xf = torch.randn(b, n, generator=g) * 0.5
    tile.forward(xf)
    w = w0.clone()
    reps = max(args.repeat, 20)
    t_fwd = _median_time(lambda: tile.forward(xf), reps)
    t_mm = _median_time(lambda: xf @ w.T, reps)
    print(json.dumps({
        "tool": "aihwkit", "aihwkit_version": aihwkit_version, "torch_version": torch.__version__,
        "size": n, "batch": b, "threads": args.threads,
        "update_ms_per_sample": t_upd / b * 1e3, "ns_per_device_sample": t_upd / b / (n * n) * 1e9,
        "forward_ms": t_fwd * 1e3, "matmul_ms": t_mm * 1e3,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
