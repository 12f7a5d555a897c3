"""The front ends side by side: one MNIST training pass through ``crossbar_sim.nn`` (NumPy), ``crossbar_sim.torch`` and
aihwkit's ``AnalogLinear``, measured interleaved (``crossbar-sim bench --kind mnist --frontends numpy torch``).

The setting is the paper's (:func:`crossbar_sim.experiments.mnist_paper.paper_config`; see
:mod:`crossbar_sim.bench.mnist`). The torch model is what a torch user writes: ``nn.Sequential`` of
:class:`~crossbar_sim.torch.AnalogLinear` (and ``AnalogConv2d`` for the CNN) with ``nn.Sigmoid`` / ``nn.Tanh`` /
``nn.MaxPool2d``, the tiles from ``AnalogConfig.from_net_config`` of the same ``NetConfig``, ``AnalogSGD`` and
``nn.functional.cross_entropy``; its loop is the aihwkit script's (:func:`crossbar_sim.bench.aihwkit_epoch.run_epoch`:
zero_grad, forward, loss, backward, step, running loss and accuracy), the NumPy one
:meth:`~crossbar_sim.nn.training.NetTrainer.run_epoch`. One round times every front end once on the same samples,
one after the other (aihwkit in its own interpreter, :func:`crossbar_sim.bench.mnist.run_aihwkit_epoch`); the
reported time of a front end is its median over the rounds, and the ratios are of those medians. numba, torch and
BLAS run on ``threads`` threads.
"""
from __future__ import annotations

import subprocess
import time

import numpy as np

from ..errors import ConfigError

FRONTENDS = ("numpy", "torch")
#: the goals of issue 15: torch at most this many times the NumPy path, aihwkit at least this many times torch
GOAL_VS_NUMPY = 1.2
GOAL_AIHWKIT_OVER_TORCH = 3.0


def torch_model(cfg):
    """The network of ``cfg.model`` (a NetConfig) as a torch user builds it with ``crossbar_sim.torch`` layers."""
    from torch import nn

    from crossbar_sim.torch import AnalogConfig, AnalogConv2d, AnalogLinear

    acfg = AnalogConfig.from_net_config(cfg)
    if cfg.model == "fcn":
        return nn.Sequential(AnalogLinear(784, 256, config=acfg), nn.Sigmoid(), AnalogLinear(256, 128, config=acfg),
                             nn.Sigmoid(), AnalogLinear(128, 10, config=acfg))
    return nn.Sequential(AnalogConv2d(1, 16, 5, config=acfg), nn.Tanh(), nn.MaxPool2d(2),
                         AnalogConv2d(16, 32, 5, config=acfg), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                         AnalogLinear(512, 128, config=acfg), nn.Tanh(), AnalogLinear(128, 10, config=acfg))


def run_torch_epoch(net, opt, x, y, batch: int, perm) -> dict:
    """One pass over ``x[perm]`` in mini-batches (the loop of the aihwkit script)."""
    from torch.nn.functional import cross_entropy

    net.train()
    tot_loss, correct = 0.0, 0
    for s in range(0, x.shape[0], batch):
        idx = perm[s:s + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        out = net(xb)
        loss = cross_entropy(out, yb)
        loss.backward()
        opt.step()
        tot_loss += loss.item() * idx.numel()
        correct += int((out.argmax(1) == yb).sum())
    return {"train_loss": tot_loss / x.shape[0], "train_acc": correct / x.shape[0]}


def start_like_numpy(net, cfg, seed: int = 0) -> None:
    """Program ``net``'s analog layers with the initial weights and biases of the NumPy run of ``cfg`` and ``seed``
    (:class:`~crossbar_sim.nn.training.NetTrainer`'s model), so both front ends do the same work: the pulse counts
    depend on the weights through the gradients. The tiles' device variations come from other seeds, alike in
    distribution."""
    from crossbar_sim.nn.models import build_model
    from crossbar_sim.torch import AnalogLayerBase

    s_model, _ = np.random.SeedSequence(seed).spawn(2)  # NetTrainer's model stream
    ref = list(build_model(cfg, s_model).weight_layers().values())
    mine = [m for m in net.modules() if isinstance(m, AnalogLayerBase)]
    for a, b in zip(mine, ref):
        a.set_weights(b.tile.read_weights()[:, : b.in_features], None if b.bias is None else b.bias.value)


def _torch_run(cfg, data, seed: int = 0) -> float:
    import torch

    from crossbar_sim.nn.training import prepare_data
    from crossbar_sim.torch import AnalogSGD

    torch.manual_seed(seed)
    net = torch_model(cfg)
    start_like_numpy(net, cfg, seed)
    opt = AnalogSGD(net.parameters(), lr=cfg.lr)
    d = prepare_data(cfg, data)
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"])
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    t0, c0 = time.perf_counter(), time.process_time()
    run_torch_epoch(net, opt, x, y, cfg.batch_size, perm)
    return time.perf_counter() - t0, time.process_time() - c0


def _numpy_run(cfg, data, seed: int = 0) -> float:
    from crossbar_sim.nn.training import NetTrainer

    tr = NetTrainer(cfg, seed, data=data)
    t0, c0 = time.perf_counter(), time.process_time()
    tr.run_epoch()
    return time.perf_counter() - t0, time.process_time() - c0


def compare_frontends(model: str = "fcn", algorithm: str = "tiki_taka", samples: int = 6000, threads: int = 1,
                      rounds: int = 3, data=None, warmup: int = 200, aihwkit_python=None,
                      aihwkit_runner=subprocess.run, progress=print) -> dict:
    """Interleaved timings of one training pass over ``samples`` images per front end (see the module docstring).

    Returns a row with each front end's per-round times (s), medians, 60k-epoch extrapolations and the ratios
    ``torch_over_numpy`` and (with ``aihwkit_python``) ``aihwkit_over_torch``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    from crossbar_sim.datasets import cache_file, load_dataset
    from crossbar_sim.experiments.mnist_paper import paper_config
    from crossbar_sim.tiles.analog import set_num_threads

    from .mnist import run_aihwkit_epoch

    if rounds < 1 or samples < 1:
        raise ConfigError(f"compare_frontends needs rounds >= 1 and samples >= 1. Got {rounds} and {samples}.")
    data = load_dataset("mnist") if data is None else data
    cfg = paper_config(model, algorithm, 0.78, epochs=1, n_train=samples, n_test=100)
    warm = paper_config(model, algorithm, 0.78, epochs=1, n_train=warmup, n_test=100)
    set_num_threads(threads)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    names = ("numpy", "torch") + (("aihwkit",) if aihwkit_python is not None else ())
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    aihwkit_version = None
    try:
        with threadpool_limits(threads):
            _numpy_run(warm, data)
            _torch_run(warm, data)
            for r in range(rounds):
                for k, fn in (("numpy", _numpy_run), ("torch", _torch_run)):
                    w, c = fn(cfg, data)
                    wall[k].append(w)
                    cpu[k].append(c)
                if aihwkit_python is not None:
                    res = run_aihwkit_epoch(aihwkit_python, model, algorithm, samples, cache_file("mnist"), threads,
                                            runner=aihwkit_runner)
                    wall["aihwkit"].append(float(res["wall_s"]))
                    cpu["aihwkit"].append(float(res["cpu_s"]))
                    aihwkit_version = res.get("aihwkit_version")
                progress(f"  round {r + 1}/{rounds}: " + ", ".join(
                    f"{k} {wall[k][-1]:.2f} s (cpu {cpu[k][-1]:.2f} s)" for k in names))
    finally:
        torch.set_num_threads(torch_threads)
    med = {k: float(np.median(v)) for k, v in wall.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    row = {"kind": "frontends", "model": model, "algorithm": algorithm, "samples": samples, "threads": threads,
           "rounds": rounds, "torch_version": torch.__version__,
           **{f"{k}_s": v for k, v in wall.items()}, **{f"{k}_cpu_s": v for k, v in cpu.items()},
           **{f"{k}_median_s": v for k, v in med.items()}, **{f"{k}_median_cpu_s": v for k, v in med_cpu.items()},
           **{f"{k}_60k_s": v * 60000.0 / samples for k, v in med.items()},
           "torch_over_numpy": med["torch"] / med["numpy"],
           "torch_over_numpy_cpu": med_cpu["torch"] / med_cpu["numpy"], "goal_torch_over_numpy": GOAL_VS_NUMPY}
    if aihwkit_python is not None:
        row["aihwkit_version"] = aihwkit_version
        row["aihwkit_over_torch"] = med["aihwkit"] / med["torch"]
        row["aihwkit_over_torch_cpu"] = med_cpu["aihwkit"] / med_cpu["torch"]
        row["goal_aihwkit_over_torch"] = GOAL_AIHWKIT_OVER_TORCH
    return row


def format_frontends(r: dict) -> str:
    s = (f"frontends {r['model']} {r['algorithm']} threads {r['threads']}, {r['samples']} samples, median of "
         f"{r['rounds']} interleaved rounds: numpy {r['numpy_median_s']:.2f} s, torch {r['torch_median_s']:.2f} s "
         f"(x{r['torch_over_numpy']:.2f} numpy, cpu time x{r['torch_over_numpy_cpu']:.2f}; goal <= "
         f"x{r['goal_torch_over_numpy']:g})")
    if "aihwkit_median_s" in r:
        s += (f", aihwkit {r.get('aihwkit_version')} {r['aihwkit_median_s']:.2f} s (x{r['aihwkit_over_torch']:.2f} "
              f"torch, cpu time x{r['aihwkit_over_torch_cpu']:.2f}; goal >= x{r['goal_aihwkit_over_torch']:g})")
    return s + f"; 60k epoch: numpy {r['numpy_60k_s']:.1f} s, torch {r['torch_60k_s']:.1f} s"
