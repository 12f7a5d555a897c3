"""``crossbar-sim plot``: figures from a result file (see :mod:`crossbar_sim.engine.plots`)."""
from __future__ import annotations

import argparse

EPILOG = """\
kinds:
  convergence-vs-asymmetry  the asymptotic squared gradient norm G (tail mean of |grad f(W_k)|^2) against tau,
                            the learning rate and the noise level (each panel when the sweep has it), every
                            analog SGD point beside its own bound 4 sigma^2 S_K (Theorem 2, arXiv 2406.12774),
                            and the training curves at one tau
  loss                      training curves (--metric: loss by default), one panel per tau, mean over seeds and
                            min-max band; a panel with many configurations shows one mean per algorithm
  weights                   weight histograms of every array of one run's tile against the device bounds
  pulses                    per-device pulse-count heatmaps of one run's tile
  accuracy-vs-tau           networks: final test accuracy vs tau per algorithm (seed error bars, digital band)
  accuracy-vs-epoch         networks: test accuracy per epoch (mean over seeds)
  lm-perplexity             language model: validation perplexity vs step
  lm-memory                 language model: digital optimiser-state bytes vs rank
  lm-energy                 language model: energy by category

examples:
  crossbar-sim plot results.h5 --kind convergence-vs-asymmetry -o floor.png
  crossbar-sim plot results.h5 --kind loss --metric grad_norm2 --where lr=0.01
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
                   help="output file (default: <FILE stem>_<kind>.png next to FILE)")
    p.add_argument("--run", default=None, metavar="ID", help="run id (weights, pulses, loss)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="select runs by point or config value (repeatable), e.g. --where algorithm=tiki_taka")
    p.add_argument("--metric", default=None, metavar="NAME",
                   help="convergence-vs-asymmetry: grad_norm2, error_floor or final_loss (grad_norm2 when omitted); "
                   "loss: any recorded metric, e.g. grad_norm2, dist2, w_inf (loss when omitted)")
    p.add_argument("--step", type=int, default=None, help="snapshot step (or epoch) for weights (default: the last)")
    p.add_argument("--layer", default=None, help="layer of a network run for weights and pulses (default: the first "
                                                 "analog layer)")
    return p


def run(args) -> int:
    from crossbar_sim.errors import FormatError

    try:
        return _run(args)
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:  # damaged content of a readable file
        if isinstance(exc, FormatError) or hasattr(exc, "__module__") and "crossbar_sim" in type(exc).__module__:
            raise
        raise FormatError(f"{args.file} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                          f"; crossbar-sim inspect {args.file} shows what it holds.") from None


def _run(args) -> int:
    import sys

    from crossbar_sim.engine.plots import figure_path, make_figure, parse_where

    out = args.out or figure_path(args.file, args.kind)
    make_figure(args.file, args.kind, out, where=parse_where(args.where), run_id=args.run, metric=args.metric,
                step=args.step, layer=args.layer,
                on_note=lambda msg: print(f"crossbar-sim plot: {msg}", file=sys.stderr))
    print(f"figure: {out}")
    return 0
