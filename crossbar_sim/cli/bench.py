"""``crossbar-sim bench``: kernel benchmarks on the reference workload (see :mod:`crossbar_sim.bench.tiles`)."""
from __future__ import annotations

import json

from crossbar_sim.cli import DefaultsHelpFormatter
from crossbar_sim.validation import arg_int


def add_parser(sub):
    p = sub.add_parser(
        "bench",
        help="benchmark the pulsed-update and MVM kernels",
        description=(
            "Time the pulsed update (closed form and pulse by pulse, vs the NumPy twin) and the forward MVM "
            "(perfect and default periphery, vs a plain float32 x @ W.T) on the reference workload: SoftBounds "
            "+-0.8, dw_min 1e-3, aihwkit default variations, lr 0.05, x, d ~ N(0, 0.5^2), BL 31 with UBLM+UM. "
            "Timings are medians over --repeat runs, interleaved so that ratios see the same machine state."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--kind", choices=("update", "forward", "all", "mnist", "lm"), default="all",
                   help="what to time; 'mnist': one MNIST training epoch in the paper's setting (FCN and CNN, "
                        "analog SGD and Tiki-Taka, full pulse update and periphery), per-call overhead and a "
                        "profile split (see crossbar_sim.bench.mnist); 'lm': one training step of the low-rank "
                        "experiments' language model against the same model in eager PyTorch on one thread, "
                        "interleaved (needs torch in this environment; see crossbar_sim.bench.lm)")
    p.add_argument("--samples", type=int, default=None,
                   help="mnist: training samples timed (default 60000 FCN, 4000 CNN; extrapolated to 60k)")
    p.add_argument("--models", nargs="+", default=["fcn", "cnn"], choices=("fcn", "cnn"), help="mnist: networks")
    p.add_argument("--algorithms", nargs="+", default=["analog_sgd", "tiki_taka"],
                   choices=("analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad", "digital_sgd"),
                   help="mnist: algorithms")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="square tile sizes")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="samples per update call")
    p.add_argument("--threads", type=arg_int(1), nargs="+", default=[1], help="numba threads (one run per value)")
    p.add_argument("--repeat", type=int, default=7, help="repetitions per timing")
    p.add_argument("--aihwkit-python", metavar="PATH", default=None,
                   help="a python interpreter with IBM aihwkit (not a crossbar-sim dependency): right after each of "
                        "our timings it times aihwkit on the same workload (crossbar_sim/bench/aihwkit_tile.py for tiles, "
                        "crossbar_sim/bench/aihwkit_epoch.py on the same samples for mnist) and reports the measured "
                        "ratio (mnist without it: typed aihwkit constants, labelled as such)")
    p.add_argument("--frontends", nargs="+", default=None, choices=("numpy", "torch"),
                   help="mnist: time the front ends side by side instead (crossbar_sim.bench.torch_epoch): one training "
                        "pass through crossbar_sim.nn (numpy), crossbar_sim.torch (needs the [torch] extra) and, with "
                        "--aihwkit-python, aihwkit's AnalogLinear, interleaved over --rounds rounds (default "
                        "--samples 6000)")
    p.add_argument("--rounds", type=int, default=3, help="mnist --frontends: interleaved rounds (medians reported)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return p


def run(args) -> int:
    from crossbar_sim.bench.tiles import run_benchmarks
    from crossbar_sim.errors import ConfigError

    for n in args.sizes:
        if n < 1:
            raise ConfigError(f"--sizes must be positive. Got {n}.")
    for b in args.batches:
        if b < 1:
            raise ConfigError(f"--batches must be positive. Got {b}.")
    if args.repeat < 1:
        raise ConfigError(f"--repeat must be >= 1. Got {args.repeat}.")
    if args.kind == "lm":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("--kind lm needs PyTorch in this environment (it is not a crossbar-sim dependency): "
                              "pip install torch==2.13.0, or run an interpreter that has it.") from None
        from crossbar_sim.bench.lm import run_lm_bench

        res = run_lm_bench(repeat=args.repeat, progress=print)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(res, fh, indent=1)
        return 0
    if args.kind == "mnist":
        from crossbar_sim.bench.mnist import run_mnist_bench

        if args.samples is not None and args.samples < 1:
            raise ConfigError(f"--samples must be positive. Got {args.samples}.")
        if args.frontends:
            return _run_frontends(args)
        rows = run_mnist_bench(tuple(args.models), tuple(args.algorithms), tuple(args.threads), args.samples,
                               progress=print, aihwkit_python=args.aihwkit_python)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
        return 0
    kinds = ("update", "forward") if args.kind == "all" else (args.kind,)
    rows = run_benchmarks(args.sizes, args.batches, args.threads, kinds, args.repeat, progress=print,
                          aihwkit_python=args.aihwkit_python)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


def _run_frontends(args) -> int:
    """``--kind mnist --frontends ...``: the front ends timed interleaved (crossbar_sim.bench.torch_epoch)."""
    from crossbar_sim.errors import ConfigError

    if args.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1. Got {args.rounds}.")
    if "torch" not in args.frontends:
        raise ConfigError("--frontends compares crossbar_sim.torch with the NumPy path: include 'torch'.")
    try:
        import crossbar_sim.torch  # noqa: F401
        from crossbar_sim.bench.torch_epoch import compare_frontends, format_frontends
    except ImportError as exc:
        raise ConfigError(f"--frontends torch: {exc}") from None
    rows = []
    for th in args.threads:
        for model in args.models:
            for alg in args.algorithms:
                r = compare_frontends(model, alg, args.samples or 6000, th, args.rounds,
                                      aihwkit_python=args.aihwkit_python, progress=print)
                rows.append(r)
                print(format_frontends(r))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0
