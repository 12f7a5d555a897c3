"""A small CNN trained on MNIST with its convolutions and linear layers on analog tiles, written as torch code.

    pip install -e ".[torch]" && crossbar-sim data install mnist
    python examples/torch_cnn_mnist.py --algorithm tiki_taka --n-train 6000 --epochs 3

The model is ordinary torch (``nn.Sequential``, ``nn.Tanh``, ``nn.MaxPool2d``, a ``DataLoader``, ``StepLR``); only its
weight layers come from ``crossbar_sim.torch`` (``convert_to_analog`` of a digital model), trained by ``AnalogSGD``:
forward and backward through the tiles' periphery, pulsed updates from the captured inputs and gradients.
``--save ck.pt`` writes a checkpoint (model with every tile's state, optimiser, scheduler) after every epoch and
``--resume ck.pt`` continues from one, bit for bit.
"""
from __future__ import annotations

import argparse
import time


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algorithm", default="tiki_taka",
                   choices=("analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad", "digital_sgd"))
    p.add_argument("--tau", type=float, default=0.6, help="device bounds +-tau (SoftBoundsReference)")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--n-train", type=int, default=6000, help="training images (0: all 60k)")
    p.add_argument("--n-test", type=int, default=1000, help="test images (0: all 10k)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--save", default=None, help="write a checkpoint here after every epoch")
    p.add_argument("--resume", default=None, help="continue from this checkpoint")
    return p


def digital_cnn():
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.Tanh(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


def evaluate(net, loader) -> float:
    import torch

    net.eval()
    correct = n = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((net(x).argmax(1) == y).sum())
            n += y.numel()
    net.train()
    return correct / max(n, 1)


def main(argv=None, log=print) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from crossbar_sim.torch import (
        AnalogConfig,
        AnalogSGD,
        ImageDataset,
        convert_to_analog,
    )

    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = ImageDataset(a.dataset, "train", n=a.n_train)
    test = ImageDataset(a.dataset, "test", n=a.n_test)
    loader = DataLoader(train, batch_size=a.batch_size, shuffle=True, generator=torch.Generator().manual_seed(a.seed))
    test_loader = DataLoader(test, batch_size=500)
    config = AnalogConfig(algorithm=a.algorithm, tau=a.tau)
    net = convert_to_analog(digital_cnn(), config, seed=a.seed)
    opt = AnalogSGD(net.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=35, gamma=0.1)
    start = 0
    history = {"test_acc": [], "train_loss": []}
    if a.resume:
        ck = torch.load(a.resume)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        loader.generator.set_state(ck["loader_rng"])
        start, history = ck["epoch"], ck["history"]
    log(f"{a.algorithm} on {len(train)} images; model:\n{net}")
    for epoch in range(start, a.epochs):
        t0 = time.perf_counter()
        tot, seen = 0.0, 0
        for x, y in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            tot += loss.item() * y.numel()
            seen += y.numel()
        sched.step()
        history["train_loss"].append(tot / seen)
        history["test_acc"].append(evaluate(net, test_loader))
        log(f"epoch {epoch + 1}: train loss {history['train_loss'][-1]:.4f}  test acc {history['test_acc'][-1]:.4f}  "
            f"({time.perf_counter() - t0:.1f} s)")
        if a.save:
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "loader_rng": loader.generator.get_state(), "epoch": epoch + 1, "history": history}, a.save)
    return history


if __name__ == "__main__":
    main()
