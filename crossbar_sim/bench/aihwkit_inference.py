"""aihwkit 1.1.0's ``PCMLikeNoiseModel`` on a fixed weight matrix: statistics of the programmed and drifted weights.

A standalone script for a *separate* interpreter that has IBM aihwkit (written against 1.1.0): it imports only the
standard library, numpy, torch and aihwkit, never ``crossbar_sim``. aihwkit is not a dependency of crossbar-sim.

Six rows of 20000 equal weights (1.0, 0.5, 0.2, 0.05, -0.3, 0.0; abs-max 1 maps to g_max = 25 uS) are programmed
once with ``apply_programming_noise`` and drifted from the programmed state with ``apply_drift_noise`` to each time;
the per-row mean and standard deviation of the weights are written as JSON. ``tests/test_inference.py`` compares
:class:`crossbar_sim.inference.PCMLikeNoiseModel` (``drift_per_device=False``, aihwkit's re-conversion) with the
stored output ``tests/data/aihwkit_inference/pcm_stats.json``.

    /path/to/aihwkit/python crossbar_sim/bench/aihwkit_inference.py --out tests/data/aihwkit_inference/pcm_stats.json
"""
from __future__ import annotations

import argparse
import json

LEVELS = (1.0, 0.5, 0.2, 0.05, -0.3, 0.0)
TIMES = (0.0, 3600.0, 86400.0, 3.1536e7)
PER_LEVEL = 20000


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="-", help="JSON file ('-': standard output)")
    p.add_argument("--seed", type=int, default=0, help="torch seed")
    args = p.parse_args(argv)
    import aihwkit
    import numpy as np
    import torch
    from aihwkit.inference import PCMLikeNoiseModel

    torch.manual_seed(args.seed)
    W = torch.tensor(np.repeat(np.array(LEVELS)[:, None], PER_LEVEL, axis=1), dtype=torch.float32)
    model = PCMLikeNoiseModel()
    prog, nu = model.apply_programming_noise(W)
    out = {"aihwkit": aihwkit.__version__, "torch": torch.__version__, "levels": list(LEVELS), "times": list(TIMES),
           "per_level": PER_LEVEL, "seed": args.seed,
           "programmed": {"mean": prog.numpy().mean(1).tolist(), "std": prog.numpy().std(1).tolist()}, "drifted": []}
    for t in TIMES:
        d = model.apply_drift_noise(prog, nu, t).numpy()
        out["drifted"].append({"t": t, "mean": d.mean(1).tolist(), "std": d.std(1).tolist()})
    text = json.dumps(out, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
