"""aihwkit 1.1.0's ``build_config`` presets on the ``presets_aihwkit`` least-squares task (issue 19's reference runs).

A standalone script for a *separate* interpreter that has IBM aihwkit (written against 1.1.0): it imports only the
standard library, numpy, torch and aihwkit, never ``crossbar_sim``. aihwkit is not a dependency of crossbar-sim.

The task of ``crossbar-sim sweep presets_aihwkit`` in aihwkit names: an ``AnalogTile(10, 40)`` built from
``build_config(name, SoftBoundsReferenceDevice(w_max=tau, w_min=-tau, dw_min=0.001, every variation 0),
io_parameters=IOParameters(is_perfect=True))``, weights set to 0, learning rate 0.01; every step draws a fresh
``x ~ N(0, I)``, reads ``y = W x`` through the tile and calls ``tile.update(x, y - W* x)``. The target ``W*`` is
the one ``LeastSquaresTask(inputs="gaussian", seed=0)`` draws (the same numpy stream: ``SeedSequence(0)``, the
unused 100 x 40 design matrix first, then ``W*`` uniform in +-0.4); the loss is ``1/2 ||W - W*||_F^2`` (11.35 at
the start). ``--extra '{"auto_scale": false}'`` sets fields of the compound device on top.

Output: one line per run with the loss at every tenth of the run, then one JSON line (``"tool": "aihwkit"``)
with every run's final loss.

    python crossbar_sim/bench/aihwkit_presets.py --presets sgd,ttv1,ttv2,c-ttv2,agad,mp --taus 0.6,1.0 --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import json
import time


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--presets", default="sgd,ttv1,ttv2,c-ttv2,agad,mp", help="build_config names, comma-separated")
    p.add_argument("--taus", default="0.6,1.0", help="device bounds w_max = -w_min, comma-separated")
    p.add_argument("--seeds", default="0,1,2", help="run seeds (input stream and device construction)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--extra", default="{}", help="JSON object of compound-device fields to set on top")
    return p


def target(out_size=10, in_size=40, scale=0.4, n_samples=100, seed=0):
    """``W*`` of ``LeastSquaresTask(inputs="gaussian", seed=seed)`` (same draws, same order)."""
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rng.standard_normal((n_samples, in_size))  # the design matrix, drawn in both modes so that W* is the same
    return rng.uniform(-scale, scale, (out_size, in_size)).astype(np.float32)


def run(name, tau, seed, steps, lr, extra, w_star):
    import numpy as np
    import torch
    from aihwkit.simulator.configs import (
        IOParameters,
        SoftBoundsReferenceDevice,
        build_config,
    )
    from aihwkit.simulator.tiles import AnalogTile

    dev = SoftBoundsReferenceDevice(w_max=tau, w_min=-tau, dw_min=1e-3, dw_min_dtod=0.0, dw_min_std=0.0,
                                    up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, reference_std=0.0,
                                    write_noise_std=0.0, construction_seed=seed + 1)
    cfg = build_config(name, dev, io_parameters=IOParameters(is_perfect=True))
    for k, v in extra.items():
        setattr(cfg.device, k, v)
    out, inp = w_star.shape
    tile = AnalogTile(out, inp, cfg, bias=False)
    tile.set_learning_rate(lr)
    tile.set_weights(torch.zeros(out, inp))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ws = torch.from_numpy(w_star)
    losses = []
    every = max(1, steps // 10)
    for k in range(steps):
        x = torch.from_numpy(rng.standard_normal((1, inp)).astype(np.float32))
        tile.update(x, tile.forward(x) - x @ ws.T)
        if (k + 1) % every == 0:
            w = tile.get_weights()[0].numpy().astype(np.float64)
            losses.append(0.5 * float(((w - w_star) ** 2).sum()))
    return losses


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(1)
    extra = json.loads(args.extra)
    w_star = target()
    finals = {}
    for name in args.presets.split(","):
        for tau in [float(t) for t in args.taus.split(",")]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                t0 = time.perf_counter()
                losses = run(name, tau, seed, args.steps, args.lr, extra, w_star)
                print(f"{name:8s} tau {tau:g} seed {seed}: loss " + " ".join(f"{v:.3g}" for v in losses)
                      + f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
                finals[f"{name} tau={tau:g} seed={seed}"] = losses[-1]
    print(json.dumps({"tool": "aihwkit", "steps": args.steps, "extra": extra, "final_loss": finals}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
