"""``crossbar-sim evaluate``: trained runs of a result file on inference tiles, accuracy or loss over time."""
from __future__ import annotations

import json
import os

_TIME_NAMES = {1.0: "1 s", 3600.0: "1 h", 86400.0: "1 day", 2592000.0: "30 d", 31536000.0: "1 year"}

#: written out so that building the parser imports nothing heavy (a test checks them against the library's)
NOISE_MODELS = ("pcm", "generic", "drift_only")
COMPENSATIONS = ("none", "global", "per_column")
DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 2592000.0, 31536000.0)


def add_parser(sub):
    from . import DefaultsHelpFormatter

    p = sub.add_parser(
        "evaluate",
        help="program trained runs onto inference tiles (PCM-like noise, drift) and measure them over time",
        description=(
            "Program the final weights of runs of a result file (crossbar-sim train or sweep) onto inference tiles "
            "(differential conductance pairs, g_max 25 uS), with programming noise, conductance drift and 1/f "
            "read noise of a noise model (default: aihwkit 1.1.0's PCMLikeNoiseModel), and measure test accuracy "
            "(networks) or the loss (least squares) at times after programming, with and without drift "
            "compensation, as mean and spread over independent programmings. Reads go through the run's forward "
            "periphery. Results go into each run's group (/runs/<id>/inference/<model>_<compensation>, written "
            "through a temporary copy of the file) and a plot against log time. See docs/inference.md."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("file", help="result file (HDF5) written by crossbar-sim train or sweep")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids to evaluate (default: every run)")
    p.add_argument("--times", type=float, nargs="+", default=list(DEFAULT_TIMES), metavar="T",
                   help="times after programming in seconds (>= 0)")
    p.add_argument("--draws", type=int, default=10, help="independent programmings per run")
    p.add_argument("--noise-model", default="pcm", metavar="NAME",
                   help=f"noise model: {', '.join(NOISE_MODELS)}")
    p.add_argument("--compensation", nargs="+", default=["none", "global"], metavar="C",
                   help=f"drift compensations to measure on the same draws: {', '.join(COMPENSATIONS)}")
    p.add_argument("--readout", default="forward", choices=("forward", "exact"),
                   help="calibration reads of the compensation: through the periphery (aihwkit) or exact")
    p.add_argument("--layers", default="all", choices=("all", "analog"),
                   help="networks: program every weight layer, or only those trained on analog tiles")
    p.add_argument("--n-test", type=int, default=0, help="networks: first N test images (0: the run's test set)")
    p.add_argument("--seed", type=int, default=None, help="evaluation seed (default: each run's own seed)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override of the evaluation config, e.g. --set noise_model.drift_scale=2 "
                        "--set noise_model.g_max=20 --set forward.out_noise=0 (repeatable; forward.* starts from "
                        "aihwkit's default periphery instead of the run's)")
    p.add_argument("--label", default="", help="group name prefix instead of the noise model's name")
    p.add_argument("--replace", action="store_true", help="overwrite earlier results of the same groups")
    p.add_argument("--no-write", action="store_true", help="do not write the results into the file")
    p.add_argument("--show", action="store_true",
                   help="evaluate nothing: print and plot the results already stored (--label, --compensation)")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="figure path (default: <file without .h5>_inference.png); 'none' for no figure")
    p.add_argument("--threads", type=int, default=1, help="numba threads")
    return p


def eval_config_from_args(args):
    from crossbar_sim.config import apply_overrides
    from crossbar_sim.errors import ConfigError
    from crossbar_sim.inference.evaluate import InferenceEvalConfig
    from crossbar_sim.inference.noise import get_noise_model

    cfg = InferenceEvalConfig(noise_model=get_noise_model(args.noise_model), compensation=tuple(args.compensation),
                              times=tuple(args.times), draws=args.draws, layers=args.layers,
                              compensation_readout=args.readout, n_test=args.n_test, label=args.label)
    over = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE. Got {item!r}.")
        k, v = item.split("=", 1)
        over[k.strip()] = v.strip()
    if "forward" in {k.split(".")[0] for k in over} and cfg.forward is None:
        from crossbar_sim.tiles.params import IOParameters

        cfg = cfg.replace(forward=IOParameters())  # forward.<p> overrides start from aihwkit's default periphery
    return apply_overrides(cfg, over) if over else cfg


def _fmt(v, metric):
    return f"{100 * v:6.2f}" if metric == "test_acc" else f"{v:8.4g}"


def run(args) -> int:
    from threadpoolctl import threadpool_limits

    from crossbar_sim.errors import ConfigError
    from crossbar_sim.inference.evaluate import evaluate_trained
    from crossbar_sim.inference.results import add_to_file, group_names
    from crossbar_sim.inference.weights import check_run_ids, final_weights
    from crossbar_sim.tiles.analog import set_num_threads

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1. Got {args.threads}.")
    if not os.path.isfile(args.file):
        raise ConfigError(f"{args.file}: no such file.")
    cfg = eval_config_from_args(args)
    run_ids = check_run_ids(args.file, args.runs)
    if args.show:
        return _show(args, cfg, run_ids)
    trained = {rid: final_weights(args.file, rid) for rid in run_ids}  # every bad run fails before any work
    set_num_threads(args.threads)
    results = {}
    cache = {}
    with threadpool_limits(1):
        for rid in run_ids:
            tw = trained[rid]
            seed = tw.seed if args.seed is None else args.seed
            print(f"evaluating {rid} ({tw.kind}, step {tw.step}, {tw.metric} {tw.reference:.4g} trained) with "
                  f"{type(cfg.noise_model).__name__}, {cfg.draws} draws ...", flush=True)
            data = _test_data(tw, cfg, cache)
            results[rid] = evaluate_trained(tw, cfg, seed, data=data)
            results[rid]["label"] = rid + "".join(f" {k}={v}" for k, v in tw.point.items() if k != "seed")
    _print_table(results, cfg)
    if not args.no_write:
        add_to_file(args.file, results, replace=args.replace)
        groups = sorted({g for r in results.values() for g in group_names(r)})
        print(f"wrote inference/{{{','.join(groups)}}} of {len(results)} run(s) into {args.file}")
    if (args.plot or "").lower() != "none":
        path = args.plot or (os.path.splitext(args.file)[0] + "_inference.png")
        _plot(results, path)
        print(f"figure: {path}")
    return 0


def _show(args, cfg, run_ids) -> int:
    from crossbar_sim.engine.store import open_results
    from crossbar_sim.inference.results import stored_result

    results = {}
    with open_results(args.file) as f:
        for rid in run_ids:
            results[rid] = stored_result(f["runs"][rid], cfg.group_prefix, cfg.compensation)
            point = json.loads(f["runs"][rid].attrs.get("point", "{}"))
            results[rid]["label"] = rid + "".join(f" {k}={v}" for k, v in point.items() if k != "seed")
    _print_table(results, cfg.replace(times=tuple(next(iter(results.values()))["times"]),
                                      draws=int(next(iter(results.values()))["config"]["draws"])))
    if (args.plot or "").lower() != "none":
        path = args.plot or (os.path.splitext(args.file)[0] + "_inference.png")
        _plot(results, path)
        print(f"figure: {path}")
    return 0


def _test_data(tw, cfg, cache):
    """The test set of a network run (loaded once per dataset, model and size); None for least squares."""
    if tw.kind != "network":
        return None
    from crossbar_sim.nn.training import NetConfig, prepare_data

    net = NetConfig.from_dict(tw.config["net"])
    n_test = cfg.n_test or net.n_test
    key = (net.dataset, net.model, n_test)
    if key not in cache:
        cache[key] = prepare_data(net.replace(n_train=1, n_test=n_test))
    return cache[key]


def _print_table(results, cfg):
    times = list(cfg.times)
    head = "  ".join(f"{_TIME_NAMES.get(t, f'{t:g} s'):>15s}" for t in times)
    metric = next(iter(results.values()))["metric"]
    unit = "test accuracy %" if metric == "test_acc" else "loss"
    print(f"{unit}, mean +- std over {cfg.draws} draws")
    print(f"{'run':32s} {'compensation':12s} {'trained':>8s}  {head}")
    for rid, r in results.items():
        for c in cfg.compensation:
            m, s = r[f"{c}/mean"], r[f"{c}/std"]
            cells = "  ".join(f"{_fmt(m[i], metric)} +- {_fmt(s[i], metric).strip():>5s}" for i in range(len(times)))
            print(f"{rid:32s} {c:12s} {_fmt(r['reference'], metric):>8s}  {cells}")


def _plot(results, path):
    """One panel per compensation (shared y axis), one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crossbar_sim.inference.results import plot_inference

    r0 = next(iter(results.values()))
    metric, comps = r0["metric"], r0["config"]["compensation"]
    fig, axes = plt.subplots(1, len(comps), figsize=(4.6 * len(comps) + 1.0, 5.0), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (ax, c) in enumerate(zip(axes[0], comps)):
        curves = [{"run": r["label"], "times": r["times"], "mean": r[f"{c}/mean"], "std": r[f"{c}/std"],
                   "compensation": c, "color": colors[k % len(colors)], "reference": r["reference"]}
                  for k, r in enumerate(results.values())]
        plot_inference(ax, curves, metric, legend=j == 0)
        ax.set_title("no drift compensation" if c == "none" else f"{c.replace('_', '-')} drift compensation",
                     fontsize=10)
        if j:
            ax.set_ylabel("")
    model = r0["config"]["noise_model"]["type"]
    fig.suptitle(f"{model}: mean of {r0['config']['draws']} programmings, error bars 1 std; dotted: the trained "
                 f"weights on the training tiles", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
