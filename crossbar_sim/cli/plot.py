"""``crossbar-sim plot``: figures from a result file (see :mod:`crossbar_sim.engine.plots`)."""
from __future__ import annotations

import argparse

EPILOG = """\
kinds:
  convergence-vs-asymmetry  error floor vs tau per algorithm (mean over seeds, std error bars) with the
                            paper's predicted floor shape 4 sigma^2 S for analog SGD (constant fitted)
  loss                      loss curves on a log scale (mean over seeds, min-max band)
  weights                   weight histograms of every array of one run's tile against the device bounds
  pulses                    per-device pulse-count heatmaps of one run's tile
  accuracy-vs-tau           networks: final test accuracy vs tau per algorithm (seed error bars, digital band)
  accuracy-vs-epoch         networks: test accuracy per epoch (mean over seeds)
  lm-perplexity             language model: validation perplexity vs step
  lm-memory                 language model: digital optimiser-state bytes vs rank
  lm-energy                 language model: energy by category

examples:
  crossbar-sim plot results.h5 --kind convergence-vs-asymmetry -o floor.png
  crossbar-sim plot results.h5 --kind loss --where tau=0.6
  crossbar-sim plot results.h5 --kind weights --where algorithm=tiki_taka --where tau=1.0 --where seed=0
  crossbar-sim plot results.h5 --kind pulses --run 0003 -o pulses.pdf
"""


def add_parser(sub):
    p = sub.add_parser(
        "plot",
        help="plot convergence vs asymmetry, loss curves, weight histograms or pulse heatmaps",
        description="Draw a figure from a crossbar-sim result file (PNG, PDF or SVG by the extension of -o).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="result file (.h5)")
    p.add_argument("--kind", required=True, metavar="KIND",
                   choices=("convergence-vs-asymmetry", "loss", "weights", "pulses", "accuracy-vs-tau",
                            "accuracy-vs-epoch", "lm-perplexity", "lm-memory", "lm-energy"),
                   help="what to plot (see the list below)")
    p.add_argument("-o", "--out", default=None, metavar="OUT",
                   help="output file (default: <kind>.png in the current directory)")
    p.add_argument("--run", default=None, metavar="ID", help="run id (weights, pulses, loss)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="select runs by point or config value (repeatable), e.g. --where algorithm=tiki_taka")
    p.add_argument("--metric", choices=("error_floor", "final_loss"), default="error_floor",
                   help="y value of convergence-vs-asymmetry (default: error_floor)")
    p.add_argument("--step", type=int, default=None, help="snapshot step (or epoch) for weights (default: the last)")
    p.add_argument("--layer", default=None, help="layer of a network run for weights and pulses (default: the first "
                                                 "analog layer)")
    return p


def run(args) -> int:
    from crossbar_sim.engine.plots import make_figure, parse_where

    out = args.out or f"{args.kind.replace('-', '_')}.png"
    make_figure(args.file, args.kind, out, where=parse_where(args.where), run_id=args.run, metric=args.metric,
                step=args.step, layer=args.layer)
    print(f"figure: {out}")
    return 0
