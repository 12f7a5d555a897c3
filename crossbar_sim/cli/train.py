"""``crossbar-sim train``: one network training run (or a network experiment's grid) through the engine."""
from __future__ import annotations

import argparse
import os

ALGORITHMS = ("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad")

EPILOG = """\
examples:
  crossbar-sim train --model fcn --algorithm tiki_taka --tau 0.78 --epochs 10
  crossbar-sim train --model cnn --algorithm analog_sgd --tau 0.6 --n-train 4000 --epochs 3 --out cnn.h5
  crossbar-sim train --model fcn --algorithm chopped_ttv2 --set update.desired_bl=15 --n-train 6000
  crossbar-sim train --model fcn --algorithm analog_sgd --preset PCM --epochs 3          # PCM pairs
  crossbar-sim train --experiment mnist_paper --models fcn --taus 0.78 0.7 --epochs 80 --out paper.h5
  crossbar-sim train ... --resume        # continue a killed run from its last checkpoint (every epoch)

One run is a sweep of one point: it is written to its own file (default: <run name>.h5), checkpointed at every
epoch end and at least every 10 minutes (--set checkpoint.every=N, --set checkpoint.minutes=M), and never
replaces an earlier result without --overwrite. For grids of runs on several processes or a Dask cluster use
`crossbar-sim sweep` with a network experiment (mnist_paper, mnist_asymmetry) or spec.
"""


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a network (FCN or CNN) on MNIST / Fashion-MNIST with analog tiles",
        description=(
            "Train one network with its weight layers on simulated analog tiles and write test accuracy per epoch, "
            "training loss, pulse counts and snapshots of every tile array (A, C, buffers) to an HDF5 file. "
            "Defaults are the setting of arXiv 2406.12774: SoftBoundsReference device with w_max = -w_min = tau and "
            "aihwkit's defaults otherwise, BL 31 with update management, default periphery, digital bias, one "
            "learnable output scale per tile, PyTorch init, plain SGD with StepLR(35, 0.1), pixels in [0, 1]; "
            "lr 0.05 analog / 0.1 digital, batch 10 (FCN) / 8 (CNN), Tiki-Taka fast_lr 0.01, one column read per "
            "transfer, transfer every mini-batch. A run whose loss becomes NaN stops and keeps its record so far "
            "(status 'diverged'). Analog SGD at the paper's tau 0.78 sits at chance (11.35 %) for ~30 epochs, as "
            "in aihwkit: accuracy near 10 % after one epoch is expected there."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (see 'crossbar-sim data'; default "
                                                      "mnist)")
    p.add_argument("--model", default="fcn", choices=("fcn", "cnn"),
                   help="fcn: 784-256-128-10 sigmoid; cnn: the paper's LeNet-style network (default fcn)")
    p.add_argument("--algorithm", default="tiki_taka", choices=ALGORITHMS, metavar="ALGORITHM",
                   help=f"training algorithm of every analog layer: {', '.join(ALGORITHMS)} (default tiki_taka)")
    p.add_argument("--tau", type=float, default=0.78, help="device bound w_max = -w_min of SoftBoundsReference "
                                                          "(default 0.78)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="device of every analog array instead of SoftBoundsReference(tau): a preset ('crossbar-sim "
                        "devices'; e.g. PCM, the plus-minus pair with refresh) or a device file from fit-device")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10; the paper: 80)")
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.05 analog, 0.1 digital)")
    p.add_argument("--batch", type=int, default=None, help="mini-batch size (default 10 FCN, 8 CNN)")
    p.add_argument("--fast-lr", type=float, default=0.01,
                   help="Tiki-Taka family: learning rate of the updates onto A, absolute (default 0.01)")
    p.add_argument("--transfer-every", type=float, default=1.0,
                   help="Tiki-Taka family: mini-batches between transfers (default 1)")
    p.add_argument("--n-reads-per-transfer", type=int, default=1,
                   help="Tiki-Taka family: columns of A read and written onto C per transfer (default 1)")
    p.add_argument("--schedule", default="step", choices=("step", "constant", "cosine"),
                   help="learning-rate schedule: step (StepLR), constant or cosine (default step)")
    p.add_argument("--lr-step", type=int, default=35, help="StepLR step size in epochs (default 35)")
    p.add_argument("--lr-gamma", type=float, default=0.1, help="StepLR factor (default 0.1)")
    p.add_argument("--analog-layers", default="all",
                   help="'all', 'none' or weight-layer indices on analog tiles, e.g. 0,2 (default all)")
    p.add_argument("--n-train", type=int, default=0, help="use the first N training images (default 0: all 60k)")
    p.add_argument("--n-test", type=int, default=0, help="use the first N test images (default 0: all 10k)")
    p.add_argument("--snapshot-every", type=int, default=5,
                   help="epochs between tile snapshots; the final weights are always kept (default 5)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed label: initial weights, tile construction and data order (default 0)")
    p.add_argument("--threads", type=int, default=1, help="numba threads of the update kernels (default 1)")
    p.add_argument("--run-id", default=None, metavar="NAME",
                   help="name of the run (default: derived from the config, e.g. fcn_tiki_taka_tau0.78_seed0)")
    from .sweep import add_engine_options

    add_engine_options(p, default_out="<run name>.h5", workers_default="1")
    g = p.add_argument_group("network experiments (every run of a named experiment into --out)")
    g.add_argument("--experiment", default=None, metavar="NAME",
                   help="e.g. mnist_paper (the paper's table) or mnist_asymmetry; takes --epochs, --taus, --models, "
                        "--algorithms, --seeds, --n-train, --n-test; equivalent to 'crossbar-sim sweep NAME'")
    g.add_argument("--taus", type=float, nargs="+", default=None, help="tau values of the analog runs")
    g.add_argument("--models", nargs="+", default=None, choices=("fcn", "cnn"), help="models to keep")
    g.add_argument("--algorithms", nargs="+", default=None, choices=ALGORITHMS, metavar="ALGORITHM",
                   help="algorithms to keep")
    g.add_argument("--seeds", type=int, nargs="+", default=None, help="seed labels")
    return p


def _check(args):
    from crossbar_sim.errors import ConfigError

    for name in ("epochs", "n_train", "n_test", "snapshot_every", "n_reads_per_transfer"):
        v = getattr(args, name)
        if v < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0. Got {v}.")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1. Got {args.threads}.")
    for v in [args.seed] + list(args.seeds or []):
        if not 0 <= v < 2**63:
            raise ConfigError(f"--seed must be an int in [0, 2**63). Got {v}.")
    from crossbar_sim.datasets import DATASETS

    images = sorted(n for n, d in DATASETS.items() if "x_train" in d.shapes)
    if args.dataset not in images:
        raise ConfigError(f"--dataset must be an image dataset ({', '.join(images)}; networks train on images, the "
                          f"Shakespeare text is for 'crossbar-sim lowrank'). Got {args.dataset!r}.")
    if args.run_id is not None and ("/" in args.run_id or not args.run_id.strip()):
        raise ConfigError(f"--run-id must be a plain name without '/'. Got {args.run_id!r}.")
    if args.preset is not None:
        from crossbar_sim.engine.kinds import preset_device

        preset_device(args.preset, "--preset")


def default_run_name(args) -> str:
    dev = f"tau{args.tau:g}" if args.preset is None else os.path.splitext(os.path.basename(args.preset))[0]
    algorithm = args.algorithm
    for item in getattr(args, "set", None) or []:  # --set algorithm_preset=NAME names the run's algorithm
        key, _, value = str(item).partition("=")
        if key.strip() in ("algorithm_preset", "net.algorithm_preset") and value.strip():
            algorithm = value.strip().strip("'\"")
    return f"{args.model}_{algorithm}_{dev}_seed{args.seed}"


def one_run_spec(args) -> dict:
    """The network spec of one ``crossbar-sim train`` run."""
    digital = args.algorithm == "digital_sgd"
    net = {"dataset": args.dataset, "model": args.model, "algorithm": args.algorithm, "tau": args.tau,
           "lr": args.lr if args.lr is not None else (0.1 if digital else 0.05),
           "batch_size": args.batch if args.batch is not None else (10 if args.model == "fcn" else 8),
           "epochs": args.epochs, "schedule": args.schedule, "lr_step": args.lr_step, "lr_gamma": args.lr_gamma,
           "analog_layers": args.analog_layers, "n_train": args.n_train, "n_test": args.n_test,
           "snapshot_every": args.snapshot_every,
           "transfer": {"fast_lr": args.fast_lr, "transfer_every": args.transfer_every,
                        "n_reads_per_transfer": args.n_reads_per_transfer}}
    spec = {"kind": "network", "name": args.run_id or default_run_name(args), "seed": 0, "net": net,
            "axes": {"seed": [args.seed]}}
    if args.preset is not None:
        spec["device"] = {"preset": args.preset}
    return spec


def select(spec: dict, args) -> dict:
    """A network experiment's spec cut to ``--models``, ``--algorithms``, ``--taus``, ``--seeds``, ``--epochs``,
    ``--n-train``, ``--n-test``."""
    from crossbar_sim.errors import ConfigError

    spec = dict(spec)
    if spec.get("kind") != "network":
        raise ConfigError(f"--experiment {args.experiment!r} is not a network experiment; run it with "
                          f"'crossbar-sim sweep {args.experiment}'.")
    net = dict(spec.get("net") or {})
    net["epochs"] = args.epochs
    for k in ("n_train", "n_test"):
        if getattr(args, k):
            net[k] = getattr(args, k)
    spec["net"] = net
    axes = dict(spec.get("axes") or {})
    if args.seeds:
        axes["seed"] = list(args.seeds)
    spec["axes"] = axes
    cases = []
    for c in spec.get("cases") or [{}]:
        c = dict(c)
        model = c.get("model", net.get("model", "fcn"))
        if args.models and model not in args.models:
            continue
        algs = c.get("algorithm", net.get("algorithm"))
        algs = algs if isinstance(algs, list) else [algs]
        if args.algorithms:
            algs = [a for a in algs if a in args.algorithms]
            if not algs:
                continue
            c["algorithm"] = algs
        if args.taus and "tau" in c:
            c["tau"] = list(args.taus)
        cases.append(c)
    if not cases:
        raise ConfigError("--models/--algorithms select no run of the experiment.")
    spec["cases"] = cases
    return spec


def run(args) -> int:
    from crossbar_sim.engine.spec import experiment_report, resolve_spec

    from .sweep import run_spec

    _check(args)
    if args.workers is None:
        args.workers = 1
    if args.experiment:
        spec, source = resolve_spec(args.experiment)
        spec = select(spec, args)
        if args.out == "<run name>.h5":
            args.out = f"{spec.get('name') or args.experiment}.h5"
        return run_spec(spec, args, source, report=experiment_report(args.experiment))
    from crossbar_sim.datasets import load_dataset

    load_dataset(args.dataset)  # DatasetNotFoundError (with instructions) before anything is written
    spec = one_run_spec(args)
    if args.out == "<run name>.h5":
        args.out = f"{spec['name']}.h5"
    from crossbar_sim.tiles.analog import set_num_threads

    set_num_threads(args.threads)
    return run_spec(spec, args, spec["name"])
