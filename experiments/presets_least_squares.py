"""Least squares with every device preset: analog SGD vs Tiki-Taka (issue 4).

What is swept: the device presets of :mod:`crossbar_sim.device_models.presets` x {analog SGD, Tiki-Taka v1}
on the least-squares task of Wu et al. (arXiv 2406.12774, section 5; ``LeastSquaresTask`` defaults: A 100 x 40,
W* uniform in +-0.5, gradient noise 0.1), the same seed for every cell. What the theory predicts: analog SGD
stalls at an error floor that grows with the device's asymmetry around its symmetric point (ReRAM ES, PCM and
the low-state ReRAM arrays worst), Tiki-Taka removes most of it; near-symmetric constant-step devices
(Idealized, GokmenVlasov) do well with both.

Run it::

    python -m crossbar_sim.experiments.presets_least_squares --steps 300
    crossbar-sim sweep presets_least_squares          # through the sweep command (entry point)
"""
from __future__ import annotations

import argparse
import sys

from crossbar_sim.device_models import list_presets
from crossbar_sim.least_squares.task import LeastSquaresTask
from crossbar_sim.least_squares.training import TrainConfig, train

NAME = "presets_least_squares"
ALGORITHMS = ("analog_sgd", "tiki_taka")

#: sweep spec for ``crossbar-sim sweep presets_least_squares`` (see :mod:`crossbar_sim.engine.spec`): every preset x
#: {analog SGD, Tiki-Taka} on the default least-squares task, a small learning-rate grid each, 3000 steps
EXPERIMENT = {
    "name": NAME,
    "description": __doc__.splitlines()[0],
    "seed": 0,
    "task": {k: v for k, v in LeastSquaresTask().to_dict().items() if k != "type"},
    "train": {"steps": 3000, "lr": 0.1, "record_every": 50},
    "axes": {"preset": "all"},
    # a small grid per algorithm, so neither is judged at one untuned point: the table reports each
    # algorithm's best cell per preset (Tiki-Taka v1 needs fast_lr matched to the device's step size)
    "cases": [
        {"algorithm": "analog_sgd", "lr": [0.1, 0.02]},
        {"algorithm": "tiki_taka", "lr": [0.1, 0.02], "transfer.fast_lr": [0.1, 0.5]},
    ],
}


def run_configs(presets=None, steps: int = 300, lr: float = 0.1):
    """``[(preset, algorithm, TrainConfig)]`` of the sweep."""
    table = list_presets()
    names = list(table) if presets is None else list(presets)
    out = []
    for name in names:
        dev = table[name][0]
        for alg in ALGORITHMS:
            out.append((name, alg, TrainConfig(algorithm=alg, device=dev, lr=lr, steps=steps,
                                               record_every=max(1, steps))))
    return out


def run_presets_table(presets=None, steps: int = 300, lr: float = 0.1, seed: int = 0, task=None,
                      progress=None) -> dict:
    """Final loss of each preset under analog SGD and Tiki-Taka: ``{preset: {algorithm: loss}}``.

    Also returns the digital-SGD reference under the key ``"digital"``.
    """
    task = LeastSquaresTask() if task is None else task
    res: dict = {}
    for name, alg, cfg in run_configs(presets, steps, lr):
        r = train(task, cfg, seed=seed)
        res.setdefault(name, {})[alg] = r.final("loss") if r.status == "complete" else float("nan")
        if progress:
            progress(name, alg, res[name][alg])
    ref = train(task, TrainConfig(algorithm="digital_sgd", lr=lr, steps=steps, record_every=max(1, steps)), seed)
    res["digital"] = {"digital_sgd": ref.final("loss")}
    return res


def format_table(res: dict) -> str:
    lines = [f"{'preset':16s} {'analog SGD':>12s} {'Tiki-Taka':>12s}"]
    for name, row in res.items():
        if name == "digital":
            continue
        lines.append(f"{name:16s} {row['analog_sgd']:12.4g} {row['tiki_taka']:12.4g}")
    lines.append(f"{'digital SGD':16s} {res['digital']['digital_sgd']:12.4g}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m crossbar_sim.experiments.{NAME}",
                                description="Final least-squares loss of every device preset, analog SGD vs "
                                            "Tiki-Taka (one seed).")
    p.add_argument("--steps", type=int, default=300, help="training steps per run")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--presets", nargs="*", help="subset of presets (default: all)")
    a = p.parse_args(argv)
    res = run_presets_table(a.presets, a.steps, a.lr, a.seed,
                            progress=lambda n, al, v: print(f"  {n} {al}: {v:.4g}", file=sys.stderr))
    print(format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
