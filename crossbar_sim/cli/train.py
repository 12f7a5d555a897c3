"""``crossbar-sim train``: one network training run on real data, written to HDF5."""
from __future__ import annotations

import argparse
import json
import os


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a network (FCN or CNN) on MNIST / Fashion-MNIST with analog tiles",
        description=(
            "Train one network with its weight layers on simulated analog tiles and write test accuracy per epoch, "
            "training loss, pulse counts and periodic snapshots of every tile array (A, C, buffers) to an HDF5 file. "
            "Defaults are the setting of arXiv 2406.12774: SoftBoundsReference device with w_max = -w_min = tau and "
            "aihwkit's defaults otherwise, BL 31 with update management, default periphery, digital bias, one "
            "learnable output scale per layer, PyTorch init, plain SGD with StepLR(35, 0.1), pixels in [0, 1]; "
            "lr 0.05 analog / 0.1 digital, batch 10 (FCN) / 8 (CNN), Tiki-Taka fast_lr 0.01, one column read per "
            "transfer, transfer every mini-batch. A run whose loss becomes NaN stops with a message and keeps "
            "its record so far (status 'diverged')."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (see 'crossbar-sim data')")
    p.add_argument("--model", default="fcn", choices=("fcn", "cnn"))
    p.add_argument("--algorithm", default="tiki_taka",
                   choices=("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad"))
    p.add_argument("--tau", type=float, default=0.78, help="device bound w_max = -w_min")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="device of every analog array instead of SoftBoundsReference(tau): a preset ('crossbar-sim "
                        "devices'; e.g. PCM, the plus-minus pair with refresh) or a device file from fit-device")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.05 analog, 0.1 digital)")
    p.add_argument("--batch", type=int, default=None, help="mini-batch size (default 10 FCN, 8 CNN)")
    p.add_argument("--fast-lr", type=float, default=0.01, help="Tiki-Taka family: learning rate onto A (absolute)")
    p.add_argument("--transfer-every", type=float, default=1.0, help="Tiki-Taka family: transfer period")
    p.add_argument("--n-reads-per-transfer", type=int, default=1)
    p.add_argument("--schedule", default="step", choices=("step", "constant", "cosine"))
    p.add_argument("--lr-step", type=int, default=35, help="StepLR step size in epochs")
    p.add_argument("--lr-gamma", type=float, default=0.1, help="StepLR factor")
    p.add_argument("--analog-layers", default="all", help="'all', 'none' or weight-layer indices, e.g. 0,2")
    p.add_argument("--n-train", type=int, default=0, help="use the first N training images (0: all 60k)")
    p.add_argument("--n-test", type=int, default=0, help="use the first N test images (0: all 10k)")
    p.add_argument("--snapshot-every", type=int, default=5, help="epochs between tile snapshots (0: final only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="numba threads of the update kernels (BLAS uses 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override of the run config, e.g. --set update.desired_bl=15 "
                        "--set forward.out_noise=0 (repeatable)")
    p.add_argument("--out", default="results.h5", help="HDF5 file to write")
    p.add_argument("--run-id", default=None, help="name of the run group (default: derived from the config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (log one line per epoch)")
    g = p.add_argument_group("named experiments (run every configuration of an experiment into --out)")
    g.add_argument("--experiment", default=None, metavar="NAME",
                   help="e.g. mnist_paper: the paper's setting; uses --epochs, --taus, --models, --algorithms, "
                        "--seeds, --n-train, --n-test (other options are fixed by the experiment)")
    g.add_argument("--taus", type=float, nargs="+", default=None, help="tau values (default: the paper's per model)")
    g.add_argument("--models", nargs="+", default=["fcn", "cnn"], choices=("fcn", "cnn"))
    g.add_argument("--algorithms", nargs="+", default=["analog_sgd", "tiki_taka", "digital_sgd"],
                   choices=("digital_sgd", "analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad"))
    g.add_argument("--seeds", type=int, nargs="+", default=[0])
    return p


def load_experiment(name):
    """The experiment module registered under ``name`` in the ``crossbar_sim.experiments`` entry-point group."""
    from importlib.metadata import entry_points

    from crossbar_sim.errors import ConfigError

    eps = {ep.name: ep for ep in entry_points(group="crossbar_sim.experiments")}
    if name not in eps:
        raise ConfigError(f"Unknown experiment {name!r}; registered: {', '.join(sorted(eps)) or 'none'}.")
    return eps[name].load()


def run_experiment(args) -> int:
    from threadpoolctl import threadpool_limits

    from crossbar_sim.tiles.analog import set_num_threads

    mod = load_experiment(args.experiment)
    set_num_threads(args.threads)
    extra = {}
    if args.n_train:
        extra["n_train"] = args.n_train
    if args.n_test:
        extra["n_test"] = args.n_test
    with threadpool_limits(1):
        res = mod.run(args.out, progress=not args.no_progress, epochs=args.epochs, taus=args.taus,
                      models=tuple(args.models), algorithms=tuple(args.algorithms), seeds=tuple(args.seeds), **extra)
    for r in res:
        print(json.dumps(r))
    if hasattr(mod, "table"):
        print(f"{'model':5s} {'tau':>5s} {'algorithm':12s} {'epochs':>6s} {'final %':>8s} {'best %':>7s} {'paper %':>8s}")
        for row in mod.table(args.out):
            model, tau, alg, ep, fin, best, paper = row[:7]
            print(f"{model:5s} {'-' if tau is None else f'{tau:g}':>5s} {alg:12s} {ep:6d} {fin:8.2f} {best:7.2f} "
                  f"{'' if paper is None else f'{paper:.2f}':>8s}")
    return 0 if all(r["status"] == "complete" for r in res) else 3


def config_from_args(args):
    from crossbar_sim.tiles.tiki_taka import TransferParams
    from crossbar_sim.config import apply_overrides
    from crossbar_sim.errors import ConfigError
    from crossbar_sim.nn import NetConfig

    digital = args.algorithm == "digital_sgd"
    lr = args.lr if args.lr is not None else (0.1 if digital else 0.05)
    batch = args.batch if args.batch is not None else (10 if args.model == "fcn" else 8)
    cfg = NetConfig(dataset=args.dataset, model=args.model, algorithm=args.algorithm, tau=args.tau, lr=lr,
                    batch_size=batch, epochs=args.epochs, schedule=args.schedule, lr_step=args.lr_step,
                    lr_gamma=args.lr_gamma, analog_layers=args.analog_layers, n_train=args.n_train,
                    n_test=args.n_test, snapshot_every=args.snapshot_every,
                    transfer=TransferParams(fast_lr=args.fast_lr, transfer_every=args.transfer_every,
                                            n_reads_per_transfer=args.n_reads_per_transfer),
                    device=_preset_device(args.preset))
    over = {}
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE. Got {item!r}.")
        k, v = item.split("=", 1)
        over[k.strip()] = v.strip()
    return apply_overrides(cfg, over) if over else cfg


def _preset_device(name):
    """The device of ``--preset`` (a preset name or a device file), or None for the default device."""
    if name is None:
        return None
    from crossbar_sim.device_models import load_device_file
    from crossbar_sim.errors import ConfigError, FormatError

    try:
        return load_device_file(name)
    except (ConfigError, FormatError) as exc:
        raise ConfigError(f"--preset: {exc}") from None


def default_run_id(cfg, seed, preset=None) -> str:
    dev = f"tau{cfg.tau:g}" if preset is None else os.path.splitext(os.path.basename(preset))[0]
    return f"{cfg.model}_{cfg.algorithm}_{dev}_seed{seed}"


def run(args) -> int:
    import sys

    from crossbar_sim.errors import ConfigError, DivergenceError
    from crossbar_sim.nn.store import RunWriter
    from crossbar_sim.nn.training import METRIC_UNITS, train_network

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1. Got {args.threads}.")
    if args.experiment:
        return run_experiment(args)
    cfg = config_from_args(args)
    from crossbar_sim.datasets import load_dataset

    data = load_dataset(cfg.dataset)  # DatasetNotFoundError (with instructions) before anything is written
    from threadpoolctl import threadpool_limits

    from crossbar_sim.tiles.analog import set_num_threads

    set_num_threads(args.threads)
    run_id = args.run_id or default_run_id(cfg, args.seed, args.preset)
    writer = RunWriter(args.out, run_id, {"net": cfg.to_dict()}, args.seed, METRIC_UNITS)
    dev = f"tau={cfg.tau:g}" if args.preset is None else f"device={args.preset}"
    print(f"training {run_id}: {cfg.model} {cfg.algorithm} {dev} lr={cfg.lr:g} batch={cfg.batch_size} "
          f"epochs={cfg.epochs} -> {args.out}", flush=True)
    log = print if args.no_progress else None
    try:
        with threadpool_limits(1):
            tr = train_network(cfg, args.seed, data=data, writer=writer, progress=not args.no_progress, log=log)
    except DivergenceError as exc:
        print(f"crossbar-sim train: run diverged: {exc} Record kept in {args.out} (status 'diverged').",
              file=sys.stderr)
        return 3
    acc = tr.history["test_acc"]
    print(json.dumps({"run_id": run_id, "test_acc": acc, "wall_time_s": round(tr.wall_time_s, 1)}))
    return 0
