"""``crossbar-sim fit-device``: fit a device model to a measured pulse-response curve (see
:mod:`crossbar_sim.device_models.fit`)."""
from __future__ import annotations

import argparse
import os
import sys
import time

#: a fit predicted to take longer than this (seconds) is announced with its duration, and reports progress
ANNOUNCE_S = 10.0
#: model evaluations of a fit, as counted on the bundled curves (aihwkit's gong_et_al.csv, CrossSim's ramps) and a
#: synthetic 40,000-pulse two-column curve: softbounds 40-91, linear-step 63-130, the others 198-780
TYPICAL_EVALS = {"softbounds": (40, 130), "linear-step": (60, 130)}
OTHER_EVALS = (200, 800)


#: the models device_models.fit.MODELS fits (a test checks they are the same), written out here so that building
#: the parser does not import the device models, and with them numba (``crossbar-sim --help`` stays fast)
MODELS = ("softbounds", "linear-step", "exp-step", "pow-step", "piecewise")


def add_parser(sub):
    p = sub.add_parser(
        "fit-device",
        help="fit a device model to a measured pulse-response curve",
        description=(
            "Fit a device model to conductance readings after consecutive programming pulses (up, then down), "
            "print its parameters with uncertainties and the goodness of fit, write a device preset file (JSON) "
            "that other commands accept (load_device_file), and plot data vs fitted model.\n\n"
            "File formats (--format auto detects):\n"
            "  two-column  CSV without header: col 0 = readings after consecutive up pulses, col 1 = after down "
            "pulses (e.g. aihwkit's gong_et_al.csv)\n"
            "  sequence    CSV with header 'pulse,G[,direction]': one reading per pulse, pulse strictly "
            "increasing; direction up/down or +1/-1 (without it the curve is split at its maximum)\n"
            "  ramps       CSV with header, one ramp per column (short columns padded with empty fields): FILE "
            "holds up ramps, --down FILE2 the down ramps (e.g. CrossSim's set.csv / reset.csv)\n"
            "Readings may be in any unit (S, A, arbitrary): they are normalised to [-1, 1] (0.5 % / 99.5 % "
            "quantiles) and the device is written in those units times --w-scale. At least 10 up and 10 down "
            "readings; NaN inside a ramp, a non-increasing pulse index or missing columns are errors."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="measured curve (CSV)")
    p.add_argument("--model", choices=MODELS, default="softbounds", help="device model to fit (default softbounds)")
    p.add_argument("--down", metavar="FILE2", help="file of down ramps (ramps format)")
    p.add_argument("--format", choices=("auto", "two-column", "sequence", "ramps"), default="auto")
    p.add_argument("--nodes", type=int, default=5, help="nodes of the piecewise model (default 5)")
    p.add_argument("--w-scale", type=float, default=1.0, help="weight units per normalised unit (default 1)")
    p.add_argument("-o", "--output", help="preset file to write (default: FILE stem + _<model>.json)")
    p.add_argument("--plot", help="PNG of data vs model (default: output stem + .png; 'none' to skip)")
    return p


def _note(msg: str) -> None:
    print(f"crossbar-sim fit-device: {msg}", file=sys.stderr, flush=True)


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def run(args) -> int:
    from crossbar_sim.device_models import save_device_file
    from crossbar_sim.device_models.fit import fit_cost, fit_curve, plot_fit, read_curve
    from crossbar_sim.errors import ConfigError

    if args.nodes < 2:
        raise ConfigError(f"--nodes must be >= 2. Got {args.nodes}.")
    if not args.w_scale > 0:
        raise ConfigError(f"--w-scale must be > 0. Got {args.w_scale}.")
    size = sum(os.path.getsize(f) for f in (args.file, args.down) if f and os.path.isfile(f))
    t0 = time.perf_counter()
    if size > 5e6:
        _note(f"reading {size / 1e6:.0f} MB of readings ...")
    curve = read_curve(args.file, args.down, args.format)
    if size > 5e6:
        _note(f"read {sum(s.size for s in curve.segments):,} readings in {time.perf_counter() - t0:.0f} s")
    per_eval, max_evals = fit_cost(curve, args.model, args.nodes)
    few, many = TYPICAL_EVALS.get(args.model, OTHER_EVALS)
    many = min(many, max_evals)
    if per_eval * few > ANNOUNCE_S:
        longest = max(s.size for s in curve.segments)
        _note(f"fitting {args.model}: one model evaluation takes about {_duration(per_eval)} (segments up to "
              f"{longest:,} pulses, simulated one pulse at a time); a fit usually needs {few}-{many} of them "
              f"({_duration(few * per_eval)} to {_duration(many * per_eval)}), at most {max_evals} "
              f"({_duration(max_evals * per_eval)}). Progress every {ANNOUNCE_S:.0f} s; Ctrl-C stops.")
    res = fit_curve(curve, args.model, args.nodes, args.w_scale, progress=_note, progress_every=ANNOUNCE_S)
    print(res.summary())
    print(f"device: {res.device!r}")
    out = args.output or f"{os.path.splitext(args.file)[0]}_{args.model.replace('-', '_')}.json"
    fit = {"model": res.model, "params": dict(zip(res.names, map(float, res.params))),
           "stderr": dict(zip(res.names, map(float, res.stderr))), "rmse_normalised": res.rmse,
           "rmse_file_units": res.rmse_units, "r2": res.r2, "n_points": res.n_points,
           "normalisation": {"center": curve.units_scale[0], "half_range": curve.units_scale[1]}}
    src = f"fit of {res.model} to {args.file}" + (f" + {args.down}" if args.down else "")
    save_device_file(out, res.device, source=src, fit=fit)
    print(f"wrote {out}")
    plot = args.plot or f"{os.path.splitext(out)[0]}.png"
    if plot.lower() != "none":
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4))
        plot_fit(fig.add_subplot(1, 1, 1), res)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"wrote {plot}")
    return 0
