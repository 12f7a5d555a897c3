"""An aihwkit reference run of the paper's MNIST setting: timing of N training samples, optionally whole epochs.

A standalone script for a *separate* interpreter that has IBM aihwkit (>= 0.8; written against 1.1.0): it imports
only the standard library, numpy, torch and aihwkit, never ``crossbar_sim`` (``crossbar-sim bench --kind mnist
--aihwkit-python PATH`` runs it as a file with that interpreter). aihwkit is not a dependency of crossbar-sim.

The setting is the paper's (arXiv 2406.12774; SPEC.md section 4; ``experiments/mnist_paper.py``), in aihwkit names:

* FCN ``Linear(784, 256) - Sigmoid - Linear(256, 128) - Sigmoid - Linear(128, 10)`` or the CNN of
  ``crossbar_sim/nn/models.py`` (conv 1->16 5x5, tanh, maxpool 2, conv 16->32 5x5, tanh, maxpool 2, FC 512->128,
  tanh, FC 128->10), built in torch (default init) and converted with ``convert_to_analog`` as the paper's code
  does, so the weights are written as they are (``weight_scaling_omega`` 0, aihwkit's default) and layers wider
  than ``max_input_size`` (512: the FCN's first layer) become a ``TileModuleArray`` of two 392-input tiles;
* ``SoftBoundsReferenceDevice(w_max=tau, w_min=-tau)``, every other device, IO and update parameter at default;
* analog SGD: ``SingleRPUConfig``; Tiki-Taka v1: ``UnitCellRPUConfig`` with ``TransferCompound`` of two such
  devices, gamma 0, transfer_every 1 (mini-batches), n_reads_per_transfer 1, fast_lr 0.01, default transfer
  forward / update; digital SGD: ``FloatingPointRPUConfig``;
* digital bias; ``learn_out_scaling`` on analog layers (one scalar per tile) unless ``--no-learn-out-scaling``;
* ``AnalogSGD`` lr 0.05 (0.1 digital), batch 10 (FCN) / 8 (CNN), NLL of log-softmax, pixels / 255, torch threads 1.

Output: one JSON line on stdout (``"tool": "aihwkit"``): wall and CPU time of ``--samples`` training samples (after
``--warmup`` samples on a throw-away model), and with ``--epochs E`` also the per-epoch training loss / accuracy,
test loss / accuracy (10k test images unless ``--n-test``) and the learned output scales of every tile.

    python crossbar_sim/bench/aihwkit_epoch.py --model fcn --algorithm analog_sgd --tau 0.78 --samples 6000 \
        --data ~/.cache/crossbar_sim/datasets/mnist.npz
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

MODELS = ("fcn", "cnn")
ALGORITHMS = ("analog_sgd", "tiki_taka", "digital_sgd")
BATCH = {"fcn": 10, "cnn": 8}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="fcn")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="analog_sgd")
    p.add_argument("--tau", type=float, default=0.78, help="device bounds w_max = -w_min = tau")
    p.add_argument("--samples", type=int, default=6000,
                   help="training samples timed (the first N images in a seeded random order)")
    p.add_argument("--data", required=True, help="mnist.npz with x_train, y_train, x_test, y_test (uint8 pixels)")
    p.add_argument("--seed", type=int, default=0, help="torch seed (init, device variations) and data order")
    p.add_argument("--warmup", type=int, default=200, help="samples run on a throw-away model before timing")
    p.add_argument("--epochs", type=int, default=0,
                   help="also train this many epochs over the first --samples images with a test evaluation "
                        "after each (0: timing only)")
    p.add_argument("--n-test", type=int, default=10000, help="test images evaluated with --epochs")
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.05 analog, 0.1 digital)")
    p.add_argument("--no-learn-out-scaling", dest="learn_out_scaling", action="store_false",
                   help="no learnable output scale (the paper has one per analog tile)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--trace-every", type=int, default=0,
                   help="with --epochs: record every tile's out scale and mean |W| every K mini-batches of the "
                        "first epoch (0: off)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    a = p.parse_args(argv)
    if not a.tau > 0:
        p.error(f"--tau must be > 0, got {a.tau}")
    if a.samples < 1:
        p.error(f"--samples must be >= 1, got {a.samples}")
    for name in ("warmup", "epochs", "n_test", "trace_every"):
        if getattr(a, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(a, name)}")
    if a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.lr is None:
        a.lr = 0.1 if a.algorithm == "digital_sgd" else 0.05
    return a


def rpu_config(algorithm: str, tau: float, learn_out_scaling: bool):
    from aihwkit.simulator.configs import (FloatingPointRPUConfig, SingleRPUConfig, SoftBoundsReferenceDevice,
                                           TransferCompound, UnitCellRPUConfig)

    if algorithm == "digital_sgd":
        return FloatingPointRPUConfig()
    if algorithm == "analog_sgd":
        cfg = SingleRPUConfig(device=SoftBoundsReferenceDevice(w_max=tau, w_min=-tau))
    else:
        cfg = UnitCellRPUConfig(device=TransferCompound(
            unit_cell_devices=[SoftBoundsReferenceDevice(w_max=tau, w_min=-tau),
                               SoftBoundsReferenceDevice(w_max=tau, w_min=-tau)],
            gamma=0.0, transfer_every=1.0, units_in_mbatch=True, n_reads_per_transfer=1, fast_lr=0.01))
    cfg.mapping.digital_bias = True
    cfg.mapping.learn_out_scaling = bool(learn_out_scaling)
    return cfg


def torch_model(model: str):
    from torch import nn

    if model == "fcn":
        return nn.Sequential(nn.Linear(784, 256), nn.Sigmoid(), nn.Linear(256, 128), nn.Sigmoid(),
                             nn.Linear(128, 10), nn.LogSoftmax(dim=1))
    return nn.Sequential(nn.Conv2d(1, 16, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.Tanh(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.Tanh(), nn.Linear(128, 10),
                         nn.LogSoftmax(dim=1))


def build(args):
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.optim import AnalogSGD

    net = convert_to_analog(torch_model(args.model), rpu_config(args.algorithm, args.tau, args.learn_out_scaling))
    opt = AnalogSGD(net.parameters(), lr=args.lr)
    opt.regroup_param_groups(net)
    return net, opt


def load_data(path: str, model: str, n_train: int, n_test: int):
    import numpy as np
    import torch

    with np.load(os.path.expanduser(path)) as z:
        raw = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}

    def prep(x, y, n):
        if n == 0:
            return None, None
        x = torch.from_numpy(x[:n].astype(np.float32) / np.float32(255.0))
        x = x.reshape(x.shape[0], -1) if model == "fcn" else x.reshape(x.shape[0], 1, 28, 28)
        return x.contiguous(), torch.from_numpy(y[:n].astype(np.int64))

    return prep(raw["x_train"], raw["y_train"], n_train), prep(raw["x_test"], raw["y_test"], n_test)


def run_epoch(net, opt, x, y, batch, gen, trace=None, trace_every=0):
    import torch
    from torch.nn.functional import nll_loss

    net.train()
    perm = torch.randperm(x.shape[0], generator=gen)
    tot_loss, correct = 0.0, 0
    for s in range(0, x.shape[0], batch):
        if trace is not None and trace_every and (s // batch) % trace_every == 0:
            trace.append({"batch": s // batch, "tiles": tile_report(net, short=True)})
        idx = perm[s:s + batch]
        opt.zero_grad()
        out = net(x[idx])
        loss = nll_loss(out, y[idx])
        loss.backward()
        opt.step()
        tot_loss += loss.item() * idx.numel()
        correct += int((out.argmax(1) == y[idx]).sum())
    return {"train_loss": tot_loss / x.shape[0], "train_acc": correct / x.shape[0]}


def evaluate(net, x, y, batch=1000):
    import torch
    from torch.nn.functional import nll_loss

    net.eval()
    tot, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            out = net(x[s:s + batch])
            tot += float(nll_loss(out, y[s:s + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[s:s + batch]).sum())
    net.train()
    return {"test_loss": tot / x.shape[0], "test_acc": correct / x.shape[0]}


def tile_report(net, short=False) -> dict:
    """{tile module name: {"out_scale": [...], "w_absmax": ..., "shape": [out, in]}} of every analog tile
    (``short``: {name: [out scale or None, mean |W|]}). W is what the tile holds; aihwkit's default
    ``get_weights()`` would return it times the learned out scale."""
    out = {}
    for name, mod in net.named_modules():
        if not hasattr(mod, "get_weights") or not hasattr(mod, "out_scaling_alpha") or hasattr(mod, "array"):
            continue
        alpha = mod.out_scaling_alpha
        w, _ = mod.get_weights(apply_weight_scaling=False)  # the tile's own weights, without the out scale
        if short:
            out[name] = [None if alpha is None else float(alpha.detach().flatten()[0]), float(w.abs().mean())]
            continue
        out[name] = {"out_scale": None if alpha is None else [float(v) for v in alpha.detach().flatten()],
                     "w_absmax": float(w.abs().max()), "w_absmean": float(w.abs().mean()), "shape": list(w.shape)}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import aihwkit
    import torch

    torch.set_num_threads(args.threads)
    (xtr, ytr), (xte, yte) = load_data(args.data, args.model, args.samples, args.n_test if args.epochs else 0)
    batch = BATCH[args.model]
    if args.warmup:
        torch.manual_seed(args.seed + 1)
        net, opt = build(args)
        run_epoch(net, opt, xtr[:args.warmup], ytr[:args.warmup], batch, torch.Generator().manual_seed(1))
    torch.manual_seed(args.seed)
    net, opt = build(args)
    gen = torch.Generator().manual_seed(args.seed)
    res = {"tool": "aihwkit", "aihwkit_version": aihwkit.__version__, "torch_version": torch.__version__,
           "model": args.model, "algorithm": args.algorithm, "tau": args.tau, "lr": args.lr, "batch_size": batch,
           "learn_out_scaling": args.learn_out_scaling, "threads": args.threads, "samples": int(xtr.shape[0]),
           "seed": args.seed}
    history = []
    if args.epochs:
        history.append({"epoch": 0, **evaluate(net, xte, yte), "tiles": tile_report(net)})
    trace = [] if (args.epochs and args.trace_every) else None
    t0, c0 = time.perf_counter(), time.process_time()
    m = run_epoch(net, opt, xtr, ytr, batch, gen, trace, args.trace_every)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if trace is not None:
        res["trace"] = trace
    res.update(wall_s=wall, cpu_s=cpu, epoch_60k_s=wall * 60000.0 / xtr.shape[0],
               epoch_60k_cpu_s=cpu * 60000.0 / xtr.shape[0], **m)
    if args.epochs:
        history.append({"epoch": 1, **m, **evaluate(net, xte, yte), "tiles": tile_report(net), "wall_s": wall})
        for e in range(2, args.epochs + 1):
            t = time.perf_counter()
            m = run_epoch(net, opt, xtr, ytr, batch, gen)
            history.append({"epoch": e, **m, **evaluate(net, xte, yte), "tiles": tile_report(net),
                            "wall_s": time.perf_counter() - t})
            print(f"# epoch {e}: test acc {history[-1]['test_acc']:.4f}", file=sys.stderr, flush=True)
        res["epochs"] = history
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    # run as a file, sys.path[0] is this folder, whose modules (functional, layers, models, ...) must not shadow
    # anything torch or aihwkit imports (they are imported lazily, after this)
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_v, "1")
    sys.exit(main())
